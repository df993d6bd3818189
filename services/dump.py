"""Reading a ``pg_dumpall`` stream as it goes by: databases, tables, row counts, trailer.

The scanner is fed decompressed chunks and never holds more than one line of schema
text or a few bytes of COPY data: rows are counted with ``bytes.count`` between a
table's ``COPY ... FROM stdin;`` and its ``\\.``, so scanning keeps up with the
decompressor. The dump's own trailer is the only proof it finished (a gzip-valid file
can hold a truncated dump when ``pg_dumpall`` died under ``pigz``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

CLUSTER_TRAILER = "-- PostgreSQL database cluster dump complete"
DATABASE_TRAILER = "-- PostgreSQL database dump complete"

_IDENT = r'(?:"(?:[^"]|"")*"|[^\s."(;]+)'
_COPY = re.compile(rf"^COPY ({_IDENT})\.({_IDENT})(?: \(.*\))? FROM stdin;$")
_CREATE_DB = re.compile(rf"^CREATE DATABASE ({_IDENT}) WITH (.*);$")
_LOCALE = re.compile(r"\b(?:LOCALE|LC_COLLATE|LC_CTYPE) = '((?:[^']|'')*)'")
_OBJECT = re.compile(
    rf"^CREATE (?:OR REPLACE )?(?P<kind>TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|UNIQUE INDEX|INDEX|"
    rf"FUNCTION|PROCEDURE|TYPE) (?:IF NOT EXISTS )?(?P<name>{_IDENT}(?:\.{_IDENT})?)"
)
_CONSTRAINT = re.compile(
    rf"^    ADD CONSTRAINT ({_IDENT}) (?P<what>PRIMARY KEY|FOREIGN KEY|UNIQUE|CHECK|EXCLUDE)"
)
_ROLE = re.compile(rf"^CREATE ROLE ({_IDENT});$")
_VERSION = re.compile(r"^-- Dumped (from database|by pg_dumpall) version (\S+)")
_KIND = {"UNIQUE INDEX": "index", "MATERIALIZED VIEW": "view", "PROCEDURE": "function"}


def qualified(text: str) -> str:
    """``"Sch"."Tab le"`` -> ``Sch.Tab le``: names as the catalogs spell them."""
    return ".".join(unquote_ident(part) for part in re.findall(_IDENT, text))


def unquote_ident(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def connect_target(line: str) -> str:
    """The database of a ``\\connect`` line, in each form pg_dumpall writes."""
    arg = line.split(None, 1)[1].strip() if " " in line.strip() else ""
    if arg.startswith("-reuse-previous=on "):
        arg = arg[len("-reuse-previous=on ") :].strip()
        if arg.startswith('"') and arg.endswith('"'):
            arg = arg[1:-1]
        m = re.fullmatch(r"dbname='((?:[^'\\]|\\.)*)'", arg)
        if m:
            return re.sub(r"\\(.)", r"\1", m[1])
        return arg
    return unquote_ident(arg)


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
    tables: list[TableRows] = field(default_factory=list)
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

    @property
    def tables(self) -> list[TableRows]:
        return [t for d in self.databases for t in d.tables]


class LineFilter(Protocol):
    """Decides what of the dump goes on (to psql): a line rewritten, dropped or kept."""

    keep_data: bool  # whether the COPY rows being read go on

    def line(self, line: str, scanner: DumpScanner) -> str | None: ...


class DumpScanner:
    """Feed it the decompressed dump, chunk by chunk; ``summary()`` at the end.

    With a ``sink``, the scanner also passes the dump on (to psql), lines through
    ``filter`` and COPY rows in bulk, so one pass both checks and restores.
    """

    def __init__(
        self,
        on_table: Callable[[TableRows], None] | None = None,
        *,
        sink: Callable[[bytes, bool], None] | None = None,  # (data, is COPY rows)
        filter: LineFilter | None = None,  # noqa: A002 - the natural name here
        on_database: Callable[[str], None] | None = None,
    ) -> None:
        self._on_database = on_database
        self._sink = sink
        self._filter = filter
        self.databases: list[DatabaseSection] = []
        self.roles: list[str] = []
        self.current: DatabaseSection | None = None
        self.table: TableRows | None = None  # the COPY being read, if any
        self.bytes = 0
        self._tail = b""  # an incomplete line carried to the next chunk
        self._trailer = False  # the cluster trailer arrived and nothing but "--" after it
        self._versions: dict[str, str] = {}
        self._restrict = False
        self._pending_db: dict[str, tuple[bool, str | None]] = {}
        self._on_table = on_table

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        buf = self._tail + chunk if self._tail else chunk
        pos = 0
        end = len(buf)
        while pos < end:
            if self.table is not None:
                pos = self._copy_rows(buf, pos)
                if self.table is not None:
                    return  # the chunk ended inside COPY data; the tail is kept
                continue
            nl = buf.find(b"\n", pos)
            if nl < 0:
                self._tail = buf[pos:]
                return
            line = buf[pos:nl].decode("utf-8", "replace")
            self._line(line)
            if self._sink is not None:
                out = self._filter.line(line, self) if self._filter else line
                if out is not None:
                    self._sink(out.encode("utf-8") + b"\n", False)
            pos = nl + 1
        self._tail = b""

    def _copy_rows(self, buf: bytes, pos: int) -> int:
        """Count rows from ``pos`` (a line start) up to the ``\\.`` line, if it is here."""
        assert self.table is not None
        if buf.startswith(b"\\.\n", pos):
            term = pos  # where the terminator line starts
        else:
            found = buf.find(b"\n\\.\n", pos)
            term = found + 1 if found >= 0 else -1
        if term >= 0:
            self.table.rows += buf.count(b"\n", pos, term)
            self._pass_data(buf, pos, term + 3)
            self._end_copy()
            return term + 3
        last = buf.rfind(b"\n", pos)
        if last < 0:
            self._tail = buf[pos:]
            return len(buf)
        self.table.rows += buf.count(b"\n", pos, last + 1)
        self._pass_data(buf, pos, last + 1)
        self._tail = buf[last + 1 :]
        return len(buf)

    def _pass_data(self, buf: bytes, start: int, stop: int) -> None:
        if (
            self._sink is not None
            and stop > start
            and (self._filter is None or self._filter.keep_data)
        ):
            self._sink(buf[start:stop], True)

    def _end_copy(self) -> None:
        assert self.table is not None
        if self._on_table:
            self._on_table(self.table)
        self.table = None
        self._trailer = False

    def _line(self, line: str) -> None:
        if line == CLUSTER_TRAILER:
            self._trailer = True
        elif self._trailer and line not in ("", "--"):
            self._trailer = False
        if not line or (
            line.startswith("--") and not line.startswith("-- P") and not line.startswith("-- D")
        ):
            return
        first = line[0]
        if first == "\\":
            if line.startswith("\\connect"):
                name = connect_target(line)
                created, locale = self._pending_db.pop(name, (False, None))
                self.current = DatabaseSection(name=name, created=created, locale=locale)
                self.databases.append(self.current)
                if self._on_database:
                    self._on_database(name)
            elif line.startswith("\\restrict"):
                self._restrict = True
            return
        if first == "-":
            if line == DATABASE_TRAILER and self.current is not None:
                self.current.complete = True
            elif m := _VERSION.match(line):
                self._versions.setdefault(m[1], m[2])
            return
        if first == "C":
            if line.startswith("COPY ") and (m := _COPY.match(line)):
                db = self.current.name if self.current else ""
                self.table = TableRows(db, unquote_ident(m[1]), unquote_ident(m[2]))
                if self.current is not None:
                    self.current.tables.append(self.table)
                return
            if m := _CREATE_DB.match(line):
                loc = _LOCALE.search(m[2])
                self._pending_db[unquote_ident(m[1])] = (True, loc[1] if loc else None)
                return
            if self.current is None:
                if m := _ROLE.match(line):
                    self.roles.append(unquote_ident(m[1]))
                return
            if m := _OBJECT.match(line):
                kind = _KIND.get(m["kind"], m["kind"].lower())
                self.current.add_object(kind, qualified(m["name"]))
            return
        if first == " " and self.current is not None and (m := _CONSTRAINT.match(line)):
            self.current.add_object("constraint", unquote_ident(m[1]))
            if m["what"] == "FOREIGN KEY":
                self.current.add_object("foreign key", unquote_ident(m[1]))

    def summary(self) -> DumpSummary:
        if self._tail and self.table is None:
            line = self._tail.decode("utf-8", "replace")
            self._line(line)
            if self._sink is not None:
                out = self._filter.line(line, self) if self._filter else line
                if out is not None:
                    self._sink(out.encode("utf-8"), False)
            self._tail = b""
        return DumpSummary(
            databases=self.databases,
            roles=self.roles,
            complete=self.table is None and self._trailer,
            bytes=self.bytes,
            server_version=self._versions.get("from database"),
            pg_dumpall_version=self._versions.get("by pg_dumpall"),
            restrict=self._restrict,
        )
