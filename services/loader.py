"""Sessions on the target that a restore sends its judged statements through (psycopg).

No script interpreter stands between the backup and the server: pgdeck sends each
statement itself, one at a time, with the extended query protocol, which refuses a text
holding more than one statement, so a statement the grammar judged cannot carry another.
Table data goes through ``COPY ... FROM STDIN`` on the same session. Every session has
``standard_conforming_strings`` on (the grammar's lexer assumes it) and auto-prepare off.

A ``\\connect`` becomes a new session on that database; database-level statements (and
the roles) go through the maintenance session on ``postgres``. ``cancel()`` may be called
from any thread: it marks the loader cancelled and asks the server to cancel what runs;
a COPY in flight is then ended with an error (CopyFail), so the server rolls it back
instead of committing what arrived. If the process dies, the server sees the connection
drop and rolls back the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.errors import PgdeckError
from services.target import ResolvedTarget, connection_error

MAINTENANCE_DB = "postgres"
APPLICATION = "pgdeck-restore"


@dataclass(frozen=True, slots=True)
class ServerMessage:
    severity: str  # NOTICE, WARNING, ...
    text: str


class LoadFailed(PgdeckError):
    """The server refused a statement (or the COPY of a table)."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class Cancelled(Exception):
    """The load was cancelled (by the user or a signal)."""


