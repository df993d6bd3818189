"""Judges of DDL: ``CREATE``, ``ALTER``, ``COMMENT``, ``SECURITY LABEL``, ``GRANT``,
``REVOKE`` and ``REFRESH MATERIALIZED VIEW`` of the object kinds pg_dump dumps.

Roles, databases, tablespaces and parameter grants get verdicts of their own kinds (the
restore plans them apart from the rest); what reaches the server's files or programs is
refused by the checks of ``services.grammar_checks``. ``HANDLERS`` maps each statement's
first word to its judge.
"""

from __future__ import annotations

from services.grammar_checks import (
    check_fdw_options,
    check_language,
    check_not_ctas,
    check_subscription,
)
from services.grammar_cursor import Cursor, one_name
from services.grammar_roles import alter_role, stored_setting
from services.grammar_verdict import (
    CREATE_DATABASE,
    CREATE_ROLE,
    DATABASE,
    DDL,
    PARAMETER_GRANT,
    ROLE_COMMENT,
    ROLE_GRANT,
    TABLESPACE,
    Refused,
    Verdict,
)
from services.sqllex import NUMBER, PUNCT, QIDENT, STRING, WORD

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


def _create(t: Cursor) -> Verdict:
    replace = t.words("or", "replace")
    kind = t.word()
    if kind != "extension" and _has_if_not_exists(t):
        # pg_dump writes IF NOT EXISTS for extensions only; elsewhere it would let the
        # backup "create" an object the target already has, then fill it.
        raise t.refuse("CREATE ... IF NOT EXISTS (pg_dump writes it for extensions only)")
    if kind == "user" and t.word("mapping"):
        check_fdw_options(t)
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
        languages = check_language(t)
    if kind in ("foreign", "server", "user"):
        check_fdw_options(t)
    if kind == "table":
        check_not_ctas(t)
    if kind == "subscription":
        check_subscription(t)
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


def _has_if_not_exists(t: Cursor) -> bool:
    toks = t.rest()
    return any(
        toks[k].kind == WORD
        and toks[k].value == "if"
        and toks[k + 1].value == "not"
        and toks[k + 2].value == "exists"
        and toks[k].depth == 0
        for k in range(len(toks) - 2)
    )


def _qualified_at(t: Cursor) -> tuple[str | None, str | None]:
    tok = t.peek()
    if tok is None or tok.kind not in (WORD, QIDENT):
        return None, None
    try:
        return t.qualified()
    except Refused:
        return None, None


def _create_database(t: Cursor) -> Verdict:
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


def _alter(t: Cursor) -> Verdict:
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
        check_fdw_options(t)
        return Verdict(DDL)
    if kind in ("user", "group"):
        raise t.refuse(f"ALTER {kind.upper()} is not written by pg_dumpall (it writes ALTER ROLE)")
    if kind == "role":
        return alter_role(t)
    if kind == "database":
        name = t.name()
        if t.word("set"):
            setting = stored_setting(t)
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
        check_fdw_options(t)
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


def _comment(t: Cursor) -> Verdict:
    if not t.word("on"):
        raise t.refuse("COMMENT without ON")
    return _about(t, "COMMENT")


def _security(t: Cursor) -> Verdict:
    if not t.word("label"):
        raise t.refuse("SECURITY other than SECURITY LABEL")
    if t.word("for"):
        t.name()
    if not t.word("on"):
        raise t.refuse("SECURITY LABEL without ON")
    return _about(t, "SECURITY LABEL")


def _about(t: Cursor, what: str) -> Verdict:
    """What a COMMENT ON / SECURITY LABEL ON is about."""
    target = t.word()
    if target == "role":
        return Verdict(ROLE_COMMENT, name=t.role())
    if target == "database":
        return Verdict(DATABASE, name=one_name(t, f"{what} ON DATABASE"))
    if target == "tablespace":
        return Verdict(TABLESPACE, name=t.name())
    if target in ("user", "group"):
        raise t.refuse(f"{what} ON {target.upper()} is not written by pg_dump")
    if target == "event" and t.word("trigger"):
        return Verdict(DDL, event_trigger=True)
    return Verdict(DDL)


def _grant(t: Cursor) -> Verdict:
    return _grant_or_revoke(t, "GRANT")


def _revoke(t: Cursor) -> Verdict:
    return _grant_or_revoke(t, "REVOKE")


def _grant_or_revoke(t: Cursor, what: str) -> Verdict:
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
            return Verdict(DATABASE, name=one_name(t, f"{what} ON DATABASE"))
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


def _refresh(t: Cursor) -> Verdict:
    if not t.words("materialized", "view"):
        raise t.refuse("REFRESH other than MATERIALIZED VIEW")
    t.qualified()
    t.end()
    return Verdict(DDL, refresh=True)


HANDLERS = {
    "create": _create,
    "alter": _alter,
    "comment": _comment,
    "security": _security,
    "grant": _grant,
    "revoke": _revoke,
    "refresh": _refresh,
}
