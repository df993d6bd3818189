"""What a restore sends, and where: the chosen databases (perhaps renamed) and the roles.

``RestoreFilter`` turns each judged statement of the dump (``services.dump``) into what is
sent to the target, and to which session: the maintenance session for roles and
database-level statements, the session of the database being restored for the rest. It
drops the sections of databases not chosen, renames a database where asked (``--database
OLD:NEW``), treats roles as ``--roles`` says, and refuses, before a single statement of a
database is written, to create a database that already exists on the target or asks for a
locale the target lacks.

Roles, by mode:
- ``no-passwords`` (default): roles the target already has are left exactly as they are
  (their attributes, passwords, settings, comments and memberships); roles the dump creates
  get no password and no SUPERUSER; a membership is granted only between roles this
  restore created, never of a superuser role or a role that reaches the server's files.
- ``all``: the dump's roles with their passwords, except the role pgdeck connects as and
  the target's superusers, which are never altered.
- ``skip``: no role statement at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services import grammar
from services.errors import PgdeckError, UsageError
from services.grammar import Verdict, quote_ident
from services.sqllex import QIDENT, WORD, Statement, Token

ROLE_MODES = ("all", "no-passwords", "skip")
# Databases every target has: a whole-cluster restore leaves them alone (their sections in
# the backup restore only when named, --database postgres or postgres:NEW).
TARGETS_OWN = ("postgres", "template1")
TEMPLATE_DBS = ("template0", "template1")
# Predefined roles whose members read or write the server's files or run its programs.
SERVER_ACCESS_ROLES = frozenset(
    {"pg_read_server_files", "pg_write_server_files", "pg_execute_server_program"}
)
# Objects Spilo creates on every operator cluster: restored as idempotent statements, so
# that the first real error stops the restore and an expected one does not.
SPILO_SCHEMAS = ("metric_helpers", "user_management")


class RestoreRefused(PgdeckError):
    """The target cannot take this restore as asked; nothing of the database was written."""


def normalize_locale(name: str) -> str:
    """glibc's spelling rules: the codeset is case- and dash-insensitive (UTF-8 = utf8),
    the language and territory are not."""
    base, dot, rest = name.partition(".")
    if not dot:
        return name
    codeset, at, modifier = rest.partition("@")
    return f"{base}.{codeset.lower().replace('-', '')}{at}{modifier}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which databases, under which names, and what of the roles."""

    databases: dict[str, str] = field(default_factory=dict)  # dump name -> target name; empty = all
    roles: str = "no-passwords"
    # With the whole cluster: the target's own databases restored too, beside them under
    # new names (a restore test restores the backup's postgres as pgdeck_postgres).
    extra: dict[str, str] = field(default_factory=dict)

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
        """Restored by this scope: the whole cluster is every database the backup creates;
        the target's own postgres and template1 are written to only when named."""
        if not self.databases:
            return (name not in TARGETS_OWN and name != "template0") or name in self.extra
        return name in self.databases

    def target_name(self, name: str) -> str:
        if not self.databases:
            return self.extra.get(name, name)
        return self.databases.get(name, name)

    @property
    def whole_cluster(self) -> bool:
        return not self.databases

    def describe(self) -> str:
        """For people: "shop, billing as billing_restored" or "the whole cluster"."""
        chosen = (f"{k} as {v}" if k != v else k for k, v in self.databases.items())
        if self.databases:
            return ", ".join(chosen)
        if self.extra:
            beside = ", ".join(f"{k} as {v}" for k, v in self.extra.items())
            return f"the whole cluster, the backup's {beside}"
        return "the whole cluster (but the target's own postgres and template1)"


@dataclass
class TargetFacts:
    """What the preflight learned of the target, for decisions made while streaming."""

    databases: set[str]
    roles: set[str]
    locales: set[str]  # collation names and collcollate values known to the target
    drop_existing: bool = False
    superusers: set[str] = field(default_factory=set)
    current_user: str = ""


@dataclass(frozen=True, slots=True)
class Send:
    """One statement for the target: on the maintenance session (roles, database-level
    statements) or on the session of the database being restored."""

    sql: bytes
    maintenance: bool = False
    copy: bool = False


