"""What a restore may send: the statements ``pg_dump`` and ``pg_dumpall`` write, and no other.

Each statement of a dump, cut by ``services.sqllex``, is judged here before anything is
sent. A statement pg_dump never writes is refused with the line it starts on and what was
found; the restore then stops before it. The catalogue follows pg_dump's sources
(``pg_dumpall.c``, ``pg_dump.c``, ``pg_backup_archiver.c``, ``dumputils.c``, read for 10
to 17) and real dumps of PostgreSQL 13 to 17 (``tests/fixtures/dumps``; no pg_dumpall of 10
to 12 could be had here, so their few shapes of their own, such as the UPDATE that marks a
template database, come from the sources alone):

- session settings pg_dump writes (``SET statement_timeout = 0`` ...), with their values;
- ``SELECT pg_catalog.<f>(literals)`` for the few functions pg_dump calls (``set_config``
  of ``search_path``, ``setval``, the large-object calls), nothing else at top level;
- ``COPY name (columns) FROM stdin`` only: no file, no program;
- roles in pg_dumpall's shapes (a bare ``CREATE ROLE``, ``ALTER ROLE ... WITH``, role
  settings, memberships); never ``CREATE USER``/``ALTER USER``/``GROUP``;
- DDL (``CREATE``/``ALTER``/``COMMENT``/``SECURITY LABEL``/``GRANT``/``REVOKE``/``REFRESH
  MATERIALIZED VIEW``) of the object kinds pg_dump dumps, minus what reaches the server's
  files or programs: functions in C or ``internal`` (a server library or a built-in under a
  new name), tablespaces (a server directory), a foreign table's ``program`` option, a
  database copied from a template other than ``template0``, a subscription that connects,
  ``CREATE TABLE ... AS`` or a materialized view filled at creation;
- never ``ALTER SYSTEM``, ``DO``, ``CALL``, ``LOAD``, DML, ``DROP``, ``SET ROLE`` /
  ``SESSION AUTHORIZATION`` or any other statement.

What such a dump can still do inside the target is stated in the README (functions it
defines run as the restoring role when an index or a materialized view calls them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.sqllex import DOLLAR, NUMBER, PUNCT, QIDENT, STRING, WORD, Statement, Token


class Refused(Exception):
    """A statement (or line) of the backup that pg_dump never writes."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


# --- verdicts ---------------------------------------------------------------------------
SESSION = "session"  # SET ..., set_config('search_path'), BEGIN/COMMIT: the session's own
CATALOG_CALL = "catalog_call"  # setval, large objects
COPY = "copy"
CREATE_ROLE = "create_role"
ALTER_ROLE = "alter_role"
ROLE_SETTING = "role_setting"  # ALTER ROLE x SET ...
ROLE_DB_SETTING = "role_db_setting"  # ALTER ROLE x IN DATABASE y SET ...
ROLE_GRANT = "role_grant"
ROLE_COMMENT = "role_comment"  # COMMENT ON ROLE / SECURITY LABEL ... ON ROLE
CREATE_DATABASE = "create_database"
DATABASE = "database"  # ALTER/COMMENT/GRANT/REVOKE/SECURITY LABEL ... DATABASE x
TABLESPACE = "tablespace"  # CREATE/ALTER/COMMENT/GRANT ... TABLESPACE x (never sent as such)
PARAMETER_GRANT = "parameter_grant"  # GRANT ... ON PARAMETER x TO role (15+, in the globals)
DDL = "ddl"

GLOBAL_KINDS = frozenset(
    {CREATE_ROLE, ALTER_ROLE, ROLE_SETTING, ROLE_GRANT, ROLE_COMMENT, TABLESPACE, PARAMETER_GRANT}
)
ROLE_KINDS = frozenset(
    {CREATE_ROLE, ALTER_ROLE, ROLE_SETTING, ROLE_DB_SETTING, ROLE_GRANT, ROLE_COMMENT}
)


@dataclass(frozen=True, slots=True)
class RoleOptions:
    """``ALTER ROLE x WITH ...`` as pg_dumpall writes it, option by option."""

    flags: tuple[str, ...]  # SUPERUSER, NOLOGIN, ... as written (upper case)
    connection_limit: str | None = None
    valid_until: str | None = None  # the literal's text
    password: bool = False  # a PASSWORD '...' (or NULL) was given

    def render(self, role: str, *, keep_password: str | None, superuser: bool) -> str:
        """The statement again, from parsed parts only: the password only when
        ``keep_password`` (the original clause) is given; the privileged attributes
        (SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS) only when ``superuser`` allows."""
        flags = [f for f in self.flags if superuser or f not in PRIVILEGED_FLAGS]
        if not superuser:
            flags += [f"NO{f}" for f in PRIVILEGED_FLAGS if f in self.flags]
        parts = list(flags)
        if self.connection_limit is not None:
            parts.append(f"CONNECTION LIMIT {self.connection_limit}")
        if self.valid_until is not None:
            parts.append("VALID UNTIL " + quote_literal(self.valid_until))
        if keep_password:
            parts.append(keep_password)
        return f"ALTER ROLE {quote_ident(role)} WITH {' '.join(parts)};" if parts else ""


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    name: str | None = None  # the role, database, tablespace or table the statement is about
    schema: str | None = None  # COPY: the table's schema
    database: str | None = None  # ROLE_DB_SETTING: the database
    roles: tuple[str, ...] = ()  # ROLE_GRANT: the roles granted
    members: tuple[str, ...] = ()  # ROLE_GRANT: the roles receiving them
    options: RoleOptions | None = None  # ALTER_ROLE
    password_clause: str | None = None  # ALTER_ROLE: the original PASSWORD clause
    locales: tuple[str, ...] = ()  # CREATE_DATABASE
    objects: tuple[tuple[str, str], ...] = ()  # (kind, name) a DDL statement creates
    constraints: tuple[tuple[str, str], ...] = ()  # ("foreign key" | "other", name) added
    setting: str | None = None  # ROLE_SETTING / ROLE_DB_SETTING / DATABASE ... SET: the name
    creates: bool = False  # CREATE TABLESPACE
    privileges: tuple[str, ...] = ()  # PARAMETER_GRANT: SET, ALTER SYSTEM, ALL
    languages: tuple[str, ...] = ()  # CREATE FUNCTION/PROCEDURE: its language (candidates)
    table: tuple[str, str] | None = None  # CREATE [UNLOGGED] TABLE schema.name (qualified)
    is_template: bool | None = None  # DATABASE: pg_dumpall 10's UPDATE ... datistemplate
    columns: tuple[str, ...] = ()  # COPY: the column list
    parameters: tuple[str, ...] = ()  # PARAMETER_GRANT: the settings
    trigger: bool = False  # CREATE [CONSTRAINT|EVENT] TRIGGER
    event_trigger: bool = False  # CREATE/ALTER/COMMENT ON ... EVENT TRIGGER
    refresh: bool = False  # REFRESH MATERIALIZED VIEW
    large_object: int | None = None  # lo_create / lo_open: the large object's OID
    warnings: tuple[str, ...] = field(default=())


