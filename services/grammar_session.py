"""Judges of the statements that are not DDL: the session, catalog calls, data.

``SET``/``RESET``/``BEGIN``/``COMMIT`` as pg_dump writes them, the few
``SELECT pg_catalog.<f>(literals)`` calls it makes (``set_config`` of ``search_path``,
``setval``, large objects), ``COPY ... FROM stdin`` and pg_dumpall 10's ``UPDATE`` that
marks a template database. ``HANDLERS`` maps each statement's first word to its judge.
"""

from __future__ import annotations

from services.grammar_cursor import Cursor
from services.grammar_settings import SAFE_ENCODINGS, SESSION_SETTINGS, normalize_encoding
from services.grammar_verdict import CATALOG_CALL, COPY, DATABASE, SESSION, Verdict, quote_ident
from services.sqllex import NUMBER, PUNCT, STRING, WORD, Statement, Token

_CATALOG_CALLS = {
    # function -> argument kinds
    "setval": ((STRING,), (NUMBER,), (WORD,)),
    "lo_create": ((STRING, NUMBER),),
    "lo_open": ((STRING, NUMBER), (NUMBER,)),
    "lowrite": ((NUMBER,), (STRING,)),
    "lo_close": ((NUMBER,),),
}


def _set(t: Cursor) -> Verdict:
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
    if name not in SESSION_SETTINGS:
        raise t.refuse(f"SET {name} is not a setting pg_dump writes")
    if not (t.punct("=") or t.word("to")):
        raise t.refuse("SET without = or TO")
    allowed = SESSION_SETTINGS[name]
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


def _select(t: Cursor) -> Verdict:
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


def _oid(t: Cursor, text: str) -> int:
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


def _call_args(t: Cursor) -> list[Token]:
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


def _copy(t: Cursor) -> Verdict:
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


def _reset(t: Cursor) -> Verdict:
    if not t.words("session", "authorization"):
        raise t.refuse("RESET other than RESET SESSION AUTHORIZATION")
    t.end()
    return Verdict(SESSION, name="session_authorization")


def _update(t: Cursor) -> Verdict:
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


def _begin(t: Cursor) -> Verdict:
    t.end()
    return Verdict(SESSION, name="begin")


def _commit(t: Cursor) -> Verdict:
    t.end()
    return Verdict(SESSION, name="commit")


HANDLERS = {
    "set": _set,
    "select": _select,
    "copy": _copy,
    "begin": _begin,
    "update": _update,
    "reset": _reset,
    "commit": _commit,
}
