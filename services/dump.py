"""Reading a ``pg_dumpall`` stream as it goes by, as data to check, never as a script.

``DumpReader`` is fed decompressed chunks. Outside table data it cuts the text into
statements with PostgreSQL's lexer rules (``services.sqllex``), judges each one against
what pg_dump writes (``services.grammar``) and holds the dump to pg_dumpall's structure:
role statements only before the first ``\\connect``, ``\\connect`` only to a database the
dump created (or ``template1``/``postgres``), database-level statements only about such a
database, and no psql meta-command but ``\\connect``, ``\\restrict``/``\\unrestrict`` and
``\\encoding SQL_ASCII`` in pg_dumpall's forms. Anything else raises ``NotADump`` naming
the line, before the statement is handed on.

Table data (the lines between ``COPY ... FROM stdin;`` and ``\\.``) is passed on in bulk
and its rows counted with ``bytes.count``; only a few bytes are ever held back, so a row
of any length costs memory bounded by the chunk. A line outside table data is held until
it ends, up to ``max_line`` bytes. The dump's own trailer is the only proof it finished (a
gzip-valid file can hold a truncated dump when ``pg_dumpall`` died under ``pigz``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from services import grammar
from services.errors import PgdeckError
from services.grammar import Refused, Verdict
from services.sqllex import Lexer, LexError, MetaCommand, Statement, size_text

CLUSTER_TRAILER = "-- PostgreSQL database cluster dump complete"
DATABASE_TRAILER = "-- PostgreSQL database dump complete"
MAX_LINE = 64 << 20  # a line (or statement) outside table data; pg_dump writes far less
EXISTING_DATABASES = ("template1", "postgres")  # always there: pg_dumpall never creates them

_VERSION = re.compile(r"^-- Dumped (from database|by pg_dumpall) version ([0-9][0-9A-Za-z.+~_-]*)")
_RESTRICT = re.compile(r"^\\(restrict|unrestrict) ([A-Za-z0-9]{1,128})\s*$")
_CONNECT = re.compile(r"^\\connect( -reuse-previous=on)? (.+?)\s*$")
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_.]+")
_CONNSTR_DBNAME = re.compile(r"dbname='((?:[^'\\]|\\.)*)'")
_META_WHAT = {
    "!": "runs a shell command on the machine restoring",
    "o": "writes query output to a file or a program",
    "out": "writes query output to a file or a program",
    "w": "writes the query buffer to a file or a program",
    "write": "writes the query buffer to a file or a program",
    "copy": "reads or writes a file or a program on the machine restoring",
    "i": "reads and runs another file",
    "include": "reads and runs another file",
    "ir": "reads and runs another file",
    "include_relative": "reads and runs another file",
    "g": "sends the query buffer, perhaps to a file or program",
    "gexec": "runs the results of a query as statements",
    "gset": "stores query results in variables",
    "set": "sets psql variables",
    "setenv": "sets an environment variable",
    "cd": "changes the working directory",
    "lo_import": "reads a file into the database",
    "lo_export": "writes a file on the machine restoring",
    "c": "connects elsewhere",
}


class NotADump(PgdeckError):
    """The stream holds something pg_dumpall never writes: refused before it is sent."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(
            f"not a pg_dumpall stream: line {line}: {reason}",
            "nothing from that line on was sent; the backup is not what the backup job writes",
        )
        self.line = line
        self.reason = reason


def qualified(text: str) -> str:
    """``"Sch"."Tab le"`` -> ``Sch.Tab le``: names as the catalogs spell them."""
    return ".".join(unquote_ident(part) for part in re.findall(r'"(?:[^"]|"")*"|[^."]+', text))


