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
from dataclasses import dataclass
from typing import Any

from services import grammar
from services.backup_stream import (
    CorruptBackup,
    StreamCancelled,
    compressed_chunks,
    gunzip,
    prefetch,
)
from services.clock import Clock, system_clock
from services.config import Check
from services.dump import DumpReader, DumpSummary, NotADump, TableRows, qualified
from services.errors import PgdeckError
from services.grammar import Verdict, mask_literals
from services.loader import Cancelled, Loader, LoadFailed, ServerMessage
from services.report import RestoreReport
from services.restore_plan import (
    SPILO_SCHEMAS,
    TARGETS_OWN,
    RestoreFilter,
    RestoreRefused,
    Scope,
    first_qualified,
)
from services.sqllex import Statement
from services.storage import BackupStore
from services.target import ResolvedTarget, ServerIdentity, connect, identify, run_preflight
from services.validate import validate

# The words that stand before a function's or a type's name in ALTER, GRANT ... ON, COMMENT
# ON and SECURITY LABEL ... ON.
_ROUTINE_KINDS = frozenset({"function", "procedure", "routine", "aggregate", "type", "domain"})


class RefusedInPlace(NotADump):
    """A statement of a real backup that cannot be restored into a database the target
    already had (its own postgres or template1, named) without changing what the target
    has there."""

    def __init__(self, line: int, reason: str) -> None:
        PgdeckError.__init__(self, f"line {line}: {reason}")
        self.line = line
        self.reason = reason


_VERSION = re.compile(rb"-- Dumped from database version (\d+(?:\.\d+)?)")
_PEEK_LIMIT = 1 << 20
# One restore at a time per target: pg_try_advisory_lock on the maintenance database.
LOCK_KEY = 0x7067_6465_636B  # "pgdeck"
ON_FAILURE = ("keep", "drop")


