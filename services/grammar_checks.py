"""Checks across a statement for what reaches the database server's files and programs.

Functions in untrusted languages (C, ``internal``, plpython3u ...), calls of functions
that read files, run programs or reach other servers anywhere outside a literal, a
foreign table's ``program`` option, ``CREATE TABLE ... AS`` and a subscription that
connects at creation are refused wherever pg_dump's shapes would otherwise admit them.
"""

from __future__ import annotations

from services.grammar_cursor import Cursor
from services.grammar_verdict import Refused
from services.redact import excerpt
from services.sqllex import DOLLAR, QIDENT, STRING, WORD, Statement

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


def check_language(t: Cursor) -> tuple[str, ...]:
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


def check_calls(stmt: Statement) -> None:
    """Any name (quoted or not) of such a function outside a literal: a call, an
    operator's or cast's function, an aggregate's SFUNC alike."""
    for tok in stmt.tokens:
        if tok.kind in (WORD, QIDENT) and tok.value in FORBIDDEN_CALLS:
            raise Refused(
                stmt.line,
                f"a use of {tok.value}, which reaches the database server's files, "
                f"programs or processes: {excerpt(stmt)}",
            )


def check_fdw_options(t: Cursor) -> None:
    toks = t.rest()
    for k, tok in enumerate(toks[:-1]):
        if tok.kind in (WORD, QIDENT) and tok.value.lower() == "program" and tok.depth >= 1:
            nxt = toks[k + 1]
            if nxt.kind in (STRING, DOLLAR):
                raise t.refuse("a foreign table option that runs a program on the database server")


def check_not_ctas(t: Cursor) -> None:
    for tok in t.rest():
        if tok.depth == 0 and tok.kind == WORD and tok.value in ("as", "execute"):
            raise t.refuse("CREATE TABLE ... AS runs a query; pg_dump never writes it")


def check_subscription(t: Cursor) -> None:
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
