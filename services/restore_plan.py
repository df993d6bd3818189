"""What a restore writes: the chosen databases (perhaps renamed) and the chosen roles.

``RestoreFilter`` sits between the dump scanner and psql. It drops the sections of
databases not chosen, renames a database where asked (``--database OLD:NEW``), treats
the Roles section as ``--roles`` says, and refuses, before a single statement of a
database is written, to create a database that already exists on the target or asks
for a locale the target lacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.dump import _IDENT, unquote_ident
from services.errors import PgdeckError, UsageError

if TYPE_CHECKING:
    from services.dump import DumpScanner

ROLE_MODES = ("all", "no-passwords", "skip")
TEMPLATE_DBS = ("template0", "template1")

_SECTION = re.compile(r'^-- Database "(.*)" dump$')
_PASSWORD = re.compile(r" PASSWORD '(?:[^']|'')*'")
_ROLE_STMT = re.compile(
    r"^(CREATE ROLE|ALTER ROLE|GRANT |REVOKE |COMMENT ON ROLE|SECURITY LABEL FOR \S+ ON ROLE)"
)
_DB_STMT = re.compile(
    rf"^(?P<head>CREATE DATABASE |ALTER DATABASE |COMMENT ON DATABASE |SECURITY LABEL FOR \S+ ON DATABASE )"
    rf"(?P<name>{_IDENT})(?P<rest>.*)$"
)
_ROLE_IN_DB = re.compile(
    rf"^(?P<head>ALTER ROLE {_IDENT} IN DATABASE )(?P<name>{_IDENT})(?P<rest> .*)$"
)
# Objects Spilo creates on every operator cluster: restored as idempotent statements, so
# that psql can run with ON_ERROR_STOP and any error left is a real one.
_IDEMPOTENT = [
    (
        re.compile(r"^CREATE SCHEMA (metric_helpers|user_management|public);$"),
        r"CREATE SCHEMA IF NOT EXISTS \1;",
    ),
    (re.compile(r"^CREATE EXTENSION (?!IF NOT EXISTS)"), "CREATE EXTENSION IF NOT EXISTS "),
    (
        re.compile(r"^CREATE FUNCTION ((?:metric_helpers|user_management)\.)"),
        r"CREATE OR REPLACE FUNCTION \1",
    ),
    (
        re.compile(r"^CREATE PROCEDURE ((?:metric_helpers|user_management)\.)"),
        r"CREATE OR REPLACE PROCEDURE \1",
    ),
    (
        re.compile(r"^CREATE VIEW ((?:metric_helpers|user_management)\.)"),
        r"CREATE OR REPLACE VIEW \1",
    ),
    (
        re.compile(r"^CREATE TABLE ((?:metric_helpers|user_management)\.)"),
        r"CREATE TABLE IF NOT EXISTS \1",
    ),
    (
        re.compile(r"^CREATE SEQUENCE ((?:metric_helpers|user_management)\.)"),
        r"CREATE SEQUENCE IF NOT EXISTS \1",
    ),
]
_DB_GRANT = re.compile(
    rf"^(?P<head>(?:GRANT|REVOKE) .* ON DATABASE )(?P<name>{_IDENT})(?P<rest> (?:TO|FROM) .*)$"
)
_ROLE_NAME = re.compile(rf"^(?:CREATE|ALTER) ROLE ({_IDENT})")
_LOCALE = re.compile(r"\b(LOCALE|LC_COLLATE|LC_CTYPE) = '((?:[^']|'')*)'")


class RestoreRefused(PgdeckError):
    """The target cannot take this restore as asked; nothing of the database was written."""


def quote_ident(name: str) -> str:
    """Always quoted: a lowercase name can still be a reserved word ("order", "user")."""
    return '"' + name.replace('"', '""') + '"'


def normalize_locale(name: str) -> str:
    """glibc's spelling rules: the codeset is case- and dash-insensitive (UTF-8 = utf8),
    the language and territory are not."""
    base, dot, rest = name.partition(".")
    if not dot:
        return name
    codeset, at, modifier = rest.partition("@")
    return f"{base}.{codeset.lower().replace('-', '')}{at}{modifier}"


def connect_line(name: str) -> str:
    """A ``\\connect`` line for any database name, in pg_dumpall's own quoted form."""
    if re.fullmatch(r"[A-Za-z0-9_]+", name):
        return f"\\connect {name}"
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"\\connect -reuse-previous=on \"dbname='{escaped}'\""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which databases, under which names, and what of the roles."""

    databases: dict[str, str] = field(default_factory=dict)  # dump name -> target name; empty = all
    roles: str = "no-passwords"

    @classmethod
    def parse(cls, database_args: Iterable[str] = (), roles: str | None = None) -> Scope:
        mapping: dict[str, str] = {}
        for arg in database_args:
            old, sep, new = arg.partition(":")
            if not old or (sep and not new):
                raise UsageError(f"--database {arg!r}: expected NAME or OLD:NEW")
            if new in TEMPLATE_DBS or old == "template0":
                raise UsageError(
                    f"--database {arg!r}: template databases cannot be restored under a new name"
                )
            mapping[old] = new or old
        targets = list(mapping.values())
        if len(set(targets)) != len(targets):
            raise UsageError("--database: two databases would restore under the same name")
        mode = roles or "no-passwords"
        if mode not in ROLE_MODES:
            raise UsageError(f"--roles {mode!r}: expected one of {', '.join(ROLE_MODES)}")
        return cls(databases=mapping, roles=mode)

    def chosen(self, name: str) -> bool:
        return not self.databases or name in self.databases

    def target_name(self, name: str) -> str:
        return self.databases.get(name, name)

    def describe(self) -> str:
        """For people: "shop, billing as billing_restored" or "the whole cluster"."""
        chosen = (f"{k} as {v}" if k != v else k for k, v in self.databases.items())
        return ", ".join(chosen) or "the whole cluster"


@dataclass
class TargetFacts:
    """What the preflight learned of the target, for decisions made while streaming."""

    databases: set[str]
    roles: set[str]
    locales: set[str]  # collation names and collcollate values known to the target
    psql_knows_restrict: bool = True
    drop_existing: bool = False


class RestoreFilter:
    """The line filter fed to ``DumpScanner`` during a restore."""

    def __init__(self, scope: Scope, target: TargetFacts) -> None:
        self.scope = scope
        self.target = target
        self.keep_data = True
        self.section: str | None = None  # dump name of the database section, None = header
        self.created: list[str] = []  # target databases this restore creates
        self.dropped: list[str] = []
        self.restored: list[str] = []  # target databases written to, in order
        self.skipped_roles = 0
        self.made_idempotent = 0
        self.existing_roles: set[str] = set()
        self.matched: set[str] = set()  # dump databases that were chosen and met
        self.stripped_passwords = 0
        self._need_create: str | None = None  # a renamed postgres/template1 needs its CREATE

    # The dump's meta-commands (\connect, \restrict) and a few statements are rewritten;
    # everything else goes through untouched.
    def line(self, line: str, scanner: DumpScanner) -> str | None:
        m = _SECTION.match(line)
        if m:
            self._enter(m[1])
            return line if self.keep_data else None
        if not self.keep_data:
            return None
        if line.startswith("\\restrict") or line.startswith("\\unrestrict"):
            return line if self.target.psql_knows_restrict else None
        if self.section is None:
            return self._header_line(line)
        old = self.section
        new = self.scope.target_name(old)
        if line.startswith("CREATE DATABASE "):
            return self._create_database(line, old, new)
        if line.startswith("\\connect"):
            prefix = ""
            if self._need_create:
                name = quote_ident(self._need_create)
                if self._need_create in self.target.databases:
                    prefix = f"DROP DATABASE {name} WITH (FORCE);\n"
                    self.dropped.append(self._need_create)
                prefix += f"CREATE DATABASE {name} WITH TEMPLATE = template0;\n"
                self.created.append(self._need_create)
                self._need_create = None
            if new not in self.restored:
                self.restored.append(new)
            return prefix + connect_line(new)
        for pattern, replacement in _IDEMPOTENT:
            if line.startswith("CREATE ") and pattern.match(line):
                self.made_idempotent += 1
                return pattern.sub(replacement, line, count=1)
        if new != old:
            for pattern in (_DB_STMT, _DB_GRANT, _ROLE_IN_DB):
                dm = pattern.match(line)
                if dm and unquote_ident(dm["name"]) == old:
                    return f"{dm['head']}{quote_ident(new)}{dm['rest']}"
        return line

    def missing(self) -> list[str]:
        """Databases asked for with --database that the dump does not hold."""
        return sorted(set(self.scope.databases) - self.matched)

    def _enter(self, name: str) -> None:
        self.section = name
        self.keep_data = self.scope.chosen(name) and name != "template0"
        self._need_create = None
        if not self.keep_data:
            return
        self.matched.add(name)
        new = self.scope.target_name(name)
        if new != name and name in ("postgres", "template1"):
            # These sections carry no CREATE DATABASE (the database always exists).
            self.check_database(name, created=False)
            self._need_create = new

    def _header_line(self, line: str) -> str | None:
        if not _ROLE_STMT.match(line):
            return line
        mode = self.scope.roles
        if mode == "skip":
            self.skipped_roles += 1
            return None
        m = _ROLE_NAME.match(line)
        if (
            mode == "all"
            and m
            and line.startswith("CREATE ROLE")
            and unquote_ident(m[1]) in self.target.roles
        ):
            # It exists: CREATE would fail; the ALTER ROLE after it sets what the dump says.
            self.existing_roles.add(unquote_ident(m[1]))
            return None
        if mode == "no-passwords":
            # Roles the target already has are the target's (on an operator cluster, the
            # operator's, with passwords in Secrets): left exactly as they are. Missing
            # roles are created, without the dump's passwords.
            m = _ROLE_NAME.match(line)
            if m and unquote_ident(m[1]) in self.target.roles:
                self.existing_roles.add(unquote_ident(m[1]))
                return None
            if line.startswith("ALTER ROLE") and " PASSWORD '" in line:
                self.stripped_passwords += 1
                return _PASSWORD.sub("", line)
        return line

    def _create_database(self, line: str, old: str, new: str) -> str:
        m = _DB_STMT.match(line)
        rest = m["rest"] if m else line[len("CREATE DATABASE ") :]
        locales = [locale.replace("''", "'") for _, locale in _LOCALE.findall(rest)]
        self.check_database(old, created=True, locales=locales)
        prefix = ""
        if new in self.target.databases:
            prefix = f"DROP DATABASE {quote_ident(new)} WITH (FORCE);\n"
            self.dropped.append(new)
        self.created.append(new)
        if new == old:
            return prefix + line
        return f"{prefix}CREATE DATABASE {quote_ident(new)}{rest}"

    def check_database(self, old: str, *, created: bool, locales: Iterable[str] = ()) -> None:
        """Refuse, before anything of it is written, a database the target cannot take.

        Called for each section as it arrives, and for every section at once in the
        preflight when the dump was verified first."""
        if not self.scope.chosen(old) or old == "template0":
            return
        new = self.scope.target_name(old)
        exists = new in self.target.databases and not self.target.drop_existing
        if (created or new != old) and exists:
            raise RestoreRefused(
                f"database {new!r} already exists on the target",
                f"pass --drop-existing to replace it, or --database {old}:NEW to restore beside it",
            )
        known = {normalize_locale(x) for x in self.target.locales}
        for value in locales:
            if normalize_locale(value) not in known:
                raise RestoreRefused(
                    f"database {old!r} asks for locale {value!r}, which the target does not have",
                    "install the locale on the target's host (and restart it) or restore into another target",
                )