class RestoreFilter:
    """Decides, statement by statement, what of the dump reaches the target."""

    def __init__(self, scope: Scope, target: TargetFacts) -> None:
        self.scope = scope
        self.target = target
        self.section: str | None = None  # dump database whose session is current
        self.keep = False  # whether the current section's statements are sent
        self.created: list[str] = []  # target databases this restore creates
        self.replaced: list[str] = []  # ... of them, those that existed and were dropped first
        self.restored: list[str] = []  # target databases written to, in order
        self.finished: list[str] = []  # target databases whose section was read to its end
        self.matched: set[str] = set()  # dump databases that were chosen and met
        self.made_idempotent = 0
        self.kept_spilo = 0  # statements about Spilo's objects left out (the target's own)
        self.preexisting = False  # the current section restores into a database the target had
        # There: the objects of Spilo's schemas the target has, (schema, name).
        self.spilo_objects: set[tuple[str, str]] = set()
        # The session's client_encoding as a codec: what pgdeck writes into a statement (a
        # new name, a rebuilt ALTER ROLE) is written in the characters the session reads.
        self.codec = "utf-8"
        self.existing_roles: set[str] = set()  # roles of the target the dump names (untouched)
        self.created_roles: list[str] = []
        self.stripped_passwords = 0
        self.demoted: list[str] = []  # roles created without their privileged attributes
        self.skipped_roles = 0
        self.skipped_grants: list[str] = []
        self.tablespaces_left_out: list[str] = []
        self.left_alone_databases: list[str] = []  # the target's own, whose settings were kept
        self._dump_superusers: set[str] = set()

    # --- the dump's structure ---------------------------------------------------------------
    def connect(self, dump_db: str) -> tuple[list[Send], str | None]:
        """A ``\\connect``: what to send first, and the target database to switch to
        (None: this section is not restored)."""
        if self.keep and self.section is not None and self.section != dump_db:
            self._finish_section()
        self.section = dump_db
        self.keep = self.scope.chosen(dump_db) and dump_db != "template0"
        self.preexisting = False
        if not self.keep:
            return [], None
        self.matched.add(dump_db)
        new = self.scope.target_name(dump_db)
        sends: list[Send] = []
        if new != dump_db and dump_db in ("postgres", "template1") and new not in self.created:
            # These sections carry no CREATE DATABASE (the database always exists).
            self.check_database(dump_db, created=False)
            sends = self._create(
                new, f"CREATE DATABASE {quote_ident(new)} WITH TEMPLATE = template0;"
            )
        if new not in self.restored:
            self.restored.append(new)
        self.preexisting = new in self.target.databases and new not in self.created
        return sends, new

    def end(self) -> None:
        """The dump was read to its end."""
        if self.keep and self.section is not None:
            self._finish_section()

    def _finish_section(self) -> None:
        new = self.scope.target_name(self.section or "")
        if new not in self.finished:
            self.finished.append(new)

    def missing(self) -> list[str]:
        """Databases asked for with --database that the dump does not hold."""
        return sorted(set(self.scope.databases) - self.matched)

    @property
    def incomplete(self) -> list[str]:
        """Databases this restore created whose section it did not read to the end."""
        return [d for d in self.created if d not in self.finished]

    # --- statements -----------------------------------------------------------------------------
    def statement(self, stmt: Statement, verdict: Verdict, section: str | None) -> list[Send]:
        kind = verdict.kind
        if kind in grammar.ROLE_KINDS:
            return self._role(stmt, verdict)
        if kind == grammar.CREATE_DATABASE:
            return self._create_database(stmt, verdict)
        if kind == grammar.DATABASE:
            name = verdict.name or ""
            if self._targets_own(name) or not self.scope.chosen(name) or name == "template0":
                return []
            if verdict.is_template is not None:  # pg_dumpall 10's UPDATE, said as ALTER
                flag = "true" if verdict.is_template else "false"
                new = quote_ident(self.scope.target_name(name))
                return [
                    Send(f"ALTER DATABASE {new} IS_TEMPLATE = {flag};".encode(), maintenance=True)
                ]
            return [Send(self._renamed(stmt, name), maintenance=True)]
        if kind == grammar.TABLESPACE:
            # Never created: a tablespace is a directory on the database server. Its
            # objects go to the default tablespace (as pg_restore --no-tablespaces).
            if verdict.creates and verdict.name and verdict.name not in self.tablespaces_left_out:
                self.tablespaces_left_out.append(verdict.name)
            return []
        if kind == grammar.PARAMETER_GRANT:
            return self._parameter_grant(stmt, verdict)
        if kind == grammar.SESSION and verdict.name == "default_tablespace":
            text = b"SET default_tablespace = '';"
            if section is None:
                return [Send(text, maintenance=True)]
            return [Send(text)] if self.keep else []
        if section is None:  # globals: session settings only reach here
            return [Send(stmt.text, maintenance=True)] if kind == grammar.SESSION else []
        if not self.keep:
            return []
        if kind == grammar.DDL:
            rewritten = self._idempotent(stmt)
            return [Send(rewritten)] if rewritten is not None else []
        if kind == grammar.COPY:
            # Built from the names the lexer read in the section's encoding: sent in it too.
            return [Send(self._enc(grammar.copy_statement(verdict).decode()), copy=True)]
        return [Send(stmt.text)]

    def _targets_own(self, name: str) -> bool:
        """A database-level statement about the target's own postgres or template1 (not
        restored under a new name): left out, they are the target's, not the dump's."""
        if name not in TARGETS_OWN:
            return False
        if self.scope.whole_cluster or self.scope.databases.get(name) == name:
            if name not in self.left_alone_databases:
                self.left_alone_databases.append(name)
            return True
        return False

    def _parameter_grant(self, stmt: Statement, v: Verdict) -> list[Send]:
        """GRANT SET / ALTER SYSTEM ON PARAMETER (15+): what a role may configure."""
        if self.scope.roles == "skip":
            self.skipped_roles += 1
            return []
        why = None
        for member in v.members:
            if member.lower() == "public":
                why = "PUBLIC is every role of the target"
            elif not self._may_alter(member):
                why = f"{member} is a role of the target"
        if self.scope.roles == "no-passwords":
            if "alter" in v.privileges or "all" in v.privileges:
                why = why or "ALTER SYSTEM changes the server's configuration"
            risky = sorted(set(v.parameters) & grammar.FORBIDDEN_STORED)
            if risky:
                why = why or f"{', '.join(risky)} loads server code or changes who a session is"
        if why is not None:
            self.skipped_grants.append(f"{grammar.excerpt(stmt)} ({why})")
            return []
        return [Send(stmt.text, maintenance=True)]

    def _create_database(self, stmt: Statement, verdict: Verdict) -> list[Send]:
        old = verdict.name or ""
        if not self.scope.chosen(old) or old == "template0":
            return []
        self.check_database(old, created=True, locales=verdict.locales)
        new = self.scope.target_name(old)
        text = _without_tablespace(stmt, self._renamed(stmt, old))
        return self._create(new, self._dec(text))

    def _create(self, new: str, create_sql: str) -> list[Send]:
        sends: list[Send] = []
        if new in self.target.databases:
            sends.append(
                Send(self._enc(f"DROP DATABASE {quote_ident(new)} WITH (FORCE);"), maintenance=True)
            )
            self.replaced.append(new)
        sends.append(Send(self._enc(create_sql), maintenance=True))
        self.created.append(new)
        return sends

    def _renamed(self, stmt: Statement, old: str) -> bytes:
        """The statement with the database ``old`` named by its new name, if renamed."""
        new = self.scope.target_name(old)
        if new == old:
            return stmt.text
        tok = _name_token(stmt, old)
        if tok is None:
            raise RestoreRefused(
                f"line {stmt.line}: cannot rename database {old!r} in this statement"
            )
        return _replace(stmt.text, tok, self._enc(quote_ident(new)))

    def _idempotent(self, stmt: Statement) -> bytes | None:
        """What an operator cluster already has: a schema or an extension is created only
        if missing; in a database the target had (its postgres or template1, restored in
        place), Spilo's own objects are left as the target has them (None: not sent), never
        replaced by the backup's."""
        w = stmt.words(4)
        toks = stmt.tokens
        if self.preexisting and first_qualified(toks) in self.spilo_objects:
            self.kept_spilo += 1
            return None
        if w[0] != "create":
            return stmt.text
        if w[1] == "extension" and w[2] != "if":
            self.made_idempotent += 1
            return _insert_after(stmt.text, toks[1], " IF NOT EXISTS")
        if w[1] == "schema" and len(toks) == 4 and toks[2].value in (*SPILO_SCHEMAS, "public"):
            self.made_idempotent += 1
            return _insert_after(stmt.text, toks[1], " IF NOT EXISTS")
        return stmt.text

    def _enc(self, text: str) -> bytes:
        try:
            return text.encode(self.codec, "surrogateescape")
        except UnicodeEncodeError:
            raise RestoreRefused(
                f"{text[:80]!r} cannot be written in the backup's client encoding ({self.codec})",
                "choose a name made of characters that encoding has",
            ) from None

    def _dec(self, data: bytes) -> str:
        return data.decode(self.codec, "surrogateescape")

    # --- roles ------------------------------------------------------------------------------
    def _role(self, stmt: Statement, v: Verdict) -> list[Send]:
        mode = self.scope.roles
        if mode == "skip":
            self.skipped_roles += 1
            return []
        kind = v.kind
        name = v.name or ""
        if kind == grammar.ROLE_DB_SETTING:
            db = v.database or ""
            if self._targets_own(db) or not self.scope.chosen(db) or db == "template0":
                return []
            # A setting inside a database this restore created touches the role nowhere
            # else; the connecting role and superusers are never given one (pgdeck's own
            # sessions would run with it).
            ours = self.scope.target_name(db) in self.created
            if name == self.target.current_user or name in self.target.superusers:
                self.existing_roles.add(name)
                return []
            if not ours and not self._may_alter(name):
                return []
            return [Send(self._renamed(stmt, db), maintenance=True)]
        if kind == grammar.ROLE_GRANT:
            return self._grant(stmt, v)
        if kind == grammar.CREATE_ROLE:
            if name in self.target.roles:
                self.existing_roles.add(name)
                return []
            self.created_roles.append(name)
            return [Send(self._enc(f"CREATE ROLE {quote_ident(name)};"), maintenance=True)]
        if kind == grammar.ALTER_ROLE and v.options and "SUPERUSER" in v.options.flags:
            self._dump_superusers.add(name)
        if not self._may_alter(name):
            return []
        if kind == grammar.ALTER_ROLE:
            assert v.options is not None
            if mode == "all":
                return [Send(stmt.text, maintenance=True)]
            if v.options.password:
                self.stripped_passwords += 1
            if any(f in v.options.flags for f in grammar.PRIVILEGED_FLAGS):
                self.demoted.append(name)
            sql = v.options.render(name, keep_password=None, superuser=False)
            return [Send(self._enc(sql), maintenance=True)] if sql else []
        return [Send(stmt.text, maintenance=True)]  # role settings and comments

    def _may_alter(self, role: str) -> bool:
        """May the dump's statements change this role? Never the connecting role or a
        target superuser; under no-passwords, no role the target already had."""
        protected = role == self.target.current_user or role in self.target.superusers
        if self.scope.roles == "no-passwords":
            protected = protected or role in self.target.roles
        if protected and role in self.target.roles:
            self.existing_roles.add(role)
        return not protected

    def _grant(self, stmt: Statement, v: Verdict) -> list[Send]:
        why = None
        for member in v.members:
            if not self._may_alter(member):
                why = f"{member} is a role of the target"
        for role in v.roles:
            if self.scope.roles == "no-passwords":
                if role in SERVER_ACCESS_ROLES:
                    why = f"{role} reaches the server's files or programs"
                elif role in self.target.superusers or role in self._dump_superusers:
                    why = f"{role} is a superuser"
                elif role in self.target.roles:
                    why = f"{role} is a role of the target"
        if why is not None:
            self.skipped_grants.append(
                f"GRANT {', '.join(v.roles)} TO {', '.join(v.members)} ({why})"
            )
            return []
        return [Send(stmt.text, maintenance=True)]

    # --- checks -------------------------------------------------------------------------------
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


