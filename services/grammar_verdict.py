"""What the grammar says of a statement: ``Refused``, or a ``Verdict`` of one kind.

The kinds (``SESSION``, ``COPY``, ``CREATE_ROLE`` ...) are what the restore plans by;
``RoleOptions`` is an ``ALTER ROLE ... WITH`` taken apart, rendered again from its parts
only (without the privileged attributes unless the restore may grant them).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


# Attributes that reach past the role's own objects: all data (REPLICATION, BYPASSRLS),
# other roles and, before PostgreSQL 16, membership in pg_execute_server_program
# (CREATEROLE), everything (SUPERUSER).
PRIVILEGED_FLAGS = ("SUPERUSER", "CREATEROLE", "REPLICATION", "BYPASSRLS")


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


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
