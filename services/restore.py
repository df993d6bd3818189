"""The restore engine: object storage -> gunzip -> psql, with live events.

One pass does everything: the compressed stream is read (resumed with ranged GETs if the
connection drops), decompressed and CRC-checked, scanned (databases, tables, row counts,
the trailer), filtered to the chosen scope and written to psql's stdin. Memory stays
bounded whatever the dump's size: nothing waits in a buffer but the chunk in hand.

Errors are judged on purpose: what a fresh operator cluster already has (the superuser
and other roles, what Spilo creates) is expected and counted as a warning; any other
SQL error stops psql at once and fails the restore with the statement that caused it.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.backup_stream import CorruptBackup, compressed_chunks, gunzip, prefetch
from services.config import Check
from services.dump import DumpScanner, DumpSummary, TableRows
from services.errors import PgdeckError
from services.psql import (
    PsqlDied,
    PsqlMessage,
    PsqlProcess,
    find_psql,
    knows_restrict,
    psql_version,
)
from services.report import RestoreReport
from services.restore_plan import RestoreFilter, RestoreRefused, Scope
from services.storage import BackupStore
from services.target import ResolvedTarget, run_preflight
from services.validate import validate

_PASSWORD = re.compile(r"(PASSWORD\s+)'(?:[^']|'')*'", re.IGNORECASE)


def redact(sql: str) -> str:
    """A statement as logs and reports may show it: role passwords (and hashes) hidden."""
    return _PASSWORD.sub(r"\1'***'", sql)


_VERSION = re.compile(rb"-- Dumped from database version (\d+(?:\.\d+)?)")
_PEEK_LIMIT = 1 << 20


# --- events: one model, presented by the command line now and the TUI later -------------
@dataclass(frozen=True, slots=True)
class RestoreLog:
    level: str  # info, warning, error
    text: str
    source: str = "pgdeck"  # or "psql"


@dataclass(frozen=True, slots=True)
class RestorePhase:
    name: str
    state: str  # started, finished
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RestoreProgress:
    read: int  # compressed bytes read
    total: int  # compressed size
    uncompressed: int
    rate: float  # compressed bytes per second
    eta: float | None  # seconds
    database: str | None
    table: str | None
    rows: int  # rows of the table being loaded, so far


@dataclass(frozen=True, slots=True)
class TableLoaded:
    database: str
    table: str
    rows: int


@dataclass(frozen=True, slots=True)
class RestoreDone:
    report: RestoreReport


RestoreEvent = RestoreLog | RestorePhase | RestoreProgress | TableLoaded | RestoreDone


class RestoreFailed(PgdeckError):
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
    ) -> None:
        self.thorough = thorough
        self.verified = verified
        self.retries, self.backoff = retries, backoff
        self.store, self.key, self.url = store, key, url
        self.target, self.scope = target, scope
        self.drop_existing = drop_existing
        self.checks = checks
        self._emit = on_event or (lambda _e: None)
        self._every = progress_every
        self._cancel = threading.Event()
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self._recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=4000)
        self._lines_sent = 0
        self._psql: PsqlProcess | None = None
        self.warnings: list[str] = []
        self._phases: list[dict[str, Any]] = []
        self._read = 0
        self._total = 0
        self._retries = 0
        self._db: tuple[str, float] | None = None
        self._filter: RestoreFilter | None = None

    def cancel(self) -> None:
        """Stop psql and end the run as cancelled (safe from any thread and from a
        signal handler: it only sets a flag and signals psql; the streaming thread
        closes what it owns)."""
        self._cancel.set()
        psql = self._psql
        if psql is not None:
            psql.terminate()

    # --- the run ------------------------------------------------------------------------
    def run(self) -> RestoreReport:
        started = datetime.now(UTC)
        report = RestoreReport(
            status="failed",
            backup=self.url,
            target=self.target.display,
            target_name=self.target.name,
            started_at=started,
            finished_at=started,
            scope={
                "databases": [f"{k}:{v}" if k != v else k for k, v in self.scope.databases.items()],
                "roles": self.scope.roles,
            },
        )
        scanner: DumpScanner | None = None
        restore_filter: RestoreFilter | None = None
        try:
            with self._phase("preflight"):
                psql_path = find_psql()
                restrict = knows_restrict(psql_version(psql_path))
                # download | gunzip | (scan, filter, write to psql): three threads, as the
                # shell pipeline has three processes.
                stream = prefetch(gunzip(prefetch(self._compressed())))
                head, dump_version = self._peek(stream)
                pre = run_preflight(
                    self.target,
                    dump_version,
                    drop_existing=self.drop_existing,
                    psql_restrict=restrict,
                )
                for check, ok, detail in pre.findings:
                    self._log("info" if ok else "error", f"preflight: {check}: {detail}")
                failed = [f"{c}: {d}" for c, ok, d in pre.findings if not ok]
                if failed:
                    raise RestoreRefused(
                        "preflight failed: " + "; ".join(failed),
                        "nothing was written to the target",
                    )
                if not restrict:
                    self._log(
                        "warning",
                        "this psql predates \\restrict: those lines are left out (the backup is trusted)",
                    )
            restore_filter = RestoreFilter(self.scope, pre.facts)
            self._filter = restore_filter
            if self.verified is not None:
                held = {d.name for d in self.verified.databases}
                absent = sorted(set(self.scope.databases) - held)
                if absent:
                    raise RestoreRefused(
                        f"{', '.join(repr(a) for a in absent)}: no such database in this backup",
                        f"it holds {', '.join(sorted(held - {'template0'}))}",
                    )
                # The dump was read through once already: every database is checked
                # now, before the first statement goes to psql.
                for section in self.verified.databases:
                    restore_filter.check_database(
                        section.name,
                        created=section.created,
                        locales=[section.locale] if section.locale else [],
                    )
            scanner = DumpScanner(
                on_table=self._table_done,
                sink=self._send,
                filter=restore_filter,
                on_database=self._database_started,
            )
            with self._phase("restore"):
                self._stream(psql_path, scanner, head, stream)
            summary = scanner.summary()
            names = {
                d.name: self.scope.target_name(d.name)
                for d in summary.databases
                if restore_filter.scope.chosen(d.name) and d.name != "template0"
            }
            with self._phase("validate"):
                validation = validate(
                    self.target,
                    summary,
                    names,
                    self.checks,
                    copied=self._copied(summary, restore_filter),
                    thorough=self.thorough,
                )
            report.validation = validation.to_dict()
            report.tables = [
                {
                    "database": t.database,
                    "table": t.table,
                    "expected": t.expected,
                    "restored": t.restored,
                }
                for t in validation.tables
            ]
            if validation.completeness_passed and validation.integrity_passed:
                report.status = "succeeded"
            else:
                what = [
                    n
                    for n, ok in (
                        ("completeness", validation.completeness_passed),
                        ("integrity", validation.integrity_passed),
                    )
                    if not ok
                ]
                report.error = f"validation failed: {' and '.join(what)}"
        except _Cancelled:
            report.status = "cancelled"
            report.error = "cancelled by the user; psql was stopped"
        except PgdeckError as exc:
            report.error = str(exc)
            self._log("error", str(exc))
        finally:
            if self._psql is not None and self._psql.proc.poll() is None:
                self._psql.kill()
            report.finished_at = datetime.now(UTC)
            report.phases = self._phases
            report.compressed_bytes = self._read
            report.uncompressed_bytes = scanner.bytes if scanner else 0
            report.retries = self._retries
            report.warnings = list(self.warnings)
            if restore_filter is not None:
                report.databases_created = restore_filter.created
                report.scope["existing_roles_left_alone"] = sorted(restore_filter.existing_roles)
                report.scope["passwords_left_out"] = restore_filter.stripped_passwords
                if restore_filter.existing_roles:
                    report.warnings.append(
                        "expected: roles the target already has were left as they are: "
                        + ", ".join(sorted(restore_filter.existing_roles))
                    )
                if restore_filter.made_idempotent:
                    report.warnings.append(
                        f"expected: {restore_filter.made_idempotent} statements for objects an operator "
                        "cluster already has (Spilo's schemas, extensions) were made idempotent"
                    )
                if not report.tables and scanner is not None:
                    report.tables = [
                        {
                            "database": self.scope.target_name(t.database),
                            "table": t.qualified,
                            "expected": t.rows,
                            "restored": None,
                        }
                        for t in scanner.summary().tables
                        if restore_filter.scope.chosen(t.database)
                    ]
        self._emit(RestoreDone(report))
        return report

    # --- streaming ----------------------------------------------------------------------
    def _compressed(self) -> Iterator[bytes]:
        def on_retry(attempt: int, offset: int, exc: BaseException) -> None:
            self._retries = attempt
            self._log(
                "warning",
                f"storage connection dropped at byte {offset}; resuming (retry {attempt})",
            )

        def on_size(size: int) -> None:
            self._total = size

        for chunk in compressed_chunks(
            self.store,
            self.key,
            on_retry=on_retry,
            on_size=on_size,
            retries=self.retries,
            backoff=self.backoff,
        ):
            self._read += len(chunk)
            yield chunk

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

    def _stream(
        self, psql_path: Any, scanner: DumpScanner, head: list[bytes], stream: Iterator[bytes]
    ) -> None:
        # psql starts in the maintenance database whatever the DSN names: the dump
        # \connects where it needs, and --drop-existing must not be connected to its victim.
        self._psql = PsqlProcess(
            psql_path, self.target.conninfo_for("postgres"), self.target.password, self._on_message
        )
        started = time.monotonic()
        last = 0.0

        def chunks() -> Iterator[bytes]:
            yield from head
            yield from stream

        try:
            for data in chunks():
                if self._cancel.is_set():
                    raise _Cancelled()
                self._check_fatal()
                scanner.feed(data)
                now = time.monotonic()
                if now - last >= self._every:
                    last = now
                    self._progress(scanner, now - started)
        except CorruptBackup as exc:
            self._psql.kill()
            raise RestoreFailed(
                f"{self.url}: {exc.message}; the restore was stopped", "restore an older backup"
            ) from exc
        except PsqlDied as exc:
            self._psql.wait_messages()
            self._check_fatal()
            if self._cancel.is_set():
                raise _Cancelled() from exc
            raise RestoreFailed(
                f"psql died during the restore ({exc.message})", "see the log above"
            ) from exc
        self._database_started(None)
        summary = scanner.summary()
        if not summary.complete:
            self._psql.kill()
            where = (
                f" inside {scanner.table.database}.{scanner.table.qualified}"
                if scanner.table
                else ""
            )
            raise RestoreFailed(
                f"{self.url}: the dump is incomplete, its trailer never arrived (it stops{where or ' early'}); "
                "the restore was stopped",
                "restore an older backup",
            )
        code = self._psql.finish()
        self._check_fatal()
        missing = self._filter_missing()
        if missing:
            raise RestoreFailed(
                f"{', '.join(repr(m) for m in missing)}: no such database in this backup",
                "see `pgdeck verify` for the databases it holds",
            )
        if self._cancel.is_set():
            raise _Cancelled()
        if code != 0:
            raise RestoreFailed(f"psql ended with exit status {code}", "see the log above")
        self._progress(scanner, time.monotonic() - started)

    def _send(self, data: bytes, copy_rows: bool) -> None:
        assert self._psql is not None
        if not copy_rows:
            with self._lock:
                first = self._lines_sent + 1
                for i, text in enumerate(data.decode("utf-8", "replace").splitlines()):
                    self._recent.append((first + i, text))
        self._lines_sent += data.count(b"\n")
        self._psql.write(data)

    def _progress(self, scanner: DumpScanner, elapsed: float) -> None:
        rate = self._read / elapsed if elapsed > 0 else 0.0
        eta = (self._total - self._read) / rate if rate > 0 and self._total else None
        table = scanner.table
        self._emit(
            RestoreProgress(
                read=self._read,
                total=self._total,
                uncompressed=scanner.bytes,
                rate=rate,
                eta=eta,
                database=scanner.current.name if scanner.current else None,
                table=table.qualified if table else None,
                rows=table.rows if table else 0,
            )
        )

    def _copied(
        self, summary: Any, restore_filter: RestoreFilter
    ) -> dict[tuple[str, str], int] | None:
        """The server's row count per table, from psql's COPY tags in statement order."""
        tags = self._psql.copied if self._psql is not None else []
        sent = [
            t
            for t in summary.tables
            if restore_filter.scope.chosen(t.database) and t.database != "template0"
        ]
        if len(tags) != len(sent):
            self._log(
                "warning", "psql's COPY tags do not match the dump's tables; counting rows instead"
            )
            return None
        return {(t.database, t.qualified): n for t, n in zip(sent, tags, strict=True)}

    def _filter_missing(self) -> list[str]:
        return self._filter.missing() if self._filter is not None else []

    def _database_started(self, name: str | None) -> None:
        """Per-database phases: a database's time runs from its \\connect to the next."""
        now = time.monotonic()
        if self._db is not None:
            self._phases.append(
                {"name": f"restore {self._db[0]}", "seconds": round(now - self._db[1], 3)}
            )
        self._db = (name, now) if name is not None else None

    def _table_done(self, table: TableRows) -> None:
        self._emit(TableLoaded(table.database, table.qualified, table.rows))

    # --- psql's messages --------------------------------------------------------------------
    def _on_message(self, msg: PsqlMessage) -> None:
        if msg.level in ("NOTICE", "INFO"):
            self._log("info", msg.text, "psql")
            return
        if msg.level == "WARNING":
            self.warnings.append(msg.text)
            self._log("warning", msg.text, "psql")
            return
        context = self._context(msg.line)
        where = f" at input line {msg.line}" if msg.line else ""
        statement = redact(" ".join(context.split()))[:300]
        detail = f"{msg.level}: {msg.text}{where}" + (
            f"; statement: {statement}" if statement else ""
        )
        self._log("error", detail, "psql")
        with self._lock:
            if self._fatal is None:
                self._fatal = detail
        if self._psql is not None:
            self._psql.kill()

    def _context(self, line: int | None) -> str:
        if line is None:
            return ""
        with self._lock:
            lines = [t for n, t in self._recent if n <= line]
        tail: list[str] = []
        for text in reversed(lines):
            stripped = text.strip()
            if tail and (not stripped or stripped.endswith(";")):
                break  # the end of the statement before
            if stripped and not stripped.startswith("--"):
                tail.append(text)
            if len(tail) >= 6:
                break
        return "\n".join(reversed(tail))

    def _check_fatal(self) -> None:
        with self._lock:
            fatal = self._fatal
        if fatal:
            raise RestoreFailed(
                f"the restore stopped on an SQL error: {fatal}",
                "psql was stopped there; fix the cause or restore with another scope",
            )

    # --- helpers --------------------------------------------------------------------------------
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
        self.engine._phases.append({"name": self.name, "seconds": seconds})
        self.engine._emit(RestorePhase(self.name, "finished", seconds))


class _Cancelled(Exception):
    pass
