"""Restore tests: a backup restored into a throwaway staging cluster, validated, timed, archived.

For each source cluster one test: the backup is chosen (``services.backup_choice``), a
staging cluster created and waited for (``services.staging``), the backup restored into it
through the one restore flow (``services.restore_flow``: the same grammar, role rules,
validation and cancel as every restore), the time-to-restore compared with the cluster's
objective, the staging cluster deleted (in a ``finally``: failures and cancels included,
unless ``keep``), and the test's report archived as kind ``restore-test``
(``services.restore_test_report``). The report begins as a ``running`` record, so a test
whose process dies is completed ``interrupted`` by the next pgdeck that reads the archive.

Tests run side by side, at most ``staging.max_parallel`` at once, each in its own thread:
what they wait for is Kubernetes, the object store and the staging server, not this CPU.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from services.archive import Archive, Pending, open_archive, recover_quietly
from services.backup_choice import LATEST, BackupChoice, Chosen, choose
from services.clock import Clock, system_clock
from services.config import Config
from services.errors import ArchiveError, PgdeckError
from services.jsonable import iso
from services.models import Cluster
from services.restore_events import RestoreEvent, RestoreLog
from services.restore_flow import (
    CancelledBeforeWriting,
    ReportNotArchived,
    RestoreCancel,
    RestoreRequest,
    run_restore,
)
from services.restore_plan import Scope
from services.restore_test_report import (
    CANCELLED,
    ERROR,
    KIND,
    Teardown,
    TestFacts,
    audit_fields,
    document,
    judge,
    markdown,
)
from services.staging import Credentials, StagingCluster, StagingClusters
from services.staging_spec import COMPONENT, COMPONENT_VALUE, MANAGED_BY, MANAGER
from services.target import ResolvedTarget

if TYPE_CHECKING:
    from services.catalog import Catalog
    from services.report import RestoreReport

log = logging.getLogger(__name__)
DELETE_ATTEMPTS = 3
RESTORED_POSTGRES = "pgdeck_postgres"  # the backup's postgres database, in the staging cluster

OnEvent = Callable[[str, RestoreEvent], None]


@dataclass(frozen=True, slots=True)
class TestRequest:
    cluster: str
    namespace: str | None = None  # when the name is in several namespaces
    choice: BackupChoice = field(default_factory=lambda: BackupChoice(LATEST))
    seed: int | None = None
    keep: bool = False
    port_forward: bool = False  # reach the staging primary through the Kubernetes API
    context: str | None = None  # its Kubernetes context, when it is in several
    jobs: int | None = None  # data sessions of the restore (--jobs); None: restore.jobs

    def jobs_in(self, config: Config) -> int:
        """The data sessions this test restores with: its own, else the config's."""
        return self.jobs or config.restore.jobs


@dataclass(frozen=True, slots=True)
class TestOutcome:
    cluster: str
    result: str  # passed, failed, error, cancelled
    document: dict[str, Any]  # the archived report; {} when none could be written
    archived: dict[str, str]  # json, markdown: where; {} when not archived
    error: str | None = None  # one line: why it could not run, or the report not archived

    @property
    def ran(self) -> bool:
        """The restore itself ran (whatever it found)."""
        return self.document.get("status", "not-run") != "not-run"


class TestCancelled(PgdeckError):
    def __init__(self) -> None:
        super().__init__("cancelled")