def unquote_ident(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def connect_target(line: str) -> str:
    """The database of a ``\\connect`` line in one of pg_dumpall's forms; ValueError else."""
    m = _CONNECT.match(line)
    if m is None:
        raise ValueError("not a \\connect line")
    reuse, arg = m[1], m[2]
    if arg.startswith('"'):
        if len(arg) < 2 or not arg.endswith('"') or '"' in arg[1:-1].replace('""', ""):
            raise ValueError("a malformed quoted name")
        name = arg[1:-1].replace('""', '"')
    elif _SIMPLE_NAME.fullmatch(arg):
        name = arg
    else:
        raise ValueError("an argument pg_dumpall does not write")
    if not reuse:
        if not _SIMPLE_NAME.fullmatch(name):
            raise ValueError("an argument pg_dumpall does not write")
        return name
    c = _CONNSTR_DBNAME.fullmatch(name)
    if c is None:
        raise ValueError("a connection string with more than dbname='...'")
    return re.sub(r"\\(.)", r"\1", c[1])


@dataclass
class TableRows:
    database: str
    schema: str
    name: str
    rows: int = 0

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class DatabaseSection:
    name: str
    created: bool = False  # the dump creates it (postgres and template1 already exist)
    locale: str | None = None
    complete: bool = False  # its own "dump complete" line arrived
    created_tables: set[tuple[str, str]] = field(default_factory=set)  # (schema, name)
    triggers: bool = False  # a trigger was created: pg_dump writes no data after that
    event_triggers: bool = False  # an event trigger was created: only its own statements
    # and REFRESH MATERIALIZED VIEW follow it in pg_dump's order
    tables: list[TableRows] = field(default_factory=list)
    table_index: dict[tuple[str, str], TableRows] = field(default_factory=dict, repr=False)
    objects: dict[str, set[str]] = field(default_factory=dict)  # kind -> qualified names

    def add_object(self, kind: str, name: str) -> None:
        self.objects.setdefault(kind, set()).add(name)


@dataclass
class DumpSummary:
    databases: list[DatabaseSection]
    roles: list[str]
    complete: bool
    bytes: int  # uncompressed
    server_version: str | None
    pg_dumpall_version: str | None
    restrict: bool  # uses \\restrict (PostgreSQL 13.22/14.19/15.14/16.10/17.6 and later)
    statements: int = 0

    @property
    def tables(self) -> list[TableRows]:
        return [t for d in self.databases for t in d.tables]


class DumpConsumer(Protocol):
    """What a restore does with the dump as it is read."""

    def statement(self, stmt: Statement, verdict: Verdict, section: str | None) -> None: ...

    def connect(self, database: str) -> None: ...

    def copy_data(self, data: memoryview) -> None: ...

    def copy_end(self, table: TableRows) -> None: ...


class DumpReader:
    """Feed it the decompressed dump, chunk by chunk; ``summary()`` at the end."""

    def __init__(
        self,
        consumer: DumpConsumer | None = None,
        *,
        on_table: Callable[[TableRows], None] | None = None,
        on_database: Callable[[str], None] | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        self._consumer = consumer
        self._on_table = on_table
        self._on_database = on_database
        self._max_line = max_line
        self._lexer = Lexer(max_statement=max_line)
        self.databases: list[DatabaseSection] = []
        self._by_name: dict[str, DatabaseSection] = {}
        self.roles: list[str] = []
        self.current: DatabaseSection | None = None  # the database connected to
        self.table: TableRows | None = None  # the COPY being read, if any
        self.created: set[str] = set()
        self.bytes = 0
        self.statements = 0
        self._pending: list[bytes] = []  # an incomplete line (outside table data)
        self._pending_size = 0
        self._carry = b""  # inside table data: a line start that may become "\."
        self._line_start = True  # inside table data: the next byte starts a line
        self._trailer = False
        self._versions: dict[str, str] = {}
        self._restrict_key: str | None = None
        # The client_encoding of the session statements go to (the section's, or the
        # maintenance session's before the first \connect): names are read in it.
        self.encoding = "UTF8"
        self._restrict = False
        self._pending_db: dict[str, tuple[bool, str | None]] = {}

    @property
    def line_no(self) -> int:
        return self._lexer.line_no

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        if self._carry:
            chunk = self._carry + chunk
            self._carry = b""
        pos = 0
        end = len(chunk)
        while pos < end:
            if self.table is not None:
                pos = self._copy_rows(chunk, pos)
                continue
            nl = chunk.find(b"\n", pos)
            if nl < 0:
                self._hold(chunk[pos:])
                return
            if self._pending:
                self._pending.append(chunk[pos : nl + 1])
                line = b"".join(self._pending)
                self._pending = []
                self._pending_size = 0
            else:
                line = chunk[pos : nl + 1]
            pos = nl + 1
            self._line(line)

    def _hold(self, part: bytes) -> None:
        self._pending.append(part)
        self._pending_size += len(part)
        if self._pending_size > self._max_line:
            raise NotADump(
                self._lexer.line_no + 1,
                f"a line longer than {size_text(self._max_line)} outside table data",
            )

    # --- table data -----------------------------------------------------------------------
    def _copy_rows(self, buf: bytes, pos: int) -> int:
        """Pass table data on from ``pos`` up to the ``\\.`` line, if it is here."""
        table = self.table
        assert table is not None
        end = len(buf)
        if self._line_start and buf.startswith(b"\\.", pos):
            if end - pos < 3:
                self._carry = buf[pos:]
                return end
            if buf[pos + 2 : pos + 3] == b"\n":
                self._end_copy()
                return pos + 3
        found = buf.find(b"\n\\.\n", pos)
        if found >= 0:
            self._pass(buf, pos, found + 1)
            self._end_copy()
            return found + 4
        last = buf.rfind(b"\n", pos)
        if last < 0:
            if self._line_start and buf[pos:] in (b"\\", b"\\."):
                self._carry = buf[pos:]
                return end
            self._pass(buf, pos, end)
            self._line_start = False
            return end
        tail = buf[last + 1 :]
        if tail in (b"\\", b"\\."):
            self._pass(buf, pos, last + 1)
            self._carry = tail
            self._line_start = True
        else:
            self._pass(buf, pos, end)
            self._line_start = not tail
        return end

    def _pass(self, buf: bytes, start: int, stop: int) -> None:
        if stop <= start:
            return
        assert self.table is not None
        self.table.rows += buf.count(b"\n", start, stop)
        self._lexer.line_no += buf.count(b"\n", start, stop)
        if self._consumer is not None:
            self._consumer.copy_data(memoryview(buf)[start:stop])

    def _end_copy(self) -> None:
        table = self.table
        assert table is not None
        self._lexer.line_no += 1  # the \. line
        self.table = None
        self._line_start = True
        self._trailer = False
        if self._consumer is not None:
            self._consumer.copy_end(table)
        if self._on_table:
            self._on_table(table)

    # --- text -------------------------------------------------------------------------------
    def _line(self, raw: bytes) -> None:
        lexer = self._lexer
        if raw[:2] == b"--" and lexer.between_statements:
            self._comment(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
        elif self._trailer and raw.strip() not in (b"", b"--"):
            self._trailer = False
        try:
            items = lexer.feed(raw)
        except LexError as exc:
            raise NotADump(lexer.line_no, str(exc)) from None
        for k, item in enumerate(items):
            if isinstance(item, MetaCommand):
                self._meta(item)
                continue
            self._statement(item)
            if self.table is not None and (k != len(items) - 1 or not lexer.between_statements):
                raise NotADump(item.line, "text after COPY ... FROM stdin; on its line")

    def _comment(self, line: str) -> None:
        if line == CLUSTER_TRAILER:
            self._trailer = True
            return
        if line == DATABASE_TRAILER:
            if self.current is not None:
                self.current.complete = True
            return
        if self._trailer and line != "--":
            self._trailer = False
        if m := _VERSION.match(line):
            self._versions.setdefault(m[1], m[2])

    def _meta(self, item: MetaCommand) -> None:
        text = item.text
        if item.inline or not text.startswith("\\"):
            # Inside a statement, or after one on its line: psql would run it, and the
            # statement begun would be lost; pg_dumpall never writes either.
            raise NotADump(
                item.line, f"a psql meta-command inside or after a statement: {_show(text)}"
            )
        if text.startswith("\\connect "):
            try:
                name = connect_target(text)
            except ValueError as exc:
                raise NotADump(item.line, f"{exc}: {_show(text)}") from None
            self._connect(name, item.line)
            return
        if m := _RESTRICT.match(text):
            if m[1] == "restrict":
                self._restrict, self._restrict_key = True, m[2]
            elif m[2] != self._restrict_key:
                raise NotADump(item.line, "\\unrestrict with a key that was not restricted")
            else:
                self._restrict_key = None
            return
        if text.rstrip() == "\\encoding SQL_ASCII":
            return  # pg_dumpall writes it before a \connect to an unusual name
        command = re.match(r"\\([A-Za-z_!?]*)", text)
        name = command[1] if command else ""
        what = _META_WHAT.get(name, "is not one pg_dumpall writes")
        raise NotADump(item.line, f"psql meta-command \\{name} ({what}): {_show(text)}")

    def _connect(self, name: str, line: int) -> None:
        if name not in self.created and name not in EXISTING_DATABASES:
            raise NotADump(line, f"\\connect to {name!r}, a database this backup did not create")
        section = self._by_name.get(name)
        if section is None:
            created, locale = self._pending_db.pop(name, (False, None))
            section = DatabaseSection(name=name, created=created, locale=locale)
            self._by_name[name] = section
            self.databases.append(section)
        self.current = section
        self._set_encoding("UTF8")  # a new session, in pgdeck's own client_encoding
        if self._consumer is not None:
            self._consumer.connect(name)
        if self._on_database:
            self._on_database(name)

    def _statement(self, stmt: Statement) -> None:
        if b"\x00" in stmt.text:
            raise NotADump(stmt.line, "a NUL byte inside a statement")
        try:
            verdict = grammar.judge(stmt)
        except Refused as exc:
            raise NotADump(exc.line, exc.reason) from None
        self.statements += 1
        section = self.current.name if self.current is not None else None
        kind = verdict.kind
        if section is not None and kind in grammar.GLOBAL_KINDS:
            raise NotADump(
                stmt.line,
                f"a role or tablespace statement inside the section of database {section!r} "
                f"(pg_dumpall writes them before the first \\connect): {grammar.excerpt(stmt)}",
            )
        if section is None and kind in (grammar.DDL, grammar.COPY, grammar.CATALOG_CALL):
            raise NotADump(
                stmt.line,
                "an object statement before the first \\connect (it would run in the "
                f"maintenance database): {grammar.excerpt(stmt)}",
            )
        if kind == grammar.CREATE_DATABASE:
            assert verdict.name is not None
            if verdict.name in EXISTING_DATABASES or verdict.name == "template0":
                raise NotADump(stmt.line, f"CREATE DATABASE {verdict.name}, which always exists")
            self.created.add(verdict.name)
            self._pending_db[verdict.name] = (True, verdict.locales[0] if verdict.locales else None)
        elif kind in (grammar.DATABASE, grammar.ROLE_DB_SETTING):
            db = verdict.database if kind == grammar.ROLE_DB_SETTING else verdict.name
            if db not in self.created and db not in EXISTING_DATABASES and db != section:
                raise NotADump(
                    stmt.line,
                    f"a statement about database {db!r}, which this backup did not create",
                )
        elif kind == grammar.CREATE_ROLE:
            assert verdict.name is not None
            self.roles.append(verdict.name)
        if self.current is not None:
            if (
                self.current.event_triggers
                and kind in (grammar.DDL, grammar.COPY, grammar.CATALOG_CALL)
                and not (verdict.event_trigger or verdict.refresh)
            ):
                # pg_dump puts event triggers last (only their own statements and the
                # refreshes follow), so that no statement of the restore fires them.
                raise NotADump(
                    stmt.line,
                    f"a statement after an event trigger was created: {grammar.excerpt(stmt)}",
                )
            if verdict.event_trigger and verdict.trigger:
                self.current.event_triggers = True
            if verdict.trigger:
                self.current.triggers = True
            elif self.current.triggers and kind in (grammar.COPY, grammar.CATALOG_CALL):
                # pg_dump creates triggers after the data, so none fires while it loads.
                raise NotADump(
                    stmt.line,
                    f"table data after a trigger was created: {grammar.excerpt(stmt)}",
                )
            for obj_kind, name in verdict.objects:
                self.current.add_object(obj_kind, name)
            if verdict.table is not None:
                self.current.created_tables.add(verdict.table)
            if kind == grammar.DDL:
                for c_kind, c_name in verdict.constraints:
                    self.current.add_object("constraint", c_name)
                    if c_kind == "foreign key":
                        self.current.add_object("foreign key", c_name)
        if self._consumer is not None:
            self._consumer.statement(stmt, verdict, section)
        if kind == grammar.SESSION and verdict.name == "client_encoding" and verdict.setting:
            self._set_encoding(verdict.setting)
        if kind == grammar.COPY:
            db = section or ""
            schema, name = verdict.schema or "public", verdict.name or ""
            # One table may get several COPY blocks (pg_dump loads each partition through
            # the root when it is hash partitioned on an enum): its rows are their sum.
            current = self.current
            known = current.table_index.get((schema, name)) if current is not None else None
            self.table = known or TableRows(db, schema, name)
            self._line_start = True
            if current is not None and known is None:
                current.tables.append(self.table)
                current.table_index[(schema, name)] = self.table

    def _set_encoding(self, encoding: str) -> None:
        self.encoding = encoding
        self._lexer.codec, self._lexer.errors = grammar.codec_for(encoding)

    def summary_tables(self) -> list[TableRows]:
        """The tables read so far (of a dump that may have stopped part way)."""
        return [t for d in self.databases for t in d.tables]

    def summary(self) -> DumpSummary:
        # A line or statement cut off by the end of the stream is a truncated dump
        # (incomplete), not a hostile one: it was never sent.
        tail = b"".join(self._pending).strip() if self.table is None else b""
        unfinished = self._lexer.pending_line is not None or tail not in (b"", b"--")
        return DumpSummary(
            databases=self.databases,
            roles=self.roles,
            complete=self.table is None and self._trailer and not unfinished,
            bytes=self.bytes,
            server_version=self._versions.get("from database"),
            pg_dumpall_version=self._versions.get("by pg_dumpall"),
            restrict=self._restrict,
            statements=self.statements,
        )


def _show(text: str, limit: int = 80) -> str:
    """A line of the backup as a message may quote it: passwords masked, control
    characters escaped, cut."""
    safe = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in grammar.redact(text))
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"
