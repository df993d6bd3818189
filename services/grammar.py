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

``judge`` is the one entry: it reads the statement's first word and hands it to the judge
of its kind (``grammar_session``: session, catalog calls, data; ``grammar_ddl``: DDL, with
``grammar_roles`` for ALTER ROLE and stored settings), then refuses the calls of
``grammar_checks`` anywhere in it. The verdicts are ``grammar_verdict``'s, the settings
and encodings ``grammar_settings``'s, the secrets hidden from messages ``redact``'s; the
names callers use are re-exported here.
"""

from __future__ import annotations

from services import grammar_ddl, grammar_session
from services.grammar_checks import check_calls
from services.grammar_cursor import Cursor
from services.grammar_session import copy_statement, large_objects_named
from services.grammar_settings import (
    FORBIDDEN_STORED,
    SAFE_ENCODINGS,
    codec_for,
    normalize_encoding,
)
from services.grammar_verdict import (
    ALTER_ROLE,
    CATALOG_CALL,
    COPY,
    CREATE_DATABASE,
    CREATE_ROLE,
    DATABASE,
    DDL,
    GLOBAL_KINDS,
    PARAMETER_GRANT,
    PRIVILEGED_FLAGS,
    ROLE_COMMENT,
    ROLE_DB_SETTING,
    ROLE_GRANT,
    ROLE_KINDS,
    ROLE_SETTING,
    SESSION,
    TABLESPACE,
    Refused,
    RoleOptions,
    Verdict,
    quote_ident,
)
from services.redact import excerpt, mask_literals, redact
from services.sqllex import Statement

__all__ = [
    "ALTER_ROLE", "CATALOG_CALL", "COPY", "CREATE_DATABASE", "CREATE_ROLE", "DATABASE", "DDL",
    "FORBIDDEN_STORED", "GLOBAL_KINDS", "PARAMETER_GRANT", "PRIVILEGED_FLAGS", "ROLE_COMMENT",
    "ROLE_DB_SETTING", "ROLE_GRANT", "ROLE_KINDS", "ROLE_SETTING", "SAFE_ENCODINGS", "SESSION",
    "TABLESPACE", "Refused", "RoleOptions", "Verdict", "codec_for", "copy_statement", "excerpt",
    "judge", "large_objects_named", "mask_literals", "normalize_encoding", "quote_ident",
    "redact",
]  # fmt: skip


def judge(stmt: Statement) -> Verdict:
    """The verdict on one statement, or ``Refused`` naming why."""
    t = Cursor(stmt)
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
        check_calls(stmt)
    return verdict


_HANDLERS = {**grammar_session.HANDLERS, **grammar_ddl.HANDLERS}