# --- settings ---------------------------------------------------------------------------
# ASCII-safe server encodings: no byte of a multi-byte character is below 0x80, so the
# lexer's view of quotes and backslashes is the server's. (SJIS, BIG5, GBK, UHC, GB18030
# and JOHAB are client-only encodings whose second bytes can be a backslash.)
SAFE_ENCODINGS = frozenset(
    {
        "UTF8", "SQLASCII", "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6",
        "LATIN7", "LATIN8", "LATIN9", "LATIN10", "WIN866", "WIN874", "WIN1250", "WIN1251",
        "WIN1252", "WIN1253", "WIN1254", "WIN1255", "WIN1256", "WIN1257", "WIN1258",
        "KOI8R", "KOI8U", "ISO88595", "ISO88596", "ISO88597", "ISO88598", "EUCJP",
        "EUCJIS2004", "EUCCN", "EUCKR", "EUCTW", "MULEINTERNAL", "UNICODE",
    }
)  # fmt: skip

# How to read names and strings in each server encoding (what the lexer decodes with);
# None: no Python codec, so only ASCII names are read (others are refused).
ENCODING_CODECS: dict[str, str | None] = {
    "UTF8": "utf-8", "UNICODE": "utf-8", "SQLASCII": "utf-8", "LATIN1": "latin-1",
    "LATIN2": "iso8859-2", "LATIN3": "iso8859-3", "LATIN4": "iso8859-4", "LATIN5": "iso8859-9",
    "LATIN6": "iso8859-10", "LATIN7": "iso8859-13", "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15", "LATIN10": "iso8859-16", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253",
    "WIN1254": "cp1254", "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257",
    "WIN1258": "cp1258", "KOI8R": "koi8-r", "KOI8U": "koi8-u", "ISO88595": "iso8859-5",
    "ISO88596": "iso8859-6", "ISO88597": "iso8859-7", "ISO88598": "iso8859-8",
    "EUCJP": "euc_jp", "EUCJIS2004": "euc_jis_2004", "EUCCN": "gb2312", "EUCKR": "euc_kr",
    "EUCTW": None, "MULEINTERNAL": None,
}  # fmt: skip


def codec_for(encoding: str) -> tuple[str, str]:
    """(codec, errors) to read names and strings sent under ``encoding``. SQL_ASCII
    carries any bytes, read as UTF-8 where they are and kept as they are where not."""
    name = normalize_encoding(encoding)
    if name == "SQLASCII":
        return "utf-8", "surrogateescape"
    return ENCODING_CODECS.get(name) or "ascii", "strict"


_ZERO = {"0"}
_BOOL_OFF = {"false", "off"}
# name -> allowed values (lower case) or None for "a name or a literal"
_SESSION_SETTINGS: dict[str, set[str] | None] = {
    "statement_timeout": _ZERO,
    "lock_timeout": _ZERO,
    "idle_in_transaction_session_timeout": _ZERO,
    "transaction_timeout": _ZERO,
    "client_encoding": None,  # checked against SAFE_ENCODINGS
    "standard_conforming_strings": {"on", "true"},
    "check_function_bodies": _BOOL_OFF,
    "xmloption": {"content", "document"},
    "client_min_messages": {"debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"},
    "row_security": {"on", "off", "true", "false"},
    "default_tablespace": None,
    "default_table_access_method": None,
    "default_with_oids": _BOOL_OFF,
    "search_path": None,
    "default_transaction_read_only": _BOOL_OFF,
    "escape_string_warning": {"on", "off", "true", "false"},
}  # fmt: skip

# Settings a dump may not attach to a role or a database: they load server libraries at
# the next login, or change who a session is and which triggers fire.
FORBIDDEN_STORED = _FORBIDDEN_STORED = frozenset(
    {
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
        "dynamic_library_path",
        "session_replication_role",
        "role",
        "session_authorization",
    }
)

_CATALOG_CALLS = {
    # function -> argument kinds
    "setval": ((STRING,), (NUMBER,), (WORD,)),
    "lo_create": ((STRING, NUMBER),),
    "lo_open": ((STRING, NUMBER), (NUMBER,)),
    "lowrite": ((NUMBER,), (STRING,)),
    "lo_close": ((NUMBER,),),
}

# Keywords that name roles of the target (or all of them) where a role name may stand.
ROLE_KEYWORDS = frozenset(
    {"all", "current_user", "session_user", "current_role", "public", "none", "user"}
)

# Attributes that reach past the role's own objects: all data (REPLICATION, BYPASSRLS),
# other roles and, before PostgreSQL 16, membership in pg_execute_server_program
# (CREATEROLE), everything (SUPERUSER).
PRIVILEGED_FLAGS = ("SUPERUSER", "CREATEROLE", "REPLICATION", "BYPASSRLS")

_ROLE_FLAGS = frozenset(
    {
        "SUPERUSER", "NOSUPERUSER", "CREATEDB", "NOCREATEDB", "CREATEROLE", "NOCREATEROLE",
        "INHERIT", "NOINHERIT", "LOGIN", "NOLOGIN", "REPLICATION", "NOREPLICATION",
        "BYPASSRLS", "NOBYPASSRLS",
    }
)  # fmt: skip