class Loader:
    def __init__(
        self,
        target: ResolvedTarget,
        *,
        on_message: Callable[[ServerMessage], None] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self._on_message = on_message or (lambda _m: None)
        self._settings = {
            "standard_conforming_strings": "on",
            "client_min_messages": "warning",
            **(settings or {}),
        }
        self._maintenance: Any = None
        self._current: Any = None
        self.current_database: str | None = None
        self._active: Any = None  # the connection a statement is running on
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._copy: Any = None
        self._copy_cursor: Any = None
        self._copy_stack: contextlib.ExitStack | None = None
        self._copy_encoding: str | None = None  # the client_encoding the COPY began in

    # --- sessions -----------------------------------------------------------------------
    def _connect(self, dbname: str) -> Any:
        import psycopg

        options = " ".join(f"-c {k}={v}" for k, v in self._settings.items())
        kwargs: dict[str, Any] = {
            "dbname": dbname,
            "autocommit": True,
            "connect_timeout": 10,
            "application_name": APPLICATION,
            "options": options,
            "client_encoding": "UTF8",
        }
        if self.target.password is not None:
            kwargs["password"] = self.target.password
        try:
            conn = psycopg.connect(self.target.conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            raise connection_error(exc, self.target) from exc
        conn.prepare_threshold = None
        conn.add_notice_handler(self._notice)
        return conn

    def maintenance(self) -> Any:
        if self._maintenance is None:
            self._maintenance = self._connect(MAINTENANCE_DB)
        return self._maintenance

    def use(self, database: str) -> None:
        """Send what follows to ``database`` (a new session, as ``\\connect`` opens)."""
        self._check()
        if self._current is not None:
            with contextlib.suppress(Exception):
                self._current.close()
        self._current = None
        self.current_database = database
        self._current = self._connect(database)

    def close(self) -> None:
        self.abort_copy()
        for conn in (self._current, self._maintenance):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._current = self._maintenance = None

    # --- statements ---------------------------------------------------------------------
    def execute(
        self,
        sql: bytes,
        *,
        maintenance: bool = False,
        encoding: str | None = None,
        encoding_after: str | None = None,
    ) -> None:
        """Send one statement; on the maintenance session, first in ``encoding`` (the
        client_encoding the statement's bytes are in: its section's). Afterwards the
        session must be in ``encoding_after`` (the statement's own SET client_encoding) or
        else ``encoding``, as the backup's reader is."""
        import psycopg

        self._check()
        conn = self.maintenance() if maintenance else self._current
        if conn is None:
            raise LoadFailed("a statement arrived before any \\connect")
        if maintenance and encoding is not None:
            self._use_encoding(conn, encoding)
        with self._lock:
            self._active = conn
        try:
            # binary=True: the extended protocol, one statement per message.
            conn.execute(sql, binary=True)
        except psycopg.Error as exc:
            self._raise(exc)
        finally:
            with self._lock:
                self._active = None
        self._check_session(conn, encoding_after or encoding)

    def _use_encoding(self, conn: Any, encoding: str) -> None:
        import psycopg
        from psycopg import sql

        from services.grammar_settings import normalize_encoding

        current = conn.info.parameter_status("client_encoding") or "UTF8"
        if normalize_encoding(current) == normalize_encoding(encoding):
            return
        try:
            conn.execute(sql.SQL("SET client_encoding = {}").format(sql.Literal(encoding)))
        except psycopg.Error as exc:
            self._raise(exc)

    def _check_session(self, conn: Any, expected: str | None = None) -> None:
        """The settings the lexer relies on are still in force on the session: a function
        of the backup that ran (a default, an index expression) could have changed them
        behind the statements, and the next statement would then be cut (or its names
        read) differently by the server than it was judged."""
        from services.grammar_settings import SAFE_ENCODINGS, normalize_encoding

        info = conn.info
        conforming = info.parameter_status("standard_conforming_strings")
        encoding = normalize_encoding(info.parameter_status("client_encoding") or "UTF8")
        if (
            conforming not in (None, "on")
            or encoding not in SAFE_ENCODINGS
            or (expected is not None and encoding != normalize_encoding(expected))
        ):
            raise LoadFailed(
                "the session's standard_conforming_strings or client_encoding was changed by "
                "something the backup ran; the restore was stopped before its next statement"
            )

    def copy_begin(self, sql: bytes, encoding: str | None = None) -> None:
        import psycopg

        self._check()
        conn = self._current
        if conn is None:
            raise LoadFailed("a COPY arrived before any \\connect")
        cur = conn.cursor()
        stack = contextlib.ExitStack()
        try:
            self._copy = stack.enter_context(cur.copy(sql))
        except psycopg.Error as exc:
            stack.close()
            cur.close()
            self._raise(exc)
        self._copy_cursor = cur
        self._copy_stack = stack
        self._copy_encoding = encoding
        with self._lock:
            self._active = conn

    def copy_write(self, data: memoryview | bytes) -> None:
        import psycopg

        if self._cancelled.is_set():
            self.abort_copy()
            raise Cancelled()
        try:
            self._copy.write(data)
        except psycopg.Error as exc:
            self.abort_copy()
            self._raise(exc)

    def copy_end(self) -> int:
        """End the COPY; the server's own count of the rows it stored."""
        import psycopg

        stack, cur = self._copy_stack, self._copy_cursor
        self._copy = self._copy_stack = self._copy_cursor = None
        try:
            if self._cancelled.is_set():
                raise Cancelled()
            assert stack is not None and cur is not None
            stack.close()
            self._check_session(cur.connection, self._copy_encoding)
            return int(cur.rowcount)
        except psycopg.Error as exc:
            self._raise(exc)
            raise  # unreachable: _raise always raises
        except Cancelled:
            if stack is not None:
                _close_with_error(stack)
            raise
        finally:
            if cur is not None:
                cur.close()
            with self._lock:
                self._active = None

    def abort_copy(self) -> None:
        """End a COPY in flight with an error: the server rolls it back."""
        stack, cur = self._copy_stack, self._copy_cursor
        self._copy = self._copy_stack = self._copy_cursor = None
        if stack is not None:
            _close_with_error(stack)
        if cur is not None:
            with contextlib.suppress(Exception):
                cur.close()

    def _rows(self, query: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """A catalog query on the current session ([] before any \\connect). Operators in
        it are qualified: the dump's own search_path is in force there."""
        import psycopg

        conn = self._current
        if conn is None:
            return []
        try:
            return list(conn.execute(query, params).fetchall())
        except psycopg.Error as exc:
            self._raise(exc)
            raise  # unreachable: _raise always raises

    def language_trusted(self, language: str) -> bool | None:
        """Whether the current database's ``language`` is trusted (None: it has none such)."""
        rows = self._rows(
            "SELECT lanpltrusted FROM pg_catalog.pg_language"
            " WHERE lanname OPERATOR(pg_catalog.=) %s::pg_catalog.name",
            (language,),
        )
        return bool(rows[0][0]) if rows else None

    def relations(self) -> set[tuple[str, str]]:
        """The tables, views and sequences of the current database, before the backup
        adds any (pg_catalog's and information_schema's left out)."""
        rows = self._rows(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
            " WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,f,v,m,S}'::pg_catalog.\"char\"[])"
            " AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])"
            " AND n.nspname::text OPERATOR(pg_catalog.!~~) 'pg\\_toast%'"
        )
        return {(_text(a), _text(b)) for a, b in rows}

    def objects_in(
        self, schemas: tuple[str, ...] | None = None, *, relations: bool = True
    ) -> set[tuple[str, str]]:
        """The functions and types (and relations) of the current database, in ``schemas``
        (None: every schema but pg_catalog's and information_schema's)."""
        where = (
            "n.nspname::text OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.text[])"
            if schemas is not None
            else "n.nspname OPERATOR(pg_catalog.<>) ALL "
            "('{pg_catalog,information_schema}'::pg_catalog.name[])"
        )
        classes = (
            "SELECT relnamespace, relname FROM pg_catalog.pg_class UNION ALL " if relations else ""
        )
        rows = self._rows(
            "SELECT n.nspname::text, o.name::text FROM pg_catalog.pg_namespace n, ("
            + classes
            + " SELECT pronamespace, proname FROM pg_catalog.pg_proc"
            " UNION ALL SELECT typnamespace, typname FROM pg_catalog.pg_type"
            " WHERE typrelid OPERATOR(pg_catalog.=) 0"  # a relation's row type is the relation's
            ") AS o(nsp, name) WHERE o.nsp OPERATOR(pg_catalog.=) n.oid AND " + where,
            (list(schemas),) if schemas is not None else None,
        )
        return {(_text(a), _text(b)) for a, b in rows}

    def schemas(self) -> set[str]:
        """The schemas of the current database, before the backup adds any."""
        return {
            _text(row[0]) for row in self._rows("SELECT nspname::text FROM pg_catalog.pg_namespace")
        }

    def relkind(self, schema: str, table: str) -> str | None:
        """The kind of ``schema.table`` in the current database (r: an ordinary table)."""
        rows = self._rows(
            "SELECT c.relkind::text FROM pg_catalog.pg_class c"
            " WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s)::pg_catalog.oid",
            (_regclass(schema, table),),
        )
        return _text(rows[0][0]) if rows else None

    def partitions(self, schema: str, table: str) -> list[tuple[str, str, str]]:
        """Every partition under partitioned table ``schema.table``, at any depth: (schema,
        name, relkind), where rows COPYed into the root land."""
        name = _regclass(schema, table)
        rows = self._rows(
            "WITH RECURSIVE tree(relid) AS ("
            " SELECT pg_catalog.to_regclass(%s)::pg_catalog.oid"
            " UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i, tree"
            " WHERE i.inhparent OPERATOR(pg_catalog.=) tree.relid)"
            " SELECT n.nspname::text, c.relname::text, c.relkind::text"
            " FROM tree, pg_catalog.pg_class c, pg_catalog.pg_namespace n"
            " WHERE c.oid OPERATOR(pg_catalog.=) tree.relid"
            " AND n.oid OPERATOR(pg_catalog.=) c.relnamespace"
            " AND tree.relid OPERATOR(pg_catalog.<>) pg_catalog.to_regclass(%s)::pg_catalog.oid",
            (name, name),
        )
        return [(_text(a), _text(b), _text(c)) for a, b, c in rows]

    def extension_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` exists in the current database as a member of an
        extension (pg_dump writes the data of an extension's configuration tables)."""
        rows = self._rows(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
            " WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
            " AND d.objid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s)::pg_catalog.oid"
            " AND d.deptype OPERATOR(pg_catalog.=) 'e')",
            (_regclass(schema, table),),
        )
        return bool(rows and rows[0][0])

    # --- cancel ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """From any thread: stop what runs now and refuse what follows."""
        self._cancelled.set()
        with self._lock:
            conn = self._active
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=5)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled()

    # --- messages -------------------------------------------------------------------------
    def _notice(self, diag: Any) -> None:
        self._on_message(ServerMessage(diag.severity or "NOTICE", diag.message_primary or ""))

    def _raise(self, exc: Exception) -> None:
        import psycopg

        if self._cancelled.is_set() and isinstance(exc, psycopg.errors.QueryCanceled):
            raise Cancelled() from exc
        if isinstance(exc, psycopg.OperationalError) and getattr(exc, "diag", None) is None:
            raise LoadFailed(f"the connection to {self.target.display} failed: {exc}") from exc
        diag = getattr(exc, "diag", None)
        primary = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
        severity = (diag.severity if diag else None) or "ERROR"
        text = f"{severity}:  {primary}"
        if diag is not None and diag.message_detail:
            text += f" ({diag.message_detail})"
        raise LoadFailed(text, sqlstate=diag.sqlstate if diag else None) from exc


def _regclass(schema: str, table: str) -> str:
    """``schema.table`` as to_regclass reads it, both parts quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))


def _text(value: Any) -> str:
    """A name as text: under client_encoding SQL_ASCII (a dump's section may set it)
    psycopg hands text back as bytes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _close_with_error(stack: contextlib.ExitStack) -> None:
    """Leave a COPY context as an exception would: psycopg sends CopyFail."""
    try:
        raise Cancelled("the restore stopped; this table's COPY is rolled back")
    except Cancelled as exc:
        with contextlib.suppress(BaseException):
            stack.__exit__(type(exc), exc, exc.__traceback__)
