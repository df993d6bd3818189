"""``pgdeck restore-test``: restore tests in throwaway staging clusters, from this machine.

``CLUSTER... | --all`` runs the tests (``services.restore_test``) side by side, prints each
test's log lines prefixed by its cluster, then one row per test; ``--cleanup`` deletes the
staging clusters a crashed run left. Ctrl-C, SIGTERM and SIGHUP cancel every test: each
deletes its staging cluster and archives its report before the command exits 128+signal.
Exit 0 when every test passed, 1 when one did not, 2 when none could run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from datetime import timedelta
from typing import Any

from services.config import Config, load_config
from services.errors import UsageError
from services.jsonable import iso
from services.restore_events import RestoreEvent, RestoreProgress
from services.text import safe_text
from tui import present
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, err, print_json, table
from tui.cli.restore_test_history import cmd_history
from tui.cli.restore_test_jobs import cmd_in_cluster

DEFAULT_OLDER_THAN = timedelta(days=1)  # longer than any restore test runs


def cmd_restore_test(args: argparse.Namespace) -> int:
    if args.history:
        return cmd_history(args)
    config = load_config(args.config, args.kube)
    if args.cleanup:
        return _cleanup(args, config)
    if args.in_cluster or args.dry_run:
        return cmd_in_cluster(args, config)
    return _run(args, config)


def _run(args: argparse.Namespace, config: Config) -> int:
    from services.backup_choice import parse_choice
    from services.report import _who
    from services.restore_test import (
        TestRequest,
        TestsCancel,
        require_kubernetes_api,
        run_restore_tests,
        started_by,
        testable,
    )
    from services.staging_spec import new_run_id
    from tui.cli.restore import _Signals
    from tui.cli.sources import open_catalog

    if bool(args.clusters) == bool(args.all):
        raise UsageError("name the clusters to test, or pass --all")
    choice = parse_choice(args.backup)
    require_kubernetes_api(config)
    catalog, _ = open_catalog(args, config)
    if args.all:
        clusters = [(c.name, c.namespace or None, c.context or None) for c in testable(catalog)]
        if not clusters:
            err("pgdeck: no cluster in Kubernetes has logical backups enabled: nothing to test")
            return EXIT_USAGE
    else:
        # A name that is not there is a typo, not a failed test: refused before anything runs.
        found = [catalog.find(name, args.namespace) for name in args.clusters]
        clusters = [(c.name, c.namespace or None, c.context or None) for c in found]
    run_id = args.run_id or new_run_id(args.clock())
    requests = [
        TestRequest(
            cluster=name,
            namespace=namespace,
            choice=choice,
            seed=args.seed,
            keep=args.keep,
            port_forward=args.port_forward or config.staging.port_forward,
            context=context,
            jobs=args.jobs,
        )
        for name, namespace, context in clusters
    ]
    cancel = TestsCancel()
    lines = _Lines(quiet=False)
    command = f"{args.prog} {shlex.join(sys.argv[1:] if args.argv is None else args.argv)}"
    who = started_by(
        command,
        in_cluster=_in_cluster(),
        job=_job_name(),
        user=_who(),
    )
    err(
        f"pgdeck: restore-test run {run_id}: {len(requests)} cluster(s), {config.staging.max_parallel} at once"
    )
    with _Signals(cancel) as signals:
        outcomes = signals.run(
            lambda: run_restore_tests(
                requests,
                config=config,
                catalog=catalog,
                run_id=run_id,
                on_event=lines.on_event,
                cancel=cancel,
                clock=args.clock,
                started_by=who,
            )
        )
    if args.json:
        print_json(
            [
                {**o.document, "cluster": o.cluster, "archived": o.archived, "error": o.error}
                for o in outcomes
            ]
        )
    else:
        table(
            ["CLUSTER", "RESULT", "TTR", "OBJECTIVE", "BACKUP", "TEARDOWN", "REPORT / WHY"],
            [_row(o) for o in outcomes],
        )
    for o in outcomes:
        for reason in o.document.get("reasons") or ([o.error] if o.error else []):
            err(f"pgdeck: {o.cluster}: {safe_text(str(reason))}")
    if signals.received:
        return 128 + signals.received
    # A pass without its archived report is no evidence: the audit must hold every test.
    if all(o.result == "passed" and o.archived for o in outcomes):
        return EXIT_OK
    if not any(o.ran for o in outcomes):
        return EXIT_USAGE
    return EXIT_PROBLEMS


def _row(o: Any) -> list[str]:
    doc = o.document
    ttr = (doc.get("time_to_restore") or {}).get("total_seconds")
    rto = (doc.get("objective") or {}).get("rto_seconds")
    backup = (doc.get("backup_object") or {}).get("time")
    return [
        o.cluster,
        o.result,
        "-" if ttr is None else present.duration(ttr),
        "-" if rto is None else present.duration(rto),
        backup or "-",
        (doc.get("teardown") or {}).get("status", "-"),
        o.archived.get("markdown") or o.error or "-",
    ]


class _Lines:
    """Each test's log lines, prefixed by its cluster; progress as a line per tenth."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self._lock = threading.Lock()
        self._tenths: dict[str, int] = {}

    def on_event(self, cluster: str, event: RestoreEvent) -> None:
        from tui.restore_view import event_line

        if isinstance(event, RestoreProgress):
            line = self._progress(cluster, event)
        else:
            line = event_line(event)
        if line is not None and not self.quiet:
            with self._lock:
                err(f"{safe_text(cluster)}: {line}")

    def _progress(self, cluster: str, p: RestoreProgress) -> str | None:
        if not p.total:
            return None
        tenth = min(10, p.read * 10 // p.total)
        if tenth <= self._tenths.get(cluster, 0):
            return None
        self._tenths[cluster] = tenth
        return f"restored {tenth * 10}% of the backup"


def _in_cluster() -> bool:
    from services.kube import _in_cluster

    return _in_cluster()


def _job_name() -> str | None:
    import os

    return os.environ.get("PGDECK_JOB") or None


def _cleanup(args: argparse.Namespace, config: Config) -> int:
    """In every configured context: restore tests create their staging clusters in the
    source cluster's."""
    from services.archive import open_archive
    from services.kube import _contexts
    from services.restore_test_launcher import JobLauncher
    from services.staging import StagingClusters

    archive = open_archive(config, args.clock)
    archive.check_writable()  # every deletion is audited: refuse before deleting any
    older = args.older_than or DEFAULT_OLDER_THAN
    contexts = _contexts(config.kubernetes) or [None]
    deleted = []
    for context in contexts:
        staging = StagingClusters(
            config.kubernetes, config.staging, context=context, clock=args.clock, audit=archive.note
        )
        deleted += staging.cleanup(older_than=older)
        launcher = JobLauncher(config, context=staging.context, clock=args.clock, archive=archive)
        for job in launcher.cleanup(older_than=older):
            err(
                f"pgdeck: deleted Job {staging.context}/{config.staging.namespace}/{job} "
                "(a restore-test Job left behind)"
            )
    if args.json:
        print_json(deleted)
    elif deleted:
        table(
            ["DELETED", "CONTEXT", "NAMESPACE", "SOURCE", "RUN", "CREATED"],
            [
                [c.name, c.context, c.namespace, c.source, c.run_id, iso(c.created) or "-"]
                for c in deleted
            ],
        )
    else:
        where = ", ".join(f"{c}/{config.staging.namespace}" for c in contexts if c)
        err(
            f"pgdeck: no staging clusters older than {older.total_seconds() / 3600:g}h in "
            f"{where or config.staging.namespace}"
        )
    return EXIT_OK