# Object kinds pg_dump writes CREATE for (after CREATE [OR REPLACE] [UNIQUE] ...).
_CREATE_KINDS = frozenset(
    {
        "access", "aggregate", "cast", "collation", "constraint", "conversion", "default",
        "domain", "event", "extension", "foreign", "function", "index", "language",
        "materialized", "operator", "policy", "procedure", "procedural", "publication",
        "recursive", "rule", "schema", "sequence", "server", "statistics", "subscription",
        "table", "text", "transform", "trigger", "trusted", "type", "unique", "unlogged",
        "user", "view",
    }
)  # fmt: skip
_ALTER_KINDS = frozenset(
    {
        "aggregate", "collation", "conversion", "database", "default", "domain", "event",
        "foreign", "function", "index", "language", "large", "materialized", "operator",
        "policy", "procedural", "procedure", "publication", "role", "routine", "schema",
        "sequence", "server", "statistics", "subscription", "table", "tablespace", "text",
        "trigger", "type", "user", "view",
    }
)  # fmt: skip
_OBJECT_KIND = {
    "table": "table",
    "view": "view",
    "materialized": "view",
    "sequence": "sequence",
    "index": "index",
    "function": "function",
    "procedure": "function",
    "type": "type",
}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def normalize_encoding(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


# --- the judge --------------------------------------------------------------------------
def judge(stmt: Statement) -> Verdict:
    """The verdict on one statement, or ``Refused`` naming why."""
    t = _Cursor(stmt)
    first = t.word()
    if first is None:
        raise t.refuse("a statement pg_dump does not write")
    handler = _HANDLERS.get(first)
    if handler is None:
        raise t.refuse(f"{first.upper()} is not a statement pg_dump writes")
    if any(tok.prefix == "U&" for tok in stmt.tokens):
        # Unicode-escaped names and strings hide what they spell; pg_dump never writes them.
        raise t.refuse("a U&-escaped name or string (pg_dump never writes one)")
    verdict = handler(t)
    if first != "select":  # its own calls are judged by shape
        _check_calls(stmt)
    return verdict


class _Cursor:
    def __init__(self, stmt: Statement) -> None:
        self.stmt = stmt
        self.tokens = stmt.tokens
        self.i = 0

    def refuse(self, reason: str) -> Refused:
        return Refused(self.stmt.line, reason + ": " + _excerpt(self.stmt))

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, *options: str) -> str | None:
        tok = self.peek()
        if tok is None or tok.kind != WORD or (options and tok.value not in options):
            return None
        self.i += 1
        return tok.value

    def words(self, *seq: str) -> bool:
        """Consume the exact word sequence if it is next."""
        for k, w in enumerate(seq):
            tok = self.peek(k)
            if tok is None or tok.kind != WORD or tok.value != w:
                return False
        self.i += len(seq)
        return True

    def punct(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == PUNCT and tok.value == value:
            self.i += 1
            return True
        return False

    def name(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, QIDENT):
            raise self.refuse("a name was expected")
        self.i += 1
        return tok.value

    def role(self, *, public: bool = False) -> str:
        """A role's name: never one of the keywords that stand for roles (ALL,
        CURRENT_USER, ...), which pg_dumpall would have quoted; PUBLIC where asked."""
        tok = self.peek()
        if tok is not None and tok.kind == WORD and public and tok.value == "public":
            self.i += 1
            return "public"
        if tok is not None and tok.kind == WORD and tok.value in ROLE_KEYWORDS:
            raise self.refuse(
                f"{tok.value.upper()} stands for roles of the target, not a role the dump names"
            )
        return self.name()

    def roles(self, *, public: bool = False) -> tuple[str, ...]:
        out = [self.role(public=public)]
        while self.punct(","):
            out.append(self.role(public=public))
        return tuple(out)

    def qualified(self) -> tuple[str | None, str]:
        first = self.name()
        if self.punct("."):
            return first, self.name()
        return None, first

    def names(self) -> tuple[str, ...]:
        out = [self.name()]
        while self.punct(","):
            out.append(self.name())
        return tuple(out)

    def at_end(self) -> bool:
        return self.i == len(self.tokens) - 1 and self.punct_is(";")

    def punct_is(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == PUNCT and tok.value == value

    def end(self) -> None:
        if not self.at_end():
            raise self.refuse("unexpected text")

    def literal_value(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in (STRING, NUMBER, WORD, QIDENT):
            raise self.refuse("a value was expected")
        self.i += 1
        return tok.value

    def rest(self) -> list[Token]:
        return self.tokens[self.i :]


_PASSWORD_CLAUSE = re.compile(
    r"(PASSWORD\s+)(?:[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')", re.IGNORECASE
)
_PASSWORD_KEYWORD = re.compile(
    r"(password\s*=\s*)(?:''(?:(?!'')[^\n])*''|'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE
)


_URI_USERINFO = re.compile(r"(://[^/@\s:'\"]*:)[^/@\s'\"]*@")


def redact(sql: str) -> str:
    """A statement (or line) as messages, logs and reports may show it: role passwords
    (and their hashes, in any string form), user mapping passwords and passwords in
    connection strings hidden."""
    text = _PASSWORD_KEYWORD.sub(r"\1***", _PASSWORD_CLAUSE.sub(r"\1'***'", sql))
    return _URI_USERINFO.sub(r"\1***@", text)


_LITERAL = re.compile(
    r"[eE]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?|\$([A-Za-z_][A-Za-z0-9_]*)?\$.*?(?:\$\1\$|$)",
    re.S,
)


# PASSWORD (perhaps quoted, as an option's name), perhaps "=", perhaps comments, then the
# literal: the literal is the secret.
_BEFORE_PASSWORD = re.compile(r"\"?password\"?\s*(?:=\s*)?$", re.IGNORECASE)
_BEFORE_WINDOW = 512  # how far before a literal its PASSWORD may stand
_MASKED_PREFIX = 16384  # what of a statement a message may quote at most
_URI_SECRET = re.compile(r"://[^/@\s'\"]*:[^/@\s'\"]*@")


def _without_comments(text: str) -> str:
    """``text`` with its comments (nested ones too, as the server reads them) made one
    space each: what stands before a literal, whatever comments lie between."""
    out: list[str] = []
    i, n, depth = 0, len(text), 0
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif depth and text.startswith("*/", i):
            depth -= 1
            i += 2
            if not depth:
                out.append(" ")
        elif depth:
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mask_literals(sql: str) -> str:
    """A statement as messages quote it: a literal that follows PASSWORD (in any string
    form, through comments), holds the word password anywhere in its text (a connection
    string, a nested clause) or a URI's user:secret@ is hidden; other literals stay, to
    name what was found."""

    def mask(m: re.Match[str]) -> str:
        text = m.group()
        before = sql[max(0, m.start() - _BEFORE_WINDOW) : m.start()]
        if (
            "password" in text.lower()
            or _URI_SECRET.search(text)
            or ("password" in before.lower() and _BEFORE_PASSWORD.search(_without_comments(before)))
        ):
            return "$$***$$" if text.startswith("$") else "'***'"
        return text

    return _LITERAL.sub(mask, sql)


def excerpt(stmt: Statement, limit: int = 120) -> str:
    """A statement as a message may quote it: passwords masked, control characters
    escaped, whitespace folded, cut."""
    return _excerpt(stmt, limit)


def _excerpt(stmt: Statement, limit: int = 120) -> str:
    text = "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}"
        for ch in " ".join(
            mask_literals(stmt.text[:_MASKED_PREFIX].decode("utf-8", "replace")).split()
        )
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- statements ---------------------------------------------------------------------------
def _set(t: _Cursor) -> Verdict:
    if t.words("session", "authorization"):
        # pg_dump writes it around a GRANT that a non-owner made (and RESETs it after):
        # the superuser restoring acts as that role, which can do no more than it.
        t.role() if t.peek() and t.peek().kind != STRING else t.literal_value()  # type: ignore[union-attr]
        t.end()
        return Verdict(SESSION, name="session_authorization")
    if t.word("session", "local"):
        raise t.refuse("SET SESSION/LOCAL is not written by pg_dump")
    name = t.word()
    if name is None:
        raise t.refuse("SET of an unknown kind")
    if name not in _SESSION_SETTINGS:
        raise t.refuse(f"SET {name} is not a setting pg_dump writes")
    if not (t.punct("=") or t.word("to")):
        raise t.refuse("SET without = or TO")
    allowed = _SESSION_SETTINGS[name]
    values = [t.literal_value()]
    if name == "search_path":
        while t.punct(","):
            values.append(t.literal_value())
    t.end()
    value = values[0].lower()
    if name == "client_encoding":
        if normalize_encoding(values[0]) not in SAFE_ENCODINGS:
            raise t.refuse(
                f"client_encoding {values[0]!r} is not a server encoding (its multi-byte "
                "characters could hide quotes)"
            )
    elif allowed is not None and value not in allowed:
        raise t.refuse(f"SET {name} to {values[0]!r}, which pg_dump never writes")
    setting = None
    if name == "client_encoding":
        setting = values[0]
    elif name == "search_path":
        setting = ", ".join(values)
    return Verdict(SESSION, name=name, setting=setting)


def _select(t: _Cursor) -> Verdict:
    if not (t.word("pg_catalog") and t.punct(".")):
        raise t.refuse("a SELECT that pg_dump does not write (only pg_catalog calls are)")
    func = t.word()
    if func == "set_config":
        args = _call_args(t)
        if (
            len(args) == 3
            and args[0].kind == STRING
            and args[0].value == "search_path"
            and args[1].kind == STRING
            and args[2].kind == WORD
            and args[2].value == "false"
        ):
            t.end()
            return Verdict(SESSION, name="search_path", setting=args[1].value)
        raise t.refuse("set_config of anything but search_path is not written by pg_dump")
    if func not in _CATALOG_CALLS:
        raise t.refuse(f"SELECT pg_catalog.{func}(...) is not a call pg_dump writes")
    args = _call_args(t)
    kinds = _CATALOG_CALLS[func]
    if len(args) != len(kinds) or any(a.kind not in k for a, k in zip(args, kinds, strict=True)):
        raise t.refuse(f"pg_catalog.{func} with arguments pg_dump does not write")
    if func == "setval" and args[2].value not in ("true", "false"):
        raise t.refuse("setval's third argument must be true or false")
    large_object = None
    if func in ("lo_create", "lo_open"):
        large_object = _oid(t, args[0].value)
    t.end()
    return Verdict(CATALOG_CALL, name=func, large_object=large_object)


def _oid(t: _Cursor, text: str) -> int:
    """A large object's OID as pg_dump writes it: a whole number."""
    if not text.isascii() or not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise t.refuse(f"a large object OID {text[:20]!r} that is not a whole number")
    return int(text)


def large_objects_named(stmt: Statement) -> list[str]:
    """The large objects a statement names (``LARGE OBJECT n``: ALTER, GRANT, COMMENT,
    SECURITY LABEL), as written."""
    toks = stmt.tokens
    named: list[str] = []
    for k in range(len(toks) - 2):
        if (toks[k].kind, toks[k].value, toks[k + 1].kind, toks[k + 1].value) != (
            WORD,
            "large",
            WORD,
            "object",
        ):
            continue
        j = k + 2  # LARGE OBJECT n [, m ...]
        while j < len(toks):
            named.append(toks[j].value)
            if j + 1 < len(toks) and toks[j + 1].value == ",":
                j += 2
            else:
                break
    return named


def _call_args(t: _Cursor) -> list[Token]:
    """``( literal , literal ... )``: every argument a single literal token."""
    if not t.punct("("):
        raise t.refuse("a function call was expected")
    args: list[Token] = []
    while True:
        tok = t.peek()
        if tok is None:
            raise t.refuse("unterminated call")
        if tok.kind == PUNCT and tok.value == "-" and (nxt := t.peek(1)) and nxt.kind == NUMBER:
            t.i += 2
            args.append(Token(NUMBER, "-" + nxt.value))
        elif tok.kind in (STRING, NUMBER, WORD):
            t.i += 1
            args.append(tok)
        else:
            raise t.refuse("only literal arguments are admitted")
        if t.punct(","):
            continue
        if t.punct(")"):
            return args
        raise t.refuse("only literal arguments are admitted")


def _copy(t: _Cursor) -> Verdict:
    schema, table = t.qualified()
    columns: tuple[str, ...] = ()
    if t.punct("("):
        columns = t.names()
        if not t.punct(")"):
            raise t.refuse("COPY with an unexpected column list")
    if not (t.words("from", "stdin")):
        raise t.refuse("COPY other than FROM stdin (a server file or program) is refused")
    t.end()
    return Verdict(COPY, name=table, schema=schema or "public", columns=columns)


def copy_statement(verdict: Verdict) -> bytes:
    """The COPY sent for a judged one, built again from its parsed parts only: it goes
    by the simple query protocol, so nothing of the backup's text rides along."""
    cols = ", ".join(quote_ident(c) for c in verdict.columns)
    table = f"{quote_ident(verdict.schema or 'public')}.{quote_ident(verdict.name or '')}"
    return f"COPY {table}{f' ({cols})' if cols else ''} FROM STDIN".encode()


def _reset(t: _Cursor) -> Verdict:
    if not t.words("session", "authorization"):
        raise t.refuse("RESET other than RESET SESSION AUTHORIZATION")
    t.end()
    return Verdict(SESSION, name="session_authorization")


def _update(t: _Cursor) -> Verdict:
    """pg_dumpall before 11 marks a template database with one exact UPDATE; no other."""
    shape = ("pg_catalog", ".", "pg_database", "set", "datistemplate", "=")
    for want in shape:
        tok = t.peek()
        if tok is None or tok.value != want:
            raise t.refuse("UPDATE is not written by pg_dump (but pg_dumpall 10's datistemplate)")
        t.i += 1
    flag = t.peek()
    value = flag.value.lower() if flag is not None and flag.kind in (STRING, WORD) else ""
    if value not in ("t", "true", "f", "false"):
        raise t.refuse("UPDATE of datistemplate to something other than true or false")
    t.i += 1
    if not (t.word("where") and t.word("datname") and t.punct("=")):
        raise t.refuse("UPDATE of datistemplate other than WHERE datname = '...'")
    name = t.peek()
    if name is None or name.kind != STRING:
        raise t.refuse("UPDATE of datistemplate other than WHERE datname = '...'")
    t.i += 1
    t.end()
    return Verdict(DATABASE, name=name.value, is_template=value in ("t", "true"))


def _begin(t: _Cursor) -> Verdict:
    t.end()
    return Verdict(SESSION, name="begin")


def _commit(t: _Cursor) -> Verdict:
    t.end()
    return Verdict(SESSION, name="commit")


def _create(t: _Cursor) -> Verdict:
    replace = t.words("or", "replace")
    kind = t.word()
    if kind != "extension" and _has_if_not_exists(t):
        # pg_dump writes IF NOT EXISTS for extensions only; elsewhere it would let the
        # backup "create" an object the target already has, then fill it.
        raise t.refuse("CREATE ... IF NOT EXISTS (pg_dump writes it for extensions only)")
    if kind == "user" and t.word("mapping"):
        _check_fdw_options(t)
        return Verdict(DDL)
    if kind in ("role", "user", "group") and not replace:
        if kind != "role":
            raise t.refuse(
                f"CREATE {kind.upper()} is not written by pg_dumpall (it writes CREATE ROLE)"
            )
        role = t.role()
        if not t.at_end():
            raise t.refuse(
                "CREATE ROLE with options is not pg_dumpall's shape (it writes a bare CREATE ROLE, "
                "then ALTER ROLE ... WITH)"
            )
        return Verdict(CREATE_ROLE, name=role)
    if kind == "database" and not replace:
        return _create_database(t)
    if kind == "tablespace" and not replace:
        # Admitted as pg_dumpall's, never sent: it makes a directory on the database
        # server. The restore leaves tablespaces out (as pg_restore --no-tablespaces).
        return Verdict(TABLESPACE, name=t.name(), creates=True)
    if kind is None or kind not in _CREATE_KINDS:
        raise t.refuse(f"CREATE {(kind or '?').upper()} is not written by pg_dump")
    if replace and kind not in ("view", "trusted", "procedural", "language"):
        raise t.refuse(
            f"CREATE OR REPLACE {kind.upper()} (pg_dump writes it for views and languages "
            "only; it would replace an object the target already has)"
        )
    nxt = t.peek()
    after = t.peek(1)
    if (
        nxt is not None
        and nxt.kind in (WORD, QIDENT)
        and nxt.value in ("pg_catalog", "information_schema")
        and after is not None
        and after.value == "."
    ):
        raise t.refuse(f"an object created in {nxt.value} (pg_dump never dumps its objects)")
    if kind in ("trigger", "event") or (kind == "constraint" and nxt and nxt.value == "trigger"):
        return Verdict(DDL, trigger=True, event_trigger=kind == "event")
    if kind in ("unique",):
        t.word("index")
        kind = "index"
    if kind == "unlogged":
        kind = t.word("table", "sequence") or ""
        if not kind:
            raise t.refuse("CREATE UNLOGGED other than TABLE or SEQUENCE")
    if kind in ("trusted", "procedural"):
        t.word("procedural")
        if not t.word("language"):
            raise t.refuse("CREATE PROCEDURAL other than LANGUAGE")
        kind = "language"
    if kind == "language" and any(
        tok.kind == WORD and tok.value in ("handler", "inline", "validator") for tok in t.rest()
    ):
        # A language is a library's handler: TRUSTED here could call an untrusted one's
        # (plpython3u's) trusted. Languages come from CREATE EXTENSION.
        raise t.refuse(
            "a procedural language defined by its handler (languages come from extensions)"
        )
    if kind == "recursive":
        if not t.word("view"):
            raise t.refuse("CREATE RECURSIVE other than VIEW")
        kind = "view"
    if kind == "materialized":
        if not t.word("view"):
            raise t.refuse("CREATE MATERIALIZED other than VIEW")
        rest = [tok.value for tok in t.rest()[-4:]]
        if rest != ["with", "no", "data", ";"]:
            raise t.refuse(
                "a materialized view filled at creation (pg_dump writes WITH NO DATA and "
                "refreshes it after the data)"
            )
    languages: tuple[str, ...] = ()
    table: tuple[str, str] | None = None
    if kind in ("function", "procedure"):
        languages = _check_language(t)
    if kind in ("foreign", "server", "user"):
        _check_fdw_options(t)
    if kind == "table":
        _check_not_ctas(t)
    if kind == "subscription":
        _check_subscription(t)
    objects: tuple[tuple[str, str], ...] = ()
    obj_kind = _OBJECT_KIND.get(kind)
    if obj_kind is not None:
        if kind == "index":
            t.word("concurrently")
            t.words("if", "not", "exists")
            tok = t.peek()
            if tok is not None and tok.kind in (WORD, QIDENT) and tok.value != "on":
                objects = ((obj_kind, tok.value),)
        else:
            t.words("if", "not", "exists")
            schema, name = _qualified_at(t)
            if name:
                objects = ((obj_kind, f"{schema}.{name}" if schema else name),)
                if kind == "table" and schema:
                    table = (schema, name)
    return Verdict(DDL, objects=objects, languages=languages, table=table)


def _has_if_not_exists(t: _Cursor) -> bool:
    toks = t.rest()
    return any(
        toks[k].kind == WORD
        and toks[k].value == "if"
        and toks[k + 1].value == "not"
        and toks[k + 2].value == "exists"
        and toks[k].depth == 0
        for k in range(len(toks) - 2)
    )


def _qualified_at(t: _Cursor) -> tuple[str | None, str | None]:
    tok = t.peek()
    if tok is None or tok.kind not in (WORD, QIDENT):
        return None, None
    try:
        return t.qualified()
    except Refused:
        return None, None


def _create_database(t: _Cursor) -> Verdict:
    name = t.name()
    t.word("with")
    locales: list[str] = []
    template: str | None = None
    while not t.at_end():
        key = t.word()
        if key is None:
            raise t.refuse("CREATE DATABASE with an option pg_dump does not write")
        if key == "connection":
            t.word("limit")
        t.punct("=")
        t.punct("-")
        tok = t.peek()
        if tok is None or tok.kind not in (STRING, WORD, QIDENT, NUMBER):
            raise t.refuse("CREATE DATABASE option without a value")
        t.i += 1
        if key == "template":
            template = tok.value
        elif key in ("locale", "lc_collate", "lc_ctype"):
            locales.append(tok.value)
        elif key not in (
            "encoding", "locale_provider", "icu_locale", "icu_rules", "builtin_locale",
            "owner", "tablespace", "allow_connections", "connection", "is_template",
            "collation_version", "oid", "strategy",
        ):  # fmt: skip
            raise t.refuse(f"CREATE DATABASE option {key.upper()} is not written by pg_dump")
    if template != "template0":
        raise t.refuse(
            "CREATE DATABASE from a template other than template0 would copy another "
            "database of the target"
        )
    return Verdict(CREATE_DATABASE, name=name, locales=tuple(locales))


# Languages whose functions reach the server's files and programs (PostgreSQL marks them
# untrusted): by name here; the restore also asks the target's pg_language for any other.
UNTRUSTED_LANGUAGES = frozenset(
    {
        "c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu",
        "javau", "pljavau", "plsh", "plr",
    }
)  # fmt: skip


# PostgreSQL's reserved keywords (kwlist.h): never a language's name unquoted, so a word
# LANGUAGE followed by one is not the LANGUAGE clause (a column named language in a
# SQL-standard body: SELECT language FROM ...).
RESERVED_KEYWORDS = frozenset(
    {
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
        "case", "cast", "check", "collate", "column", "constraint", "create", "current_catalog",
        "current_date", "current_role", "current_time", "current_timestamp", "current_user",
        "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false",
        "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially",
        "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp",
        "not", "null", "offset", "on", "only", "or", "order", "placing", "primary",
        "references", "returning", "select", "session_user", "some", "symmetric", "system_user",
        "table", "then", "to", "trailing", "true", "union", "unique", "user", "using",
        "variadic", "when", "where", "window", "with",
    }
)  # fmt: skip


def _check_language(t: _Cursor) -> tuple[str, ...]:
    """Every name that may follow the LANGUAGE clause's keyword at the statement's top
    level: one of them is the function's language (the word may also stand elsewhere, as a
    SET clause's value or a column in a SQL-standard body), so each is judged; an untrusted
    one is refused here, the others are asked of the target (one it does not have would
    fail there). Not a clause: a qualified name (x.language, public.language) or a word
    followed by what cannot name a language (punctuation, a reserved keyword). None at
    all: a SQL-standard body (sql)."""
    toks = t.rest()
    found: list[str] = []
    for k, tok in enumerate(toks[:-1]):
        if tok.kind != WORD or tok.value != "language" or tok.depth != 0:
            continue
        lang = toks[k + 1]
        if (k and toks[k - 1].value == ".") or lang.value == ".":
            continue
        if lang.kind == DOLLAR:
            raise t.refuse("LANGUAGE as a dollar-quoted string (pg_dump writes a name)")
        if lang.kind not in (WORD, QIDENT, STRING):
            continue
        value = lang.value.lower()
        if lang.kind == WORD and value in RESERVED_KEYWORDS:
            continue
        if value in UNTRUSTED_LANGUAGES:
            what = (
                "binds a server library or built-in"
                if value in ("c", "internal")
                else "can run programs and read files on the database server"
            )
            raise t.refuse(
                f"a function in {value} (an untrusted language) {what}; pgdeck does not "
                "create such functions from a backup"
            )
        found.append(value)
    return tuple(found) or ("sql",)


# Calls that reach the database server's files, programs, other servers or its own
# running: never written by pg_dump in a default, a view, a check, an index or a body
# it can see (a SQL-standard one); refused wherever they appear outside a literal.
FORBIDDEN_CALLS = frozenset(
    {
        "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir", "pg_ls_logdir",
        "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
        "pg_ls_logicalmapdir", "pg_ls_replslotdir", "lo_import", "lo_export", "pg_file_write",
        "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls", "pg_logfile_rotate",
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_open",
        "dblink_send_query", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
        "pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_create_restore_point",
        "pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup",
        "pg_replication_origin_create", "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot", "pg_drop_replication_slot",
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "ts_rewrite",
        "ts_stat", "set_config", "pg_replication_slot_advance", "pg_logical_slot_get_changes",
        "pg_logical_slot_peek_changes", "pg_logical_slot_get_binary_changes",
        "pg_logical_slot_peek_binary_changes", "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot", "pg_hba_file_rules", "pg_ident_file_mappings",
        "pg_file_settings", "pg_show_all_file_settings", "pg_get_wal_records_info",
        "pg_get_wal_record_info", "pg_get_wal_stats", "pg_get_wal_block_info",
        "pg_current_logfile", "pg_get_backend_memory_contexts", "pg_log_backend_memory_contexts",
        # Large objects written or removed from an expression (pg_dump writes its own
        # large-object calls as top-level SELECTs, judged by shape): a CHECK or a default
        # could change one of the target's.
        "lo_unlink", "lo_put", "lo_truncate", "lo_truncate64", "lowrite", "lo_open",
        "lo_from_bytea", "lo_creat", "lo_create",
        # Replication origins are the cluster's, whatever database the call runs in.
        "pg_replication_origin_drop", "pg_replication_origin_advance",
        "pg_replication_origin_session_setup", "pg_replication_origin_session_reset",
        "pg_replication_origin_xact_setup", "pg_replication_origin_xact_reset",
        "pg_wal_replay_pause", "pg_wal_replay_resume",
    }
)  # fmt: skip


def _check_calls(stmt: Statement) -> None:
    """Any name (quoted or not) of such a function outside a literal: a call, an
    operator's or cast's function, an aggregate's SFUNC alike."""
    for tok in stmt.tokens:
        if tok.kind in (WORD, QIDENT) and tok.value in FORBIDDEN_CALLS:
            raise Refused(
                stmt.line,
                f"a use of {tok.value}, which reaches the database server's files, "
                f"programs or processes: {_excerpt(stmt)}",
            )


def _check_fdw_options(t: _Cursor) -> None:
    toks = t.rest()
    for k, tok in enumerate(toks[:-1]):
        if tok.kind in (WORD, QIDENT) and tok.value.lower() == "program" and tok.depth >= 1:
            nxt = toks[k + 1]
            if nxt.kind in (STRING, DOLLAR):
                raise t.refuse("a foreign table option that runs a program on the database server")


def _check_not_ctas(t: _Cursor) -> None:
    for tok in t.rest():
        if tok.depth == 0 and tok.kind == WORD and tok.value in ("as", "execute"):
            raise t.refuse("CREATE TABLE ... AS runs a query; pg_dump never writes it")


def _check_subscription(t: _Cursor) -> None:
    toks = t.rest()
    for k in range(len(toks) - 2):
        a, b, c = toks[k], toks[k + 1], toks[k + 2]
        if (
            a.kind in (WORD, QIDENT)
            and a.value.lower() == "connect"
            and b.value == "="
            and c.value.lower() in ("false", "off", "0")
        ):
            return
    raise t.refuse("a subscription that connects at creation (pg_dump writes connect = false)")


def _alter(t: _Cursor) -> Verdict:
    rest = [tok.value if tok.kind == WORD and tok.depth == 0 else "" for tok in t.rest()]
    for k in range(len(rest) - 1):
        if rest[k : k + 3] == ["all", "in", "tablespace"] or rest[k : k + 2] == [
            "set",
            "tablespace",
        ]:
            # pg_dump places objects with SET default_tablespace; ALL IN TABLESPACE moves
            # every object of a tablespace, the target's own too.
            raise t.refuse("ALTER ... SET TABLESPACE / ALL IN TABLESPACE (pg_dump never writes it)")
    kind = t.word()
    if kind == "event" and t.word("trigger"):
        return Verdict(DDL, event_trigger=True)
    if kind == "system":
        raise t.refuse("ALTER SYSTEM changes the server's configuration")
    if kind == "user" and t.word("mapping"):
        _check_fdw_options(t)
        return Verdict(DDL)
    if kind in ("user", "group"):
        raise t.refuse(f"ALTER {kind.upper()} is not written by pg_dumpall (it writes ALTER ROLE)")
    if kind == "role":
        return _alter_role(t)
    if kind == "database":
        name = t.name()
        if t.word("set"):
            setting = _stored_setting(t)
            return Verdict(DATABASE, name=name, setting=setting)
        nxt = t.peek()
        if (
            nxt is None
            or nxt.kind != WORD
            or nxt.value
            not in (
                "owner",
                "with",
                "is_template",
                "allow_connections",
                "connection",
                "reset",
                "refresh",
            )
        ):
            raise t.refuse("an ALTER DATABASE pg_dump does not write")
        return Verdict(DATABASE, name=name)
    if kind == "tablespace":
        name = t.name()
        nxt = t.peek()
        if nxt is None or nxt.kind != WORD or nxt.value not in ("owner", "set"):
            raise t.refuse("an ALTER TABLESPACE pg_dump does not write")
        return Verdict(TABLESPACE, name=name)
    if kind == "extension":
        raise t.refuse("ALTER EXTENSION is not written by pg_dump outside binary upgrades")
    if kind == "subscription":
        t.name()
        if not t.words("owner", "to"):
            raise t.refuse(
                "an ALTER SUBSCRIPTION other than OWNER TO (it could connect or enable it)"
            )
        return Verdict(DDL)
    if kind is None or kind not in _ALTER_KINDS:
        raise t.refuse(f"ALTER {(kind or '?').upper()} is not written by pg_dump")
    if kind in ("foreign", "server"):
        _check_fdw_options(t)
    constraints: list[tuple[str, str]] = []
    if kind == "table":
        toks = t.rest()
        for k in range(len(toks) - 3):
            a, b = toks[k], toks[k + 1]
            if a.kind == WORD and a.value == "add" and b.kind == WORD and b.value == "constraint":
                named, what = toks[k + 2], toks[k + 3]
                if named.kind in (WORD, QIDENT) and what.kind == WORD:
                    if what.value == "foreign":
                        constraints.append(("foreign key", named.value))
                    elif what.value in ("primary", "unique", "check", "exclude"):
                        constraints.append(("other", named.value))
    return Verdict(DDL, constraints=tuple(constraints))


def _alter_role(t: _Cursor) -> Verdict:
    role = t.role()
    if t.words("in", "database"):
        database = _one_name(t, "ALTER ROLE ... IN DATABASE")
        if not t.word("set"):
            raise t.refuse("ALTER ROLE ... IN DATABASE other than SET")
        setting = _stored_setting(t)
        return Verdict(ROLE_DB_SETTING, name=role, database=database, setting=setting)
    if t.word("set"):
        setting = _stored_setting(t)
        return Verdict(ROLE_SETTING, name=role, setting=setting)
    t.word("with")
    flags: list[str] = []
    limit: str | None = None
    until: str | None = None
    password: str | None = None
    saw_password = False
    while not t.at_end():
        tok = t.peek()
        if tok is None or tok.kind != WORD:
            raise t.refuse("an ALTER ROLE that is not pg_dumpall's shape")
        word = tok.value
        t.i += 1
        if word.upper() in _ROLE_FLAGS:
            flags.append(word.upper())
        elif word == "connection" and t.word("limit"):
            neg = t.punct("-")
            num = t.peek()
            if num is None or num.kind != NUMBER or not num.value.isdigit():
                raise t.refuse("CONNECTION LIMIT other than a whole number")
            t.i += 1
            limit = str(-int(num.value) if neg else int(num.value))
        elif word == "valid" and t.word("until"):
            until = t.literal_value()
        elif word in ("password", "encrypted", "unencrypted"):
            if word != "password" and not t.word("password"):
                raise t.refuse("ENCRYPTED without PASSWORD")
            val = t.peek()
            if val is None or not (
                val.kind == STRING or (val.kind == WORD and val.value == "null")
            ):
                raise t.refuse("PASSWORD without a value")
            t.i += 1
            saw_password = True
            password = (
                "PASSWORD NULL" if val.kind == WORD else "PASSWORD " + quote_literal(val.value)
            )
        else:
            raise t.refuse(f"ALTER ROLE option {word.upper()} is not written by pg_dumpall")
    options = RoleOptions(tuple(flags), limit, until, saw_password)
    return Verdict(ALTER_ROLE, name=role, options=options, password_clause=password)


def _stored_setting(t: _Cursor) -> str:
    """``name TO value`` / ``name = value`` attached to a role or database."""
    parts = [t.name()]
    while t.punct("."):
        parts.append(t.name())
    name = ".".join(parts).lower()
    if name in _FORBIDDEN_STORED:
        raise t.refuse(f"the setting {name} loads server code or changes who a session is")
    if not (t.punct("=") or t.word("to")):
        raise t.refuse("a setting without = or TO")
    while not t.at_end():
        tok = t.peek()
        if (
            tok is None
            or tok.kind not in (STRING, NUMBER, WORD, QIDENT)
            and not (tok.kind == PUNCT and tok.value in (",", "-"))
        ):
            raise t.refuse("a setting's value must be literals")
        t.i += 1
    return name


def _comment(t: _Cursor) -> Verdict:
    if not t.word("on"):
        raise t.refuse("COMMENT without ON")
    return _about(t, "COMMENT")


def _security(t: _Cursor) -> Verdict:
    if not t.word("label"):
        raise t.refuse("SECURITY other than SECURITY LABEL")
    if t.word("for"):
        t.name()
    if not t.word("on"):
        raise t.refuse("SECURITY LABEL without ON")
    return _about(t, "SECURITY LABEL")


def _about(t: _Cursor, what: str) -> Verdict:
    """What a COMMENT ON / SECURITY LABEL ON is about."""
    target = t.word()
    if target == "role":
        return Verdict(ROLE_COMMENT, name=t.role())
    if target == "database":
        return Verdict(DATABASE, name=_one_name(t, f"{what} ON DATABASE"))
    if target == "tablespace":
        return Verdict(TABLESPACE, name=t.name())
    if target in ("user", "group"):
        raise t.refuse(f"{what} ON {target.upper()} is not written by pg_dump")
    if target == "event" and t.word("trigger"):
        return Verdict(DDL, event_trigger=True)
    return Verdict(DDL)


def _grant(t: _Cursor) -> Verdict:
    return _grant_or_revoke(t, "GRANT")


def _revoke(t: _Cursor) -> Verdict:
    return _grant_or_revoke(t, "REVOKE")


def _grant_or_revoke(t: _Cursor, what: str) -> Verdict:
    toks = t.rest()
    on = next(
        (
            k
            for k, tok in enumerate(toks)
            if tok.kind == WORD and tok.value == "on" and tok.depth == 0
        ),
        None,
    )
    to = next(
        (
            k
            for k, tok in enumerate(toks)
            if tok.kind == WORD and tok.value in ("to", "from") and tok.depth == 0
        ),
        None,
    )
    if on is not None and (to is None or on < to):
        privileges = tuple(
            tok.value for tok in toks[:on] if tok.kind == WORD and tok.value not in ("grant",)
        )
        t.i += on + 1
        target = t.word()
        if target == "all":
            raise t.refuse(
                f"{what} ON ALL ... IN SCHEMA (pg_dump grants object by object; this one "
                "reaches every object of a schema, the target's own too)"
            )
        if target == "database":
            return Verdict(DATABASE, name=_one_name(t, f"{what} ON DATABASE"))
        if target == "tablespace":
            return Verdict(TABLESPACE, name=t.name())
        if target == "parameter":
            parameters = tuple(p.lower() for p in t.names())
            if not (t.word("to") or t.word("from")):
                raise t.refuse(f"{what} ON PARAMETER without TO/FROM")
            return Verdict(
                PARAMETER_GRANT,
                members=t.roles(public=True),
                privileges=privileges,
                parameters=parameters,
            )
        return Verdict(DDL)
    if what == "REVOKE":
        raise t.refuse("REVOKE of a role membership is not written by pg_dumpall")
    roles = t.roles()
    if not t.word("to"):
        raise t.refuse("GRANT of roles without TO")
    members = t.roles()
    # WITH ADMIN OPTION / WITH ADMIN|INHERIT|SET TRUE|FALSE, ... / GRANTED BY role
    while not t.at_end():
        tok = t.peek()
        if (
            tok is None
            or tok.kind not in (WORD, QIDENT)
            and not (tok.kind == PUNCT and tok.value == ",")
        ):
            raise t.refuse("a role GRANT that is not pg_dumpall's shape")
        t.i += 1
    return Verdict(ROLE_GRANT, roles=roles, members=members)


def _one_name(t: _Cursor, what: str) -> str:
    name = t.name()
    if t.punct_is(","):
        raise t.refuse(f"{what} with a list of databases (pg_dump names one)")
    return name


def _refresh(t: _Cursor) -> Verdict:
    if not t.words("materialized", "view"):
        raise t.refuse("REFRESH other than MATERIALIZED VIEW")
    t.qualified()
    t.end()
    return Verdict(DDL, refresh=True)


_HANDLERS = {
    "set": _set,
    "select": _select,
    "copy": _copy,
    "begin": _begin,
    "update": _update,
    "reset": _reset,
    "commit": _commit,
    "create": _create,
    "alter": _alter,
    "comment": _comment,
    "security": _security,
    "grant": _grant,
    "revoke": _revoke,
    "refresh": _refresh,
}
