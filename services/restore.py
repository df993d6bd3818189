"""The restore engine: object storage -> gunzip -> judged statements -> the target, with live events.

One pass does everything: the compressed stream is read (resumed with ranged GETs if the
connection drops), decompressed and CRC-checked, read as a pg_dumpall stream
(``services.dump``: each statement judged against what pg_dump writes, anything else
refused before it is sent), filtered to the chosen scope (``services.restore_plan``) and
sent through pgdeck's own sessions (``services.loader``). No script interpreter runs any
part of the backup, on this machine or on the server. Memory stays bounded whatever the
dump's size.

Errors are judged on purpose: what a fresh operator cluster already has (the superuser and
other roles, what Spilo creates) is made idempotent or left alone before it is sent; any
other SQL error stops the restore at once with the statement that caused it. One restore
at a time writes to a target (an advisory lock held for the whole run). A cancelled or
failed run says which databases it created and left incomplete, and drops them when asked.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from services.backup_stream import (
    Busy,
    CorruptBackup,
    StreamCancelled,
    compressed_chunks,
    gunzip,
    prefetch,
)
from services.clock import Clock, system_clock
from services.config import Check
from services.copy_lanes import LanePool
from services.dump import DumpReader, DumpSummary, NotADump, TableRows
from services.errors import PgdeckError
from services.loader import Cancelled, Loader, LoadFailed, ServerMessage
from services.redact import mask_literals
from services.report import PhaseTime, ReportScope, RestoreReport, RolesOutcome
from services.restore_events import (
    RestoreDone,
    RestoreEvent,
    RestoreLog,
    RestorePhase,
    RestoreProgress,
    TableLoaded,
)
from services.restore_plan import RestoreFilter, RestoreRefused, Scope, TargetFacts
from services.restore_writer import RefusedInPlace, TargetWriter
from services.spool import Spool
from services.storage import BackupStore
from services.target import ResolvedTarget, ServerIdentity, connect, identify, run_preflight
from services.validate import TableCheck, Validation, validate

_VERSION = re.compile(rb"-- Dumped from database version (\d+(?:\.\d+)?)")
_PEEK_LIMIT = 1 << 20
DEFAULT_SPOOL_LIMIT = 8 << 30
# One restore at a time per target: pg_try_advisory_lock on the maintenance database.
LOCK_KEY = 0x7067_6465_636B  # "pgdeck"
ON_FAILURE = ("keep", "drop")


class RestoreFailed(PgdeckError):
    pass


class _Cancelled(Exception):
    pass


class RestoreEngine:
    def __init__(
        self,
        *,
        store: BackupStore,
        key: str,
        url: str,
        target: ResolvedTarget,
        scope: Scope,
        drop_existing: bool = False,
        checks: tuple[Check, ...] = (),
        on_event: Callable[[RestoreEvent], None] | None = None,
        progress_every: float = 0.25,
        retries: int = 5,
        backoff: float = 0.5,
        thorough: bool = False,
        verified: DumpSummary | None = None,
        clock: Clock = system_clock,
        on_failure: str = "keep",
        identity: ServerIdentity | None = None,
        on_start: Callable[[RestoreReport], None] | None = None,
        jobs: int = 1,
        spool_dir: Path | None = None,
        spool_limit: int = DEFAULT_SPOOL_LIMIT,
        session_settings: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {ON_FAILURE}")
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        # --jobs N (N > 1): table data loads on N sessions of its own (services.copy_lanes);
        # 1 is the serial path, every statement and every COPY on one session.
        self.jobs = jobs
        self.spool_dir, self.spool_limit = spool_dir, spool_limit
        # restore.session_settings (checked against services.config's allow-list): given
        # to every session pgdeck opens on the target as it connects, and in the report.
        self.session_settings = dict(session_settings)
        # Where the time went, for the report: the download's and gunzip's threads' busy
        # seconds, and the main thread's (reading, judging, sending; waiting for bytes).
        self._download = Busy()
        self._decompress = Busy()
        self._reading = 0.0
        self._waiting = 0.0
        self._flush_seconds: float | None = None
        self._lanes: LanePool | None = None
        self.thorough = thorough
        self.verified = verified
        self.retries, self.backoff = retries, backoff
        self.store, self.key, self.url = store, key, url
        self.target, self.scope = target, scope
        self.drop_existing = drop_existing
        self.checks = checks
        self.clock = clock
        self.on_failure = on_failure
        self.identity = identity
        self._on_start = on_start
        self._emit = on_event or (lambda _e: None)
        self._every = progress_every
        self._cancel = threading.Event()
        # Stops the download's wait too: set by a cancel, and by a data session that failed.
        self._halt = threading.Event()
        self._loader: Loader | None = None
        self.warnings: list[str] = []
        self._phases: list[PhaseTime] = []
        self._begun: RestoreReport | None = None  # the report as written when the run began
        self._read = 0
        self._total = 0
        self._retries = 0
        self._db: tuple[str, float] | None = None
        self._filter: RestoreFilter | None = None
        self._reader: DumpReader | None = None
        self._writer: TargetWriter | None = None
        self._load_started = 0.0
        self._server_major = 0
        self._target_databases: set[str] = set()

    def cancel(self) -> None:
        """Stop the run as cancelled: safe from any thread and from a signal handler. What
        runs on the server is cancelled; a COPY in flight is rolled back."""
        self._cancel.set()
        self._halt.set()
        loader = self._loader
        if loader is not None:
            loader.cancel()
        lanes = self._lanes
        if lanes is not None:
            lanes.cancel()

    # --- the run, phase by phase --------------------------------------------------------------
    def run(self) -> RestoreReport:
        started = self.clock()
        monotonic_start = time.monotonic()
        begun = RestoreReport(
            status="running",
            backup=self.url,
            target=self.target.display,
            target_name=self.target.name,
            started_at=started,
            finished_at=started,
        )
        self._begun = begun = self._report_now(begun)
        if self._on_start is not None:
            self._on_start(begun)
        status, error, validation = "failed", None, None
        try:
            validation = self._run()
            status, error = _judged(validation)
        except (_Cancelled, StreamCancelled):
            status, error = (
                "cancelled",
                "cancelled; the statement or COPY in flight was rolled back",
            )
        except PgdeckError as exc:
            error = str(exc)
            self._log("error", error)
        except Exception as exc:  # the report must still say what happened
            logging.getLogger(__name__).debug("restore failed", exc_info=True)
            error = f"the restore failed unexpectedly ({type(exc).__name__}: {exc})"
            self._log("error", error)
        finally:
            finished = started + timedelta(seconds=time.monotonic() - monotonic_start)
            report = self._finish(status, error, validation, finished)
        self._emit(RestoreDone(report))
        return report

    def _run(self) -> Validation:
        with self._phase("preflight"):
            head, stream, facts = self._open()
        self._filter = RestoreFilter(self.scope, facts)
        self._check_verified()
        assert self._loader is not None
        writer = TargetWriter(self._loader, self._filter, self._target_databases)
        if self.jobs > 1:
            self._lanes = writer._lanes = LanePool(
                self.target,
                jobs=self.jobs,
                spool=Spool(self.spool_dir, self.spool_limit),
                copied=writer.copied,
                on_message=self._on_server_message,
                on_halt=self._halt.set,
                settings=self.session_settings,
            )
            if self._cancel.is_set():
                self._lanes.cancel()
        reader = DumpReader(writer, on_table=self._table_done, on_database=self._database_started)
        self._writer, self._reader, writer.reader = writer, reader, reader
        with self._phase("restore"):
            try:
                self._load(reader, head, stream)
                self._end_of_dump(reader)
            finally:
                self._close_lanes()
            self._flush()
        with self._phase("validate"):
            return self._validate(reader)

    def _open(self) -> tuple[list[bytes], Iterator[bytes], TargetFacts]:
        """The backup's first part read (no write yet), the target checked against it,
        pgdeck's sessions opened and the target locked for this run."""
        # download | gunzip | (read, judge, send): three threads, as the shell
        # pipeline has three processes.
        stream = prefetch(
            gunzip(prefetch(self._compressed()), self._decompress), cancelled=self._halt
        )
        head, dump_version = self._peek(stream)
        pre = run_preflight(self.target, dump_version, drop_existing=self.drop_existing)
        self._server_major = pre.server_major
        self._target_databases = set(pre.facts.databases)
        for check, ok, detail in pre.findings:
            self._log("info" if ok else "error", f"preflight: {check}: {detail}")
        failed = [f"{c}: {d}" for c, ok, d in pre.findings if not ok]
        if failed:
            raise RestoreRefused(
                "preflight failed: " + "; ".join(failed), "nothing was written to the target"
            )
        if self.identity is None:
            self.identity = identify(self.target)
        self._loader = Loader(
            self.target, on_message=self._on_server_message, settings=self.session_settings
        )
        if self._cancel.is_set():
            raise _Cancelled()
        self._lock_target()
        return head, stream, pre.facts

    def _check_verified(self) -> None:
        """The dump was read through once already (verify first): every database is
        checked now, before the first statement is sent."""
        if self.verified is None:
            return
        assert self._filter is not None
        held = {d.name for d in self.verified.databases}
        absent = sorted(set(self.scope.databases) - held)
        if absent:
            raise RestoreRefused(
                f"{', '.join(repr(a) for a in absent)}: no such database in this backup",
                f"it holds {', '.join(sorted(held - {'template0'}))}",
            )
        for section in self.verified.databases:
            self._filter.check_database(
                section.name,
                created=section.created,
                locales=[section.locale] if section.locale else [],
            )

    def _validate(self, reader: DumpReader) -> Validation:
        assert self._filter is not None
        summary = reader.summary()
        names = {
            d.name: self.scope.target_name(d.name)
            for d in summary.databases
            if self._filter.scope.chosen(d.name) and d.name != "template0"
        }
        return validate(
            self.target,
            summary,
            names,
            self.checks,
            copied=None if self.thorough or self._writer is None else self._writer.copied,
            thorough=self.thorough,
            # PostgreSQL 17's login event triggers of the backup must not fire as
            # pgdeck connects to validate.
            event_triggers_off=self._server_major >= 17,
            written=list(self._filter.restored),
        )

    def _lock_target(self) -> None:
        assert self._loader is not None
        conn = self._loader.maintenance()
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
        if row and row[0]:
            return
        holder = conn.execute(
            "SELECT a.pid, coalesce(host(a.client_addr), 'local'), a.backend_start"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            (LOCK_KEY,),
        ).fetchone()
        since = (
            f" since {holder[2]:%Y-%m-%d %H:%M:%S %Z} (pid {holder[0]}, from {holder[1]})"
            if holder
            else ""
        )
        raise RestoreRefused(
            f"another restore is writing to {self.target.display}{since}",
            "wait for it to finish (or stop it) and try again; nothing was written",
        )

    # --- streaming ----------------------------------------------------------------------------
    def _compressed(self) -> Iterator[bytes]:
        def on_retry(attempt: int, offset: int, exc: BaseException) -> None:
            self._retries = attempt
            self._log(
                "warning",
                f"storage connection dropped at byte {offset}; resuming (retry {attempt})",
            )

        def on_size(size: int) -> None:
            self._total = size

        clock = time.perf_counter
        began = clock()
        for chunk in compressed_chunks(
            self.store,
            self.key,
            on_retry=on_retry,
            on_size=on_size,
            retries=self.retries,
            backoff=self.backoff,
        ):
            self._download.seconds += clock() - began
            self._read += len(chunk)
            yield chunk
            began = clock()

    def _peek(self, stream: Iterator[bytes]) -> tuple[list[bytes], str | None]:
        """Decompress the dump's first part (no write yet) to learn its server version."""
        head: list[bytes] = []
        size = 0
        try:
            for data in stream:
                head.append(data)
                size += len(data)
                if size >= _PEEK_LIMIT:
                    break
        except CorruptBackup as exc:
            raise RestoreRefused(f"{self.url}: {exc.message}", exc.hint) from exc
        m = _VERSION.search(b"".join(head)[:_PEEK_LIMIT])
        return head, m[1].decode() if m else None

    def _load(self, reader: DumpReader, head: list[bytes], stream: Iterator[bytes]) -> None:
        """The dump read to its end (or to the first refusal), each statement sent."""
        assert self._writer is not None
        self._load_started = started = time.monotonic()
        last = 0.0

        def chunks() -> Iterator[bytes]:
            yield from head
            yield from stream

        clock = time.perf_counter
        try:
            began = clock()
            for data in chunks():
                fed = clock()
                self._waiting += fed - began
                if self._cancel.is_set():
                    raise _Cancelled()
                reader.feed(data)
                now = time.monotonic()
                if now - last >= self._every:
                    last = now
                    self._progress(reader, now - started)
                began = clock()
                self._reading += began - fed
            if reader.summary().complete:
                self._writer.flush_deferred()
        except CorruptBackup as exc:
            raise RestoreFailed(
                f"{self.url}: {exc.message}; the restore was stopped", "restore an older backup"
            ) from exc
        except RefusedInPlace as exc:
            raise RestoreFailed(
                f"{self.url}: {exc.message}",
                "the restore was stopped before that line; restore this database under a new "
                "name (--database OLD:NEW) to have the backup's as it was",
            ) from exc
        except NotADump as exc:
            raise RestoreFailed(
                f"{self.url}: {exc.message}",
                "the restore was stopped before that line; restore an older backup and "
                "find out who wrote this object",
            ) from exc
        except (Cancelled, StreamCancelled) as exc:
            failure = self._lanes.failure if self._lanes is not None else None
            if failure is None or self._cancel.is_set():
                raise _Cancelled() from exc
            raise self._sql_error(failure) from exc
        except LoadFailed as exc:
            if self._cancel.is_set():
                raise _Cancelled() from exc
            raise self._sql_error(exc) from exc

    def _flush(self) -> None:
        """With ``synchronous_commit`` off on pgdeck's sessions, the last commits may not be
        on disk yet: one commit with it on (a transaction given an id, so it writes a
        commit record) waits until the WAL is flushed up to it, which holds every earlier
        record, and for a synchronous standby as the server requires. Only then is the
        restore validated and reported."""
        import psycopg

        if self.session_settings.get("synchronous_commit") != "off" or self._loader is None:
            return
        started = time.monotonic()
        conn = self._loader.maintenance()
        try:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT pg_catalog.txid_current()")
        except psycopg.Error as exc:
            raise RestoreFailed(
                f"the restore's data could not be made durable on {self.target.display}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                "check the target's state and restore again",
            ) from exc
        self._flush_seconds = round(time.monotonic() - started, 3)

    def _time_split(self) -> dict[str, float]:
        """Where the time went: the download's and gunzip's own seconds (threads of their
        own, beside the rest), the main thread's reading and sending, and its waits for
        the next decompressed bytes."""
        split = {
            "download_seconds": round(self._download.seconds, 3),
            "decompress_seconds": round(self._decompress.seconds, 3),
            "reading_seconds": round(self._reading, 3),
            "waiting_for_data_seconds": round(self._waiting, 3),
        }
        if self._flush_seconds is not None:
            split["durable_flush_seconds"] = self._flush_seconds
        return split

    def _sql_error(self, exc: LoadFailed) -> RestoreFailed:
        """The restore's one line for a statement (or a data session's COPY) the server
        refused, with where it stands in the dump."""
        assert self._writer is not None
        where = ""
        last = getattr(exc, "statement", None) or self._writer.last
        if last is not None:
            line, text = last
            excerpt = mask_literals(" ".join(text[:16384].split())).rstrip(";")[:300]
            where = f" at line {line}; statement: {excerpt}"
        return RestoreFailed(
            f"the restore stopped on an SQL error: {exc.message}{where}",
            "it was stopped there; fix the cause or restore with another scope",
        )

    def _close_lanes(self) -> None:
        """The data sessions closed (what was in flight rolled back), the spool removed,
        the tables they loaded announced, and a line on how the load went."""
        lanes = self._lanes
        if lanes is None:
            return
        lanes.close()
        self._announce_finished()
        self._log("info", lanes.summary())

    def _announce_finished(self) -> None:
        if self._lanes is not None:
            for database, table, rows in self._lanes.take_finished():
                self._emit(TableLoaded(database, table, rows))

    def _end_of_dump(self, reader: DumpReader) -> None:
        """The dump ended: complete, and holding every database asked for."""
        self._database_started(None)
        assert self._filter is not None
        summary = reader.summary()
        if summary.complete:  # a dump cut short leaves its last database incomplete
            self._filter.end()
        if not summary.complete:
            where = (
                f" inside {reader.table.database}.{reader.table.qualified}" if reader.table else ""
            )
            raise RestoreFailed(
                f"{self.url}: the dump is incomplete, its trailer never arrived (it stops{where or ' early'}); "
                "the restore was stopped",
                "restore an older backup",
            )
        missing = self._filter.missing()
        if missing:
            raise RestoreFailed(
                f"{', '.join(repr(m) for m in missing)}: no such database in this backup",
                "see `pgdeck verify` for the databases it holds",
            )
        if self._cancel.is_set():
            raise _Cancelled()
        self._progress(reader, time.monotonic() - self._load_started)

    # --- outcome ----------------------------------------------------------------------------------
    def _report_now(self, report: RestoreReport, **outcome: Any) -> RestoreReport:
        """``report`` with what the run knows so far (the server, the bytes, the phases)."""
        f = self._filter
        roles = None
        if f is not None:
            roles = RolesOutcome(
                existing_left_alone=tuple(sorted(f.existing_roles)),
                passwords_left_out=f.stripped_passwords,
                created=tuple(f.created_roles),
                privileges_left_out=tuple(f.demoted),
                memberships_left_out=tuple(f.skipped_grants),
            )
        return replace(
            report,
            target=self.identity.display if self.identity else self.target.display,
            scope=ReportScope(
                databases=tuple(
                    f"{k}:{v}" if k != v else k for k, v in self.scope.databases.items()
                ),
                roles=self.scope.roles,
                target_system_identifier=self.identity.system_identifier if self.identity else None,
                roles_outcome=roles,
            ),
            phases=tuple(self._phases),
            session_settings=dict(self.session_settings),
            compressed_bytes=self._read,
            uncompressed_bytes=self._reader.bytes if self._reader else 0,
            retries=self._retries,
            **outcome,
        )

    def _finish(
        self, status: str, error: str | None, validation: Validation | None, finished: datetime
    ) -> RestoreReport:
        """The final report. Called while the lock is still held: --on-failure drop
        happens before another restore may start."""
        try:
            f = self._filter
            incomplete: tuple[str, ...] = ()
            dropped: tuple[str, ...] = ()
            if f is not None and status != "succeeded":
                incomplete = tuple(f.incomplete)
                if incomplete and self.on_failure == "drop":
                    dropped = tuple(self._drop([d for d in incomplete if d not in f.replaced]))
            tables = validation.tables if validation is not None else ()
            assert self._begun is not None
            return self._report_now(
                self._begun,
                status=status,
                error=error,
                finished_at=finished,
                validation=validation,
                tables=tables or self._tables_read(),
                warnings=(*self.warnings, *self._outcome_warnings()),
                databases_created=tuple(f.created) if f is not None else (),
                databases_incomplete=incomplete,
                databases_dropped=dropped,
                time_split=self._time_split(),
                parallel=self._lanes.facts() if self._lanes is not None else None,
            )
        finally:
            if self._loader is not None:
                self._loader.close()

    def _tables_read(self) -> tuple[TableCheck, ...]:
        """Without validation: the tables of the dump read so far, with the rows copied."""
        if self._reader is None or self._filter is None:
            return ()
        return tuple(
            TableCheck(
                self.scope.target_name(t.database),
                t.qualified,
                t.rows,
                self._writer.copied.get((t.database, t.qualified)) if self._writer else None,
            )
            for t in self._reader.summary_tables()
            if self.scope.chosen(t.database)
        )

    def _outcome_warnings(self) -> Iterator[str]:
        f = self._filter
        if f is None:
            return
        if f.existing_roles:
            yield (
                "expected: roles the target already has were left as they are: "
                + ", ".join(sorted(f.existing_roles))
            )
        if self.scope.whole_cluster:
            for name, count in (self._writer.own_left_out if self._writer else {}).items():
                yield (
                    f"the backup's {name} database holds {count} "
                    f"statement{'s' if count != 1 else ''} (tables, data, grants), not restored: "
                    f"a whole-cluster restore leaves the target's own {name} alone "
                    f"(--database {name} restores them into it, --database {name}:NEW beside it)"
                )
        for name in f.left_alone_databases:
            yield (
                f"the target's own {name} database kept its owner and settings; the backup's "
                "statements about them were left out"
            )
        for name in f.tablespaces_left_out:
            yield (
                f"tablespace {name} was not created (pgdeck never makes directories on the "
                "database server); its objects went to the default tablespace"
            )
        kept_own = self._writer.kept_own if self._writer else 0
        if kept_own:
            yield (
                f"{kept_own} statements about the target's own schemas, functions and "
                "types (owner, grants, comments) and default privileges were left out: in a "
                "database the target already had, its own are kept"
            )
        if f.kept_spilo:
            yield (
                f"expected: {f.kept_spilo} statements about Spilo's own objects "
                "(metric_helpers, user_management) were left out: the target's are kept"
            )
        if f.made_idempotent:
            yield (
                f"expected: {f.made_idempotent} statements for objects an operator cluster "
                "already has (Spilo's schemas, extensions) were made idempotent"
            )

    def _drop(self, names: list[str]) -> list[str]:
        """``--on-failure drop``: the databases this run created and left incomplete."""
        from psycopg import sql

        dropped: list[str] = []
        if not names:
            return dropped
        try:
            with connect(self.target, "postgres") as conn:
                for name in names:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
                    dropped.append(name)
                    self._log(
                        "warning",
                        f"dropped {name!r}, which this restore created and left incomplete",
                    )
        except Exception as exc:  # the report must still be written
            self._log("error", f"could not drop the incomplete databases: {exc}")
        return dropped

    # --- events ------------------------------------------------------------------------------------
    def _progress(self, reader: DumpReader, elapsed: float) -> None:
        self._announce_finished()
        rate = self._read / elapsed if elapsed > 0 else 0.0
        eta = (self._total - self._read) / rate if rate > 0 and self._total else None
        table = reader.table
        self._emit(
            RestoreProgress(
                read=self._read,
                total=self._total,
                uncompressed=reader.bytes,
                rate=rate,
                eta=eta,
                database=reader.current.name if reader.current else None,
                table=table.qualified if table else None,
                rows=table.rows if table else 0,
                sessions=self._lanes.progress() if self._lanes is not None else (),
            )
        )

    def _database_started(self, name: str | None) -> None:
        """Per-database phases: a database's time runs from its \\connect to the next."""
        now = time.monotonic()
        if self._db is not None:
            self._phases.append(PhaseTime(f"restore {self._db[0]}", round(now - self._db[1], 3)))
        self._db = (name, now) if name is not None else None

    def _table_done(self, table: TableRows) -> None:
        assert self._writer is not None
        if self._lanes is not None:
            return  # announced when its lane has stored it (_announce_finished)
        rows = self._writer.copied.get((table.database, table.qualified), table.rows)
        self._emit(TableLoaded(table.database, table.qualified, rows))

    def _on_server_message(self, msg: ServerMessage) -> None:
        level = "warning" if msg.severity == "WARNING" else "info"
        if level == "warning":
            self.warnings.append(msg.text)
        self._log(level, msg.text, "server")

    def _log(self, level: str, text: str, source: str = "pgdeck") -> None:
        self._emit(RestoreLog(level, text, source))

    def _phase(self, name: str) -> _PhaseTimer:
        return _PhaseTimer(self, name)


class _PhaseTimer:
    def __init__(self, engine: RestoreEngine, name: str) -> None:
        self.engine, self.name = engine, name

    def __enter__(self) -> None:
        self.started = time.monotonic()
        self.engine._emit(RestorePhase(self.name, "started"))

    def __exit__(self, *exc: object) -> None:
        seconds = round(time.monotonic() - self.started, 3)
        self.engine._phases.append(PhaseTime(self.name, seconds))
        self.engine._emit(RestorePhase(self.name, "finished", seconds))


def _judged(validation: Validation) -> tuple[str, str | None]:
    """The status and error validation makes of a restore that ran to its end."""
    failed = [
        name
        for name, ok in (
            ("completeness", validation.completeness_passed),
            ("integrity", validation.integrity_passed),
        )
        if not ok
    ]
    if not failed:
        return "succeeded", None
    return "failed", f"validation failed: {' and '.join(failed)}"