class TestsCancel:
    """Stops every test of a run: safe from any thread and from a signal handler. A
    test waiting for its staging cluster stops waiting, one restoring cancels the
    restore; each then deletes its staging cluster and archives its report."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._restores: list[RestoreCancel] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> bool:
        """Always True: the tests stop on their own, tidying up as they go."""
        self._event.set()
        with self._lock:
            restores = list(self._restores)
        for r in restores:
            r.cancel()
        return True

    def restore_cancel(self) -> RestoreCancel:
        rc = RestoreCancel()
        with self._lock:
            self._restores.append(rc)
        if self.cancelled:
            rc.cancel()
        return rc

    def forget(self, rc: RestoreCancel) -> None:
        """A restore that ended: not held any longer (its engine holds its S3 client and
        its test, ~13 MB, which a run of hundreds of tests must not keep)."""
        with self._lock:
            if rc in self._restores:
                self._restores.remove(rc)

    def sleep(self, seconds: float) -> None:
        """A pause between polls that a cancel cuts short."""
        if self._event.wait(seconds):
            raise TestCancelled()

    def check(self) -> None:
        if self.cancelled:
            raise TestCancelled()


def is_staging(cluster: Cluster) -> bool:
    """A staging cluster pgdeck made (never itself a source of restore tests)."""
    return (
        cluster.labels.get(MANAGED_BY) == MANAGER
        and cluster.labels.get(COMPONENT) == COMPONENT_VALUE
    )


def testable(catalog: Catalog) -> list[Cluster]:
    """``--all``: the clusters in Kubernetes with logical backups on, staging ones left out."""
    return [
        s.cluster
        for s in catalog.state.clusters
        if s.cluster.in_kubernetes and s.cluster.logical_backup and not is_staging(s.cluster)
    ]


@dataclass
class _Run:
    config: Config
    catalog: Catalog
    archive: Archive
    run_id: str
    on_event: OnEvent
    cancel: TestsCancel
    clock: Clock
    started_by: dict[str, Any]
    poll_seconds: float


def run_restore_tests(
    requests: Sequence[TestRequest],
    *,
    config: Config,
    catalog: Catalog,
    run_id: str,
    on_event: OnEvent,
    cancel: TestsCancel | None = None,
    clock: Clock = system_clock,
    started_by: dict[str, Any] | None = None,
    max_parallel: int | None = None,
    poll_seconds: float = 2.0,
) -> list[TestOutcome]:
    """Run the tests, at most ``max_parallel`` (default ``staging.max_parallel``) at once;
    an outcome per request, in the requests' order. The archive must be writable first
    (an ``ArchiveError`` otherwise): every creation, deletion and result is audited."""
    require_kubernetes_api(config)
    archive = open_archive(config, clock)
    recover_quietly(archive)
    archive.check_writable()
    run = _Run(
        config,
        catalog,
        archive,
        run_id,
        on_event,
        cancel or TestsCancel(),
        clock,
        dict(started_by or {}),
        poll_seconds,
    )
    if not requests:
        return []
    workers = max(1, min(max_parallel or config.staging.max_parallel, len(requests)))
    with cf.ThreadPoolExecutor(workers, thread_name_prefix="restore-test") as pool:
        futures = [pool.submit(_one, run, req) for req in requests]
        return [f.result() for f in futures]


def require_kubernetes_api(config: Config) -> None:
    """Restore tests create staging clusters: they need a Kubernetes API, not manifests
    read from files (the demo's) nor storage alone (``ConfigError``, exit 2)."""
    from services.errors import ConfigError

    k = config.kubernetes
    if not k.enabled or k.manifests is not None:
        how = "reads it from manifests (kubernetes.manifests)" if k.enabled else "has none"
        raise ConfigError(
            f"restore tests create staging clusters through a Kubernetes API; this "
            f"configuration {how}",
            "point kubernetes.kubeconfig at the cluster where the Postgres Operator runs",
        )


def _one(run: _Run, req: TestRequest) -> TestOutcome:
    if run.cancel.cancelled:
        return TestOutcome(req.cluster, CANCELLED, {}, {}, "cancelled before it started")
    started = run.clock()
    test = _Test(
        run,
        req,
        TestFacts(
            run_id=run.run_id,
            cluster=req.cluster,
            rto_seconds=run.config.restore_tests.rto_for(req.cluster) * 60,
            started_by=run.started_by,
            test_started_at=started,
            test_finished_at=started,
            jobs=req.jobs_in(run.config),
        ),
    )
    try:
        pending = run.archive.begin(KIND, req.cluster, document(test.facts))
    except ArchiveError as exc:
        return TestOutcome(req.cluster, ERROR, {}, {}, str(exc))
    try:
        test.run()
    except (TestCancelled, CancelledBeforeWriting):
        test.note(cancelled=True)
    except PgdeckError as exc:
        test.note(error=str(exc))
    except Exception as exc:  # a defect: the staging cluster is still deleted, the report kept
        log.exception("restore test of %s", req.cluster)
        test.note(error=f"unexpected {type(exc).__name__}: {exc}")
    finally:
        test.note(teardown=test.teardown())
    test.note(test_finished_at=run.clock())
    return _archive(run, pending, test.facts, test.emit)


class _Test:
    """One test; ``facts`` holds what it learned so far, for the teardown and the report
    whatever step raised."""

    def __init__(self, run: _Run, req: TestRequest, facts: TestFacts) -> None:
        self.run_, self.req, self.facts = run, req, facts
        self.clusters: StagingClusters | None = None
        self.planned: str | None = None  # the staging cluster's name, once it is asked for

    def emit(self, event: RestoreEvent) -> None:
        self.run_.on_event(self.req.cluster, event)

    def note(self, **changes: Any) -> None:
        self.facts = replace(self.facts, **changes)

    def run(self) -> None:
        run, req = self.run_, self.req
        source = run.catalog.find(req.cluster, req.namespace, req.context)
        self.note(source=source)
        backups = run.catalog.backups(source, with_sse=True)
        chosen = choose(req.choice, backups, run.clock(), cluster=req.cluster, seed=req.seed)
        self.note(chosen=chosen)
        self.emit(
            RestoreLog(
                "info",
                f"backup {chosen.backup.url} of {iso(chosen.backup.time)} ({chosen.choice}"
                + (
                    f", seed {chosen.seed}, one of {chosen.among})"
                    if chosen.seed is not None
                    else ")"
                ),
            )
        )
        run.cancel.check()
        self.clusters = clusters = StagingClusters(
            run.config.kubernetes,
            run.config.staging,
            context=source.context or None,
            clock=run.clock,
            sleep=run.cancel.sleep,
            # a short timeout (a test's) is not overshot by a whole poll
            poll_seconds=min(run.poll_seconds, run.config.staging.ready_timeout_seconds / 10),
            audit=run.archive.note,
        )
        begun = run.clock()
        # Known before the create: one that raises may still have made it (a timeout, an
        # audit entry not written), and the teardown must find it.
        self.planned = clusters.name_for(req.cluster, run.run_id, source.namespace)
        made = clusters.create(
            source=req.cluster,
            version=source.version,
            dump_size=chosen.backup.size,
            run_id=run.run_id,
            source_namespace=source.namespace,
            keep=req.keep,
        )
        self.note(staging=made)
        where = f"staging cluster {made.namespace}/{made.name}"
        self.emit(RestoreLog("info", f"{where} created; waiting until it is ready"))
        ready = clusters.wait_ready(made)
        seconds = (run.clock() - begun).total_seconds()
        self.note(staging=ready, staging_seconds=seconds)
        self.emit(RestoreLog("info", f"{where} ready after {seconds:.1f} s"))
        creds = clusters.credentials(ready)
        with _reach(run, clusters, ready, req.port_forward, self.emit) as at:
            self.note(connect=at.connect, address=f"{at.host}:{at.port}")
            target = _target(ready, creds, at.host, at.port)
            report = _restore(run, chosen, target, self.emit, self.facts.jobs)
            self.note(restore=report)
            broken = at.broken()
            if broken and report.status != "succeeded":  # the cause, not psycopg's echo of it
                self.note(error=f"the port-forward broke: {broken}")

    def teardown(self) -> Teardown:
        made, clusters = self.facts.staging, self.clusters
        if made is None and clusters is not None and self.planned is not None:
            made = self._created_anyway(clusters, self.planned)
        if made is None:
            return Teardown("not-created")
        where = f"staging cluster {made.namespace}/{made.name}"
        if self.req.keep:
            self.emit(RestoreLog("info", f"{where} kept (--keep)"))
            return Teardown("kept")
        assert clusters is not None  # made through it
        for attempt in range(DELETE_ATTEMPTS):
            try:
                deleted = clusters.delete(made)
            except ArchiveError as exc:  # deleted; only its audit entry is missing
                self.emit(RestoreLog("error", f"{where} deleted, not audited: {exc}"))
                return Teardown("deleted", f"its audit entry was not written: {exc}")
            except PgdeckError as exc:
                if attempt + 1 < DELETE_ATTEMPTS:  # an API blip must not leave it behind
                    time.sleep(2**attempt)
                    continue
                self.emit(RestoreLog("error", f"{where} not deleted: {exc}"))
                return Teardown("failed", f"{exc}; run `pgdeck restore-test --cleanup`")
            break
        self.emit(RestoreLog("info", f"{where} deleted"))
        return Teardown("deleted" if deleted else "gone")

    def _created_anyway(self, clusters: StagingClusters, name: str) -> StagingCluster | None:
        """The staging cluster of this run, if a create that raised made it after all."""
        try:
            found = clusters.get(name)
        except PgdeckError as exc:
            self.emit(RestoreLog("error", f"cannot tell whether {name} was created: {exc}"))
            return None
        if found is None or found.run_id != self.run_.run_id:
            return None  # not there, or another run's: never ours to delete
        self.note(staging=found)
        return found


def _restore(
    run: _Run,
    chosen: Chosen,
    target: ResolvedTarget,
    emit: Callable[[RestoreEvent], None],
    jobs: int,
) -> RestoreReport:
    rc = run.cancel.restore_cancel()
    # Everything the backup holds is tested: its postgres database (where some teams keep
    # their tables) too, beside the staging cluster's own.
    scope = Scope(extra={"postgres": RESTORED_POSTGRES})
    request = RestoreRequest(backup=chosen.backup.url, target=target, scope=scope, jobs=jobs)
    try:
        return run_restore(
            request,
            emit,
            config=run.config,
            resolve=lambda spec, _ns: run.catalog.resolve(spec),
            cancel=rc,
            clock=run.clock,
        )
    except ReportNotArchived as exc:  # the restore ran: the test's report still says how
        emit(RestoreLog("error", f"the restore's own report was not archived: {exc}"))
        return exc.report
    finally:
        run.cancel.forget(rc)


@dataclass(frozen=True, slots=True)
class _Reached:
    host: str
    port: int
    connect: str  # service or port-forward
    broken: Callable[[], str | None] = lambda: None  # why the port-forward broke, if it did


@contextlib.contextmanager
def _reach(
    run: _Run,
    clusters: StagingClusters,
    cluster: StagingCluster,
    port_forward: bool,
    emit: Callable[[RestoreEvent], None],
) -> Iterator[_Reached]:
    """Where the staging primary answers: its Service (``staging.address``), or a local
    port forwarded to its master pod through the Kubernetes API (from a workstation)."""
    if not port_forward:
        host, port = split_address(clusters.address(cluster))
        yield _Reached(host, port, "service")
        return
    from services.portforward import PortForward
    from services.staging import StagingError

    pod = clusters.master_pod(cluster.name)
    if pod is None:
        raise StagingError(f"staging cluster {cluster.namespace}/{cluster.name} has no master pod")
    with PortForward(
        run.config.kubernetes,
        clusters.context,
        cluster.namespace,
        pod,
        on_error=lambda exc: emit(RestoreLog("error", f"port-forward: {exc}")),
    ) as fwd:
        emit(
            RestoreLog(
                "info", f"port-forward {fwd.host}:{fwd.port} -> {cluster.namespace}/{pod}:5432"
            )
        )
        yield _Reached(fwd.host, fwd.port, "port-forward", lambda: _text(fwd.error))


def _text(error: object) -> str | None:
    return None if error is None else str(error)


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of ``staging.address`` after its template is filled."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address.strip("[]"), 5432
    return host.strip("[]"), int(port)


def _target(cluster: StagingCluster, creds: Credentials, host: str, port: int) -> ResolvedTarget:
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(
        host=host,
        port=str(port),
        user=creds.username,
        dbname="postgres",
        connect_timeout="10",
        application_name="pgdeck-restore-test",
        # A staging primary gone mid-restore (its node, a partition) is noticed in about
        # 90 s, not the OS's two hours.
        keepalives="1",
        keepalives_idle="30",
        keepalives_interval="10",
        keepalives_count="6",
    )
    return ResolvedTarget(
        name=f"staging {cluster.name}",
        conninfo=conninfo,
        password=creds.password,
        display=f"{creds.username}@{host}:{port}/postgres",
    )


def _archive(
    run: _Run, pending: Pending, facts: TestFacts, emit: Callable[[RestoreEvent], None]
) -> TestOutcome:
    doc = document(facts)
    result, _ = judge(facts)
    try:
        done = run.archive.complete(
            pending, KIND, facts.cluster, doc, markdown(doc), audit_fields(doc)
        )
    except ArchiveError as exc:
        emit(RestoreLog("error", f"the test's report was not archived: {exc}"))
        return TestOutcome(facts.cluster, result, doc, {}, str(exc))
    archived = {"json": done.json_url, "markdown": done.markdown_url}
    return TestOutcome(facts.cluster, result, doc, archived, facts.error)


def started_by(command: str, *, in_cluster: bool, job: str | None, user: str) -> dict[str, Any]:
    import socket

    from services.liveness import os_user

    return {
        "user": user,
        "os_user": os_user(),
        "host": socket.gethostname(),
        "command": command,
        "in_cluster": in_cluster,
        "job": job,
    }