# --- events: one model, presented by the command line and the TUI -------------------------
@dataclass(frozen=True, slots=True)
class RestoreLog:
    level: str  # info, warning, error
    text: str
    source: str = "pgdeck"  # or "server"


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
    ) -> None:
        if on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {ON_FAILURE}")
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
        self._loader: Loader | None = None
        self.warnings: list[str] = []
        self._phases: list[dict[str, Any]] = []
        self._read = 0
        self._total = 0
        self._retries = 0
        self._db: tuple[str, float] | None = None
        self._filter: RestoreFilter | None = None
        self._reader: DumpReader | None = None
        self._in_copy = False
        self._copied: dict[tuple[str, str], int] = {}
        self._last: tuple[int, str] | None = None  # the statement being sent: line, text
        # Event triggers (and their own statements) wait for the end of their database's
        # section, so that nothing the restore sends fires them.
        self._deferred: list[tuple[int, bytes]] = []
        # Statements of the backup's postgres and template1 a whole-cluster restore left out.
        self._own_left_out: dict[str, int] = {}
        self._server_major = 0
        # In a database the target already had (postgres, template1 restored in place):
        # its own relations, which no statement of the backup may name.
        self._own_db = False
        # pg_dump's search_path ('') is in force: an unqualified name reaches no relation
        # of the target's (pg_catalog's only).
        self._path_empty = False
        self._preexisting: set[tuple[str, str]] = set()
        self._preexisting_names: set[str] = set()
        self._own_schemas: set[str] = set()
        self._own_routines: set[tuple[str, str]] = set()  # its functions and types
        self._kept_own = 0  # statements about its schemas and default privileges left out
        # Large objects the backup created in the current database: the only ones it may
        # open, write, alter or grant.
        self._large_objects: set[int] = set()
        self._target_databases: set[str] = set()

    def cancel(self) -> None:
        """Stop the run as cancelled: safe from any thread and from a signal handler. What
        runs on the server is cancelled; a COPY in flight is rolled back."""
        self._cancel.set()
        loader = self._loader
        if loader is not None:
            loader.cancel()

    # --- the run ----------------------------------------------------------------------------
    def run(self) -> RestoreReport:
        started = self.clock()
        report = RestoreReport(
            status="running",
            backup=self.url,
            target=self.identity.display if self.identity else self.target.display,
            target_name=self.target.name,
            started_at=started,
            finished_at=started,
            scope={
                "databases": [f"{k}:{v}" if k != v else k for k, v in self.scope.databases.items()],
                "roles": self.scope.roles,
            },
        )
        if self.identity is not None:
            report.scope["target_system_identifier"] = self.identity.system_identifier
        if self._on_start is not None:
            self._on_start(report)
        report.status = "failed"
        monotonic_start = time.monotonic()
        try:
            self._run(report)
        except (_Cancelled, StreamCancelled):
            report.status = "cancelled"
            report.error = "cancelled; the statement or COPY in flight was rolled back"
        except PgdeckError as exc:
            report.error = str(exc)
            self._log("error", str(exc))
        except Exception as exc:  # the report must still say what happened
            logging.getLogger(__name__).debug("restore failed", exc_info=True)
            report.error = f"the restore failed unexpectedly ({type(exc).__name__}: {exc})"
            self._log("error", report.error)
        finally:
            report.finished_at = started + _seconds(time.monotonic() - monotonic_start)
            report.phases = self._phases
            report.compressed_bytes = self._read
            report.uncompressed_bytes = self._reader.bytes if self._reader else 0
            report.retries = self._retries
            report.warnings = list(self.warnings)
            # While the lock is still held: --on-failure drop happens before another
            # restore may start.
            self._fill_outcome(report)
            if self._loader is not None:
                self._loader.close()
        self._emit(RestoreDone(report))
        return report

    def _run(self, report: RestoreReport) -> None:
        with self._phase("preflight"):
            # download | gunzip | (read, judge, send): three threads, as the shell
            # pipeline has three processes.
            stream = prefetch(gunzip(prefetch(self._compressed())), cancelled=self._cancel)
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
                report.target = self.identity.display
                report.scope["target_system_identifier"] = self.identity.system_identifier
            self._loader = Loader(self.target, on_message=self._on_server_message)
            if self._cancel.is_set():
                raise _Cancelled()
            self._lock_target()
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
            # The dump was read through once already: every database is checked now,
            # before the first statement is sent.
            for section in self.verified.databases:
                restore_filter.check_database(
                    section.name,
                    created=section.created,
                    locales=[section.locale] if section.locale else [],
                )
        reader = DumpReader(self, on_table=self._table_done, on_database=self._database_started)
        self._reader = reader
        with self._phase("restore"):
            self._stream(reader, head, stream)
        summary = reader.summary()
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
                copied=None if self.thorough else self._copied,
                thorough=self.thorough,
                # PostgreSQL 17's login event triggers of the backup must not fire as
                # pgdeck connects to validate.
                event_triggers_off=self._server_major >= 17,
                written=list(restore_filter.restored),
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

    def _stream(self, reader: DumpReader, head: list[bytes], stream: Iterator[bytes]) -> None:
        started = time.monotonic()
        last = 0.0

        def chunks() -> Iterator[bytes]:
            yield from head
            yield from stream

        try:
            for data in chunks():
                if self._cancel.is_set():
                    raise _Cancelled()
                reader.feed(data)
                now = time.monotonic()
                if now - last >= self._every:
                    last = now
                    self._progress(reader, now - started)
            summary = reader.summary()
            if summary.complete:
                self._flush_deferred()
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
            raise _Cancelled() from exc
        except LoadFailed as exc:
            if self._cancel.is_set():
                raise _Cancelled() from exc
            where = ""
            if self._last is not None:
                line, text = self._last
                excerpt = mask_literals(" ".join(text[:16384].split())).rstrip(";")[:300]
                where = f" at line {line}; statement: {excerpt}"
            raise RestoreFailed(
                f"the restore stopped on an SQL error: {exc.message}{where}",
                "it was stopped there; fix the cause or restore with another scope",
            ) from exc
        self._database_started(None)
        assert self._filter is not None
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
        self._progress(reader, time.monotonic() - started)

    # --- the reader's consumer: what is sent where ---------------------------------------------
    def statement(self, stmt: Statement, verdict: Verdict, section: str | None) -> None:
        assert self._filter is not None and self._loader is not None and self._reader is not None
        encoding = self._reader.encoding
        self._filter.codec = grammar.codec_for(encoding)[0]
        sends = self._filter.statement(stmt, verdict, section)
        if verdict.kind == grammar.SESSION and verdict.name == "search_path" and section:
            self._path_empty = sends != [] and not (verdict.setting or "").strip(" '\"")
        if not sends:
            if section in TARGETS_OWN and verdict.kind != grammar.SESSION:
                self._own_left_out[section] = self._own_left_out.get(section, 0) + 1
            return  # not restored in this scope, or the target's own: nothing to judge
        # A language the grammar cannot judge by name: the target says whether its
        # functions can reach the server's files and programs (untrusted). One it does not
        # have cannot be the function's language (the server would refuse the statement).
        for language in verdict.languages:
            if (
                language not in ("sql", "plpgsql")
                and self._loader.language_trusted(language) is False
            ):
                raise NotADump(
                    stmt.line,
                    f"a function in {language}, a language the target marks untrusted (an "
                    "untrusted language can run programs and read files on the database "
                    "server)",
                )
        if self._own_db:
            if self._keeps_targets_own(stmt):
                self._kept_own += 1
                return
            if verdict.event_trigger:
                raise RefusedInPlace(
                    stmt.line,
                    "an event trigger in a database the target already had (it would fire "
                    "on the target's own statements there, and in every database later made "
                    "from template1)",
                )
        if verdict.kind == grammar.COPY:
            self._check_copy_target(stmt, verdict)
        self._check_large_objects(stmt, verdict)
        if self._own_db and verdict.kind in (grammar.DDL, grammar.COPY, grammar.CATALOG_CALL):
            self._check_not_the_targets(stmt)
        for send in sends:
            if verdict.event_trigger and not send.maintenance:
                self._deferred.append((stmt.line, send.sql))
                continue
            self._last = (stmt.line, send.sql.decode("utf-8", "replace"))
            if send.copy:
                self._loader.copy_begin(send.sql, encoding)
                self._in_copy = True
            else:
                # The maintenance session reads it in the encoding it was written in; after
                # it, the session must be in the one the reader reads the next in.
                after = None
                if verdict.kind == grammar.SESSION and verdict.name == "client_encoding":
                    after = verdict.setting
                self._loader.execute(
                    send.sql, maintenance=send.maintenance, encoding=encoding, encoding_after=after
                )

    def _check_copy_target(self, stmt: Statement, verdict: Verdict) -> None:
        """Table data goes only into an ordinary table this backup created (or an
        extension's configuration table), or a partitioned one whose partitions all are,
        never into one the target already had or a foreign table (its rows would go to
        another server)."""
        assert self._loader is not None and self._reader is not None
        current = self._reader.current
        schema, name = verdict.schema or "public", verdict.name or ""
        qualified = f"{schema}.{name}"
        created = current is not None and (schema, name) in current.created_tables
        if not created and not self._loader.extension_table(schema, name):
            raise NotADump(
                stmt.line,
                f"table data for {qualified}, a table this backup did not create (it would "
                "write into the target's own tables)",
            )
        kind = self._loader.relkind(schema, name)
        if kind == "p" and created:
            # pg_dump loads through the root (--load-via-partition-root, and by itself for
            # hash partitioning on an enum): the rows land in its partitions, each of which
            # must be an ordinary table this backup created.
            assert current is not None
            for part_schema, part, part_kind in self._loader.partitions(schema, name):
                if part_kind == "p":
                    continue
                if part_kind != "r" or (part_schema, part) not in current.created_tables:
                    raise NotADump(
                        stmt.line,
                        f"table data for {qualified}, whose partition {part_schema}.{part} "
                        "is not an ordinary table this backup created (the rows would go "
                        "into a foreign table or one of the target's own)",
                    )
            return
        if kind != "r":
            what = {"f": "a foreign table", "p": "a partitioned table", "v": "a view"}.get(
                kind or "", "not an ordinary table"
            )
            raise NotADump(
                stmt.line,
                f"table data for {qualified}, {what} (pg_dump writes data for ordinary "
                "tables only)",
            )

    def _flush_deferred(self) -> None:
        assert self._loader is not None
        for line, sql in self._deferred:
            self._last = (line, sql.decode("utf-8", "replace"))
            self._loader.execute(sql)
        self._deferred = []

    def _keeps_targets_own(self, stmt: Statement) -> bool:
        """In a database the target already had, what the backup says of the target's own
        schemas, functions and types (owner, grants, comment, labels) and its default
        privileges (what every table a role makes later is granted) is left out: the
        target's are kept."""
        words = stmt.words(3)
        if words == ["alter", "default", "privileges"]:
            return True
        if words[0] not in ("alter", "grant", "revoke", "comment", "security"):
            return False
        toks = stmt.tokens
        if first_qualified(toks, _ROUTINE_KINDS) in self._own_routines:
            return True
        for k, tok in enumerate(toks[:-1]):
            if tok.kind != grammar.WORD or tok.value != "schema" or tok.depth != 0:
                continue
            if not (k == 1 or (k > 0 and toks[k - 1].value == "on")):
                continue
            j = k + 1  # ON SCHEMA a, b TO ...: the names, and nothing after them
            while j < len(toks) and toks[j].kind in (grammar.WORD, grammar.QIDENT):
                if toks[j].value in self._own_schemas:
                    return True
                if j + 1 < len(toks) and toks[j + 1].value == ",":
                    j += 2
                else:
                    break
        return False

    def _check_large_objects(self, stmt: Statement, verdict: Verdict) -> None:
        """A large object is created by the backup (lo_create) before anything opens,
        alters or grants it: none of the target's own is written over."""
        oid = verdict.large_object
        if verdict.kind == grammar.CATALOG_CALL and oid is not None:
            if verdict.name == "lo_create":
                self._large_objects.add(oid)
                return
            named = [str(oid)]
        elif verdict.kind == grammar.DDL:
            named = grammar.large_objects_named(stmt)
        else:
            return
        for text in named:
            if not (text.isascii() and text.isdigit() and int(text) in self._large_objects):
                raise NotADump(
                    stmt.line,
                    f"large object {text[:20]}, one this backup did not create (it would "
                    f"change one of the target's own): {grammar.excerpt(stmt)}",
                )

    def _check_not_the_targets(self, stmt: Statement) -> None:
        """In a database the target already had, no statement may name one of its own
        tables or views (fill it, alter it, attach to it, inherit from it, index it)."""
        toks = stmt.tokens
        extension_names = set()  # an extension's name is not a relation's
        for k, tok in enumerate(toks[:-1]):
            if tok.kind == grammar.WORD and tok.value == "extension":
                j = k + 1
                while j < len(toks) - 1 and toks[j].value in ("if", "not", "exists"):
                    j += 1
                extension_names.add(j)
        names = {
            t.value
            for j, t in enumerate(toks)
            if t.kind in (grammar.WORD, grammar.QIDENT) and j not in extension_names
        }
        hit = None
        for k in range(len(toks) - 2):
            a, dot, b = toks[k], toks[k + 1], toks[k + 2]
            if (
                a.kind in (grammar.WORD, grammar.QIDENT)
                and dot.value == "."
                and b.kind in (grammar.WORD, grammar.QIDENT)
                and (a.value, b.value) in self._preexisting
            ):
                hit = f"{a.value}.{b.value}"
                break
        if hit is None:  # setval('schema.name', ...): a sequence named in a literal
            for t in toks:
                if t.kind == grammar.STRING and "." in t.value:
                    parts = tuple(qualified(t.value).split(".", 1))
                    if len(parts) == 2 and parts in self._preexisting:
                        hit = t.value
                elif (
                    t.kind == grammar.STRING
                    and not self._path_empty
                    and t.value.strip('"') in self._preexisting_names
                ):
                    hit = t.value
        if hit is None and not self._path_empty:
            # Another search_path than pg_dump's: an unqualified name may be the target's.
            unqualified = names & self._preexisting_names
            hit = sorted(unqualified)[0] if unqualified else None
        if hit is not None:
            raise RefusedInPlace(
                stmt.line,
                f"a statement naming {hit}, a table or view of the target's own "
                f"{self._loader.current_database if self._loader else ''} database: "
                f"{grammar.excerpt(stmt)}",
            )

    def connect(self, database: str) -> None:
        assert self._filter is not None and self._loader is not None
        self._flush_deferred()
        encoding = self._reader.encoding if self._reader else "UTF8"
        self._filter.codec = grammar.codec_for(encoding)[0]
        sends, new = self._filter.connect(database)
        for send in sends:
            self._last = (self._reader.line_no if self._reader else 0, send.sql.decode())
            self._loader.execute(send.sql, maintenance=True, encoding=encoding)
        self._own_db = False
        self._path_empty = False
        self._preexisting = set()
        self._preexisting_names = set()
        self._own_schemas = set()
        self._own_routines = set()
        self._large_objects = set()
        if new is not None:
            self._loader.use(new)
            if new in self._target_databases and new not in self._filter.created:
                self._own_db = True
                self._preexisting = self._loader.relations()
                self._preexisting_names = {name for _, name in self._preexisting}
                self._own_schemas = self._loader.schemas()
                self._own_routines = self._loader.objects_in(relations=False)
                self._filter.spilo_objects = self._loader.objects_in(SPILO_SCHEMAS)

    def copy_data(self, data: memoryview) -> None:
        if self._in_copy:
            assert self._loader is not None
            self._loader.copy_write(data)

    def copy_end(self, table: TableRows) -> None:
        if self._in_copy:
            assert self._loader is not None
            self._in_copy = False
            key = (table.database, table.qualified)
            self._copied[key] = self._copied.get(key, 0) + self._loader.copy_end()

    # --- outcome ----------------------------------------------------------------------------------
    def _fill_outcome(self, report: RestoreReport) -> None:
        f = self._filter
        if f is None:
            return
        report.databases_created = list(f.created)
        report.scope["existing_roles_left_alone"] = sorted(f.existing_roles)
        report.scope["passwords_left_out"] = f.stripped_passwords
        report.scope["roles_created"] = list(f.created_roles)
        if f.demoted:
            report.scope["privileges_left_out"] = list(f.demoted)
        if f.skipped_grants:
            report.scope["memberships_left_out"] = list(f.skipped_grants)
        if f.existing_roles:
            report.warnings.append(
                "expected: roles the target already has were left as they are: "
                + ", ".join(sorted(f.existing_roles))
            )
        if self.scope.whole_cluster:
            for name, count in self._own_left_out.items():
                report.warnings.append(
                    f"the backup's {name} database holds {count} "
                    f"statement{'s' if count != 1 else ''} (tables, data, grants), not restored: "
                    f"a whole-cluster restore leaves the target's own {name} alone "
                    f"(--database {name} restores them into it, --database {name}:NEW beside it)"
                )
        for name in f.left_alone_databases:
            report.warnings.append(
                f"the target's own {name} database kept its owner and settings; the backup's "
                "statements about them were left out"
            )
        for name in f.tablespaces_left_out:
            report.warnings.append(
                f"tablespace {name} was not created (pgdeck never makes directories on the "
                "database server); its objects went to the default tablespace"
            )
        if self._kept_own:
            report.warnings.append(
                f"{self._kept_own} statements about the target's own schemas, functions and "
                "types (owner, grants, comments) and default privileges were left out: in a "
                "database the target already had, its own are kept"
            )
        if f.kept_spilo:
            report.warnings.append(
                f"expected: {f.kept_spilo} statements about Spilo's own objects "
                "(metric_helpers, user_management) were left out: the target's are kept"
            )
        if f.made_idempotent:
            report.warnings.append(
                f"expected: {f.made_idempotent} statements for objects an operator cluster "
                "already has (Spilo's schemas, extensions) were made idempotent"
            )
        if report.status != "succeeded":
            report.databases_incomplete = f.incomplete if report.status != "running" else []
            if report.databases_incomplete and self.on_failure == "drop":
                report.databases_dropped = self._drop(
                    [d for d in report.databases_incomplete if d not in f.replaced]
                )
        if not report.tables and self._reader is not None:
            report.tables = [
                {
                    "database": self.scope.target_name(t.database),
                    "table": t.qualified,
                    "expected": t.rows,
                    "restored": self._copied.get((t.database, t.qualified)),
                }
                for t in self._reader.summary_tables()
                if self.scope.chosen(t.database)
            ]

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
            )
        )

    def _database_started(self, name: str | None) -> None:
        """Per-database phases: a database's time runs from its \\connect to the next."""
        now = time.monotonic()
        if self._db is not None:
            self._phases.append(
                {"name": f"restore {self._db[0]}", "seconds": round(now - self._db[1], 3)}
            )
        self._db = (name, now) if name is not None else None

    def _table_done(self, table: TableRows) -> None:
        rows = self._copied.get((table.database, table.qualified), table.rows)
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
        self.engine._phases.append({"name": self.name, "seconds": seconds})
        self.engine._emit(RestorePhase(self.name, "finished", seconds))


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)
