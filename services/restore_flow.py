"""One restore, from a request to its archived report: the steps the command line, the
console's wizard and a scheduled restore test all take, in one place.

The archive is checked writable (and reports of processes that died are completed
first), the target's server is asked who it is and confirmed as production when it is
one, the backup is resolved, confirmed and optionally read through first, then the
engine (``services.restore``) runs with its report written ``running`` as it starts
and completed, with its audit entry, when it ends.

Nothing here needs a terminal: what a person may be asked (a password, a confirmation)
are callbacks the caller answers or leaves out, progress goes to ``on_event``, and a
cancel may come from any thread or a signal handler (``RestoreCancel``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from services.archive import Pending, open_archive, recover_quietly
from services.clock import Clock, system_clock
from services.config import JOBS_MAX, Config, session_settings_for
from services.dump import DumpSummary
from services.errors import ArchiveError, ConfigError, PgdeckError, UsageError
from services.report import RestoreReport, archive_report, begin_report, report_label
from services.restore import RestoreEngine
from services.restore_events import (
    BackupIntact,
    ProductionRecognised,
    RestoreEvent,
    RestoreLog,
    VerifyProgress,
)
from services.restore_plan import Scope
from services.storage import BackupStore
from services.target import ResolvedTarget, ServerIdentity, identify, production_twin

Resolver = Callable[[str, str | None], tuple[BackupStore, str, str]]


def parse_jobs(text: str) -> int:
    """``--jobs N`` as typed (the command line, the wizard's field): a ``UsageError``
    saying what is expected unless a whole number from 1 to ``JOBS_MAX``."""
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= JOBS_MAX:
        raise UsageError(f"expected a whole number from 1 to {JOBS_MAX}")
    return int(text)


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """What to restore where, and how."""

    backup: str  # s3://..., file://..., CLUSTER@latest or CLUSTER@<ISO time>
    target: ResolvedTarget
    scope: Scope = field(default_factory=Scope)
    namespace: str | None = None  # the cluster's, when its name is in several
    verify_first: bool = False
    drop_existing: bool = False
    thorough: bool = False
    on_failure: str = "keep"  # or drop: the databases a failed run created
    # The name of the production target the person confirmed restoring into, if any.
    production_confirmed: str | None = None
    # The server's identity when the caller asked it already (the wizard's preflight).
    identity: ServerIdentity | None = None
    jobs: int | None = None  # sessions loading table data at once; None: restore.jobs


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What is about to be written, for a person to confirm."""

    scope: Scope
    url: str
    server: str  # user@host:port/db, as the server says
    target_name: str
    production: bool


class CancelledBeforeWriting(PgdeckError):
    def __init__(self) -> None:
        super().__init__("cancelled; nothing was written to the target")


class NotConfirmed(PgdeckError):
    def __init__(self) -> None:
        super().__init__("nothing was done")


class ReportNotArchived(ArchiveError):
    """The restore ran (``report`` says how) but its report could not be archived."""

    def __init__(self, report: RestoreReport, cause: PgdeckError) -> None:
        super().__init__(cause.message, cause.hint)
        self.report = report


class RestoreCancel:
    """Stops a restore flow: safe from any thread and from a signal handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._engine: RestoreEngine | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> bool:
        """True when the restore had begun writing: what runs on the server is
        cancelled and the report ends ``cancelled``. False when nothing was written,
        and nothing will be."""
        with self._lock:
            self._cancelled = True
            engine = self._engine
        if engine is None:
            return False
        engine.cancel()
        return True

    def check(self) -> None:
        if self._cancelled:
            raise CancelledBeforeWriting()

    def _attach(self, engine: RestoreEngine) -> None:
        with self._lock:
            self.check()
            self._engine = engine


def run_restore(
    request: RestoreRequest,
    on_event: Callable[[RestoreEvent], None],
    *,
    config: Config,
    resolve: Resolver,
    confirm: Callable[[RestorePlan], bool] | None = None,
    ask_password: Callable[[ResolvedTarget], str] | None = None,
    cancel: RestoreCancel | None = None,
    clock: Clock = system_clock,
) -> RestoreReport:
    """Restore, validate and archive the report; the report, archived.

    Before anything is written a ``PgdeckError`` says why not (``NotConfirmed``,
    ``CancelledBeforeWriting``, a production target not confirmed, an unwritable archive,
    a damaged backup with ``verify_first``). Once the engine ran, its report is returned
    whatever the outcome, or carried by ``ReportNotArchived`` when the archive failed.
    ``confirm`` (None: confirmed already) sees the plan before anything is read;
    ``ask_password`` is asked when the target refuses a connection without one."""
    cancel = cancel or RestoreCancel()
    archive = open_archive(config, clock)
    recover_quietly(archive)
    archive.check_writable()
    target, identity = _identify(request.target, request.identity, ask_password)
    target = _production(target, identity, config, request.production_confirmed, on_event)
    cancel.check()
    store, key, url = resolve(request.backup, request.namespace)
    cancel.check()
    plan = RestorePlan(request.scope, url, identity.display, target.name, target.production)
    if confirm is not None and not confirm(plan):
        raise NotConfirmed()
    verified = _verify_first(store, key, url, on_event, cancel) if request.verify_first else None
    label = report_label(url, target.name)
    pending: list[Pending] = []
    jobs = request.jobs or config.restore.jobs
    engine = RestoreEngine(
        store=store,
        key=key,
        url=url,
        target=target,
        scope=request.scope,
        drop_existing=request.drop_existing,
        checks=config.checks,
        on_event=on_event,
        thorough=request.thorough,
        verified=verified,
        clock=clock,
        on_failure=request.on_failure,
        identity=identity,
        on_start=lambda r: pending.append(begin_report(r, archive, label, clock=clock)),
        jobs=jobs,
        spool_dir=config.restore.spool_dir,
        spool_limit=config.restore.spool_limit,
        session_settings=session_settings_for(config.restore.session_settings, jobs),
    )
    cancel._attach(engine)
    report = engine.run()
    try:
        return archive_report(
            report, archive, label, pending=pending[0] if pending else None, clock=clock
        )
    except PgdeckError as exc:
        raise ReportNotArchived(report, exc) from exc


def _identify(
    target: ResolvedTarget,
    known: ServerIdentity | None,
    ask_password: Callable[[ResolvedTarget], str] | None,
) -> tuple[ResolvedTarget, ServerIdentity]:
    """The target's live identity, with the password asked for when it needs one."""
    if known is not None:
        return target, known
    try:
        return target, identify(target)
    except PgdeckError as exc:
        if (
            ask_password is None
            or "password authentication failed" not in exc.message
            or target.password is not None
        ):
            raise
    target = dataclasses.replace(target, password=ask_password(target))
    return target, identify(target)


def _production(
    target: ResolvedTarget,
    identity: ServerIdentity,
    config: Config,
    confirmed: str | None,
    on_event: Callable[[RestoreEvent], None],
) -> ResolvedTarget:
    """Production by the server, not by its spelling: the target as the production one
    it is, which needs its name confirmed."""
    twin, notes = production_twin(target, identity, config)
    for note in notes:
        on_event(RestoreLog("warning", note))
    if twin is not None and not target.production:
        target = dataclasses.replace(target, production=True, name=twin.name)
        on_event(ProductionRecognised(identity.display, twin.name, identity.system_identifier))
    if target.production and confirmed != target.name:
        raise ConfigError(
            f"target {target.name!r} is production",
            f"pass --yes-production {target.name} to restore into it",
        )
    return target


def _verify_first(
    store: BackupStore,
    key: str,
    url: str,
    on_event: Callable[[RestoreEvent], None],
    cancel: RestoreCancel,
) -> DumpSummary:
    from services.backup_stream import StreamProgress
    from services.verify import verify_before_restore

    def progress(p: StreamProgress) -> None:
        cancel.check()
        on_event(VerifyProgress(url, p.compressed_read, p.compressed_total))

    on_event(VerifyProgress(url, 0, 0))
    summary = verify_before_restore(store, key, url, progress=progress)
    on_event(BackupIntact(url, len(summary.tables)))
    return summary