def first_qualified(
    toks: list[Token], kinds: frozenset[str] | None = None
) -> tuple[str, str] | None:
    """The statement's first schema-qualified name: the object it creates, alters, grants
    or comments on (pg_dump qualifies them all), before any it merely refers to. With
    ``kinds``: only when the word before it is one of them (ALTER FUNCTION x.f, ON TYPE x.t)."""
    for k in range(len(toks) - 2):
        a, dot, b = toks[k], toks[k + 1], toks[k + 2]
        if a.kind in (WORD, QIDENT) and dot.value == "." and b.kind in (WORD, QIDENT):
            if kinds is not None and (k == 0 or toks[k - 1].value not in kinds):
                return None
            return (a.value, b.value)
    return None


def _name_token(stmt: Statement, name: str) -> Token | None:
    """The token naming database ``name`` (after DATABASE)."""
    toks = stmt.tokens
    for k in range(1, len(toks)):
        prev, tok = toks[k - 1], toks[k]
        if (
            prev.kind == WORD
            and prev.value == "database"
            and tok.kind in (WORD, QIDENT)
            and tok.value == name
            and tok.offset >= 0
        ):
            return tok
    return None


def _without_tablespace(stmt: Statement, text: bytes) -> bytes:
    """CREATE DATABASE without its TABLESPACE = x option (tablespaces are never created).
    ``text`` is ``stmt.text`` perhaps renamed: the option is found from the end, past any
    rename's change of length."""
    toks = stmt.tokens
    for k in range(len(toks) - 1):
        tok = toks[k]
        if tok.kind == WORD and tok.value == "tablespace" and tok.offset >= 0:
            j = k + 1
            if toks[j].value == "=":
                j += 1
            value = toks[j]
            if value.offset < 0:
                return text
            shift = len(text) - len(stmt.text)
            start, end = tok.offset + shift, value.offset + value.length + shift
            return text[:start] + text[end:]
    return text


def _replace(text: bytes, tok: Token, new: bytes) -> bytes:
    return text[: tok.offset] + new + text[tok.offset + tok.length :]


def _insert_after(text: bytes, tok: Token, what: str) -> bytes:
    at = tok.offset + tok.length
    return text[:at] + what.encode() + text[at:]
