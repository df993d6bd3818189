"""The demo sandbox: a month of real logical backups of four clusters, and their Kubernetes.

``pgdeck demo`` calls :func:`prepare_sandbox`. It builds once under ``root`` (reused while
a complete sandbox of the same format exists):

- ``store/spilo/<cluster>/<uid>/logical_backups/<epoch>.sql.gz``: gzip of real
  ``pg_dumpall`` output of a throwaway local server (sandbox.localpg) whose data grows over
  the month. About 16 real dumps per uid; each serves several consecutive hours through hard
  links (so hard-linked objects share one mtime: that of the newest hour they serve).
  ``store/spilo/.pgdeck-meta.json`` says what S3 would of each object's encryption (the
  sidecar services.storage.FileStore reads).
- ``manifests/``: ``kubectl get -o yaml`` Lists (postgresqls, cronjobs, jobs, pods, operator)
  and ``manifests/logs/<namespace>/<pod>.log``.
- ``config.yaml`` pointing pgdeck at both, and the ``SANDBOX`` stamp, written last.

The clusters: acid-orders and acid-inventory (shop), acid-billing (finance, deleted and
created again under a new uid 9 days before ``now``), acid-legacy (deleted 12 days before
``now``: storage only). Planted for a weekly review to find, all within the 7 days before
``now`` (hours counted back from the hour of ``now``; constants below):

- missing hours: acid-orders has no object for the runs of 45 and 44 hours ago (adjacent)
  and of 150 hours ago; those jobs never ran, and Kubernetes keeps no Job of them;
- a suspiciously small backup: acid-billing's object of 117 hours ago is a complete
  pg_dumpall (trailer and all) of a freshly bootstrapped, empty Spilo: about 4 kB of SQL,
  1.3 kB of gzip, among objects of hundreds of kB;
- a failed job: acid-inventory's newest-but-one run (at the build) failed. Its Job is Failed with reason
  BackoffLimitExceeded after seven pods (backoffLimit 6) exited with code 1; each pod's log
  ends with pg_dumpall's and psql's ``FATAL:  the database system is shutting down`` and
  dump.sh's own failure. No object exists for that hour;
- no encryption: acid-orders' object of 26 hours ago is stored without server-side
  encryption (``"sse": ""`` in the sidecar); every other object says ``AES256``.

The build happens in a temporary directory beside ``root`` and is renamed into place at
the end, so an interrupted build never leaves half a sandbox. A sandbox whose clusters
have run since it was built (or last rolled forward) is rolled forward cheaply, without
new dumps (see sandbox.demo.roll_forward); one older than 7 days is built again, so that the
planted problems stay within a 14-day grid.

Modules, one idea each: ``story`` (the cast of clusters, their hours and the planted
problems), ``words`` and ``content`` (what the dumps contain), ``dumps`` (growing a
throwaway server and taking the real dumps), ``manifests`` and ``pod_logs`` (what
Kubernetes shows of it), ``layout`` (the sandbox on disk: stamp, sidecar), ``build``,
``roll_forward`` and ``prepare`` (making it, keeping it current), ``target`` (the local
server restores go to).
"""

from sandbox.demo.layout import STAMP, Sandbox
from sandbox.demo.prepare import ROLL_FORWARD_LIMIT, prepare_sandbox
from sandbox.demo.story import (
    BUCKET,
    FAILED_ATTEMPTS,
    FAILED_CLUSTER,
    FORMAT_VERSION,
    MISSING_CLUSTER,
    MISSING_HOURS_AGO,
    PLAIN_CLUSTER,
    PLAIN_HOURS_AGO,
    SMALL_CLUSTER,
    SMALL_HOURS_AGO,
)

__all__ = [
    "BUCKET",
    "FAILED_ATTEMPTS",
    "FAILED_CLUSTER",
    "FORMAT_VERSION",
    "MISSING_CLUSTER",
    "MISSING_HOURS_AGO",
    "PLAIN_CLUSTER",
    "PLAIN_HOURS_AGO",
    "ROLL_FORWARD_LIMIT",
    "SMALL_CLUSTER",
    "SMALL_HOURS_AGO",
    "STAMP",
    "Sandbox",
    "prepare_sandbox",
]
