"""Judges of ``ALTER ROLE`` and of the settings stored on roles and databases.

``ALTER ROLE x WITH ...`` option by option (into ``RoleOptions``), ``ALTER ROLE x [IN
DATABASE y] SET ...``, and the ``name = value`` a role or database may store: never one
that loads server code or changes who a session is.
"""

from __future__ import annotations

from services.grammar_cursor import Cursor, one_name
from services.grammar_settings import FORBIDDEN_STORED
from services.grammar_verdict import (
    ALTER_ROLE,
    ROLE_DB_SETTING,
    ROLE_SETTING,
    RoleOptions,
    Verdict,
    quote_literal,
)
from services.sqllex import NUMBER, PUNCT, QIDENT, STRING, WORD

_ROLE_FLAGS = frozenset(
    {
        "SUPERUSER", "NOSUPERUSER", "CREATEDB", "NOCREATEDB", "CREATEROLE", "NOCREATEROLE",
        "INHERIT", "NOINHERIT", "LOGIN", "NOLOGIN", "REPLICATION", "NOREPLICATION",
        "BYPASSRLS", "NOBYPASSRLS",
    }
)  # fmt: skip


def alter_role(t: Cursor) -> Verdict:
    role = t.role()
    if t.words("in", "database"):
        database = one_name(t, "ALTER ROLE ... IN DATABASE")
        if not t.word("set"):
            raise t.refuse("ALTER ROLE ... IN DATABASE other than SET")
        setting = stored_setting(t)
        return Verdict(ROLE_DB_SETTING, name=role, database=database, setting=setting)
    if t.word("set"):
        setting = stored_setting(t)
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


def stored_setting(t: Cursor) -> str:
    """``name TO value`` / ``name = value`` attached to a role or database."""
    parts = [t.name()]
    while t.punct("."):
        parts.append(t.name())
    name = ".".join(parts).lower()
    if name in FORBIDDEN_STORED:
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
