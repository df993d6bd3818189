"""The PostgreSQL server a restore writes into: named in the config or given as a DSN,
checked before anything is written (preflight), and shown without its password."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.config import Config
from services.errors import PgdeckError, UsageError
from services.restore_plan import TargetFacts


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    name: str  # the config's name, or "dsn" for one typed in
    conninfo: str  # libpq key=value without the password
    password: str | None = field(repr=False, default=None)
    production: bool = False
    display: str = ""  # user@host:port/dbname as written; reports show the live identity
    password_in_spec: bool = False  # the DSN typed on the command line held a password

    def __repr__(self) -> str:
        return f"ResolvedTarget({self.name!r}, {self.display!r})"

    def conninfo_for(self, dbname: str) -> str:
        """The same server, user and options, connected to another database."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        return make_conninfo(**{k: str(v) for k, v in params.items()})


def resolve_target(spec: str, config: Config, *, password: str | None = None) -> ResolvedTarget:
    """``spec`` is a configured target's name or a libpq DSN; ``password`` (from a file or
    a prompt) wins over one in the DSN."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    named = config.target(spec)
    dsn = named.dsn if named else spec
    if named is None and "=" not in spec and "://" not in spec:
        # The text is not echoed: a mistyped URL may hold a password.
        known = ", ".join(t.name for t in config.targets) or "none configured"
        raise UsageError(f"the target is neither a configured target ({known}) nor a libpq DSN")
    try:
        params = conninfo_to_dict(dsn)
    except Exception as exc:  # psycopg raises ProgrammingError with the DSN in the text
        where = f"targets.{spec}.dsn" if named else "--target"
        raise UsageError(
            f"{where}: not a valid libpq connection string", "see the libpq documentation"
        ) from exc
    in_dsn = params.pop("password", None)
    password_in_spec = named is None and in_dsn is not None
    if password is None and in_dsn is not None:
        password = str(in_dsn)
    params.setdefault("dbname", "postgres")
    host = str(params.get("host") or "local socket")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    display = f"{user + '@' if user else ''}{host}:{port}/{params['dbname']}"
    if named is None:
        # A DSN typed for a server that a configured production target names is that
        # target: it needs the same confirmation, whichever way it was written.
        for t in config.targets:
            if t.production:
                known_target = resolve_target(t.name, config)
                if _server(known_target.display) == _server(display):
                    return dataclasses.replace(
                        known_target,
                        conninfo=make_conninfo(**{k: str(v) for k, v in params.items()}),
                        password=password if password is not None else known_target.password,
                        password_in_spec=password_in_spec,
                    )
    return ResolvedTarget(
        name=named.name if named else "dsn",
        conninfo=make_conninfo(**{k: str(v) for k, v in params.items()}),
        password=password,
        production=named.production if named else False,
        display=display,
        password_in_spec=password_in_spec,
    )


def read_password_file(path: str) -> str:
    """The password in ``path`` (its first line), for --target-password-file."""
    from services.errors import ConfigError

    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--target-password-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})",
            "give a readable file holding the password on its first line",
        ) from None
    value = line.rstrip("\r\n")
    if not value:
        raise ConfigError(f"--target-password-file {path}: the first line is empty")
    return value


def _server(display: str) -> str:
    """host:port of a display form user@host:port/db."""
    return display.split("@")[-1].rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Who a live connection says the server is: the same server has the same system
    identifier however it was reached (localhost, hostaddr=, PGHOST, a service file)."""

    system_identifier: str
    address: str  # inet_server_addr(), or "local socket"
    port: int
    user: str
    database: str
    version: str

    @property
    def display(self) -> str:
        return f"{self.user}@{self.address}:{self.port}/{self.database}"


def identify(target: ResolvedTarget, *, timeout: int = 10) -> ServerIdentity:
    """Connect and ask the server who it is (needs a superuser, as a restore does)."""
    import psycopg

    with connect(target, timeout=timeout) as conn:
        try:
            row = conn.execute(
                "SELECT (SELECT system_identifier::text FROM pg_catalog.pg_control_system()),"
                " host(inet_server_addr()), inet_server_port(), current_user,"
                " current_database(), current_setting('server_version')"
            ).fetchone()
        except psycopg.Error as exc:
            raise PgdeckError(
                f"target {target.display}: cannot read the server's identity ({_first_line(exc)})",
                "connect as a superuser",
            ) from exc
    assert row is not None
    sysid, addr, port, user, db, version = row
    return ServerIdentity(
        str(sysid or ""),
        str(addr) if addr else "local socket",
        int(port) if port else _port_of(target),
        str(user),
        str(db),
        str(version),
    )


def production_twin(
    target: ResolvedTarget,
    identity: ServerIdentity,
    config: Config,
    *,
    probe: Callable[[ResolvedTarget], ServerIdentity] = lambda t: identify(t, timeout=3),
) -> tuple[ResolvedTarget | None, list[str]]:
    """The configured production target that is this very server, if any, and notes on
    production targets that could not be compared.

    A target is production when its server is: the same system identifier as a
    production target's (asked of that target), or, when a production target cannot be
    reached, the same address and port as its host resolves to."""
    notes: list[str] = []
    for t in config.targets:
        if not t.production:
            continue
        known = resolve_target(t.name, config)
        if known.name == target.name:
            return known, notes
        try:
            other = probe(known)
        except PgdeckError as exc:
            if _same_address(known, identity):
                return known, notes
            notes.append(f"production target {t.name!r} could not be compared ({exc.message})")
            continue
        if other.system_identifier and other.system_identifier == identity.system_identifier:
            return known, notes
    return None, notes


def _same_address(known: ResolvedTarget, identity: ServerIdentity) -> bool:
    import socket

    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(known.conninfo)
    host = str(params.get("hostaddr") or params.get("host") or "")
    port = int(str(params.get("port") or 5432))
    if port != identity.port or not host or host.startswith("/"):
        return False
    try:
        addrs = {a[4][0] for a in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except OSError:
        return False
    return identity.address in addrs


def _port_of(target: ResolvedTarget) -> int:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return int(str(conninfo_to_dict(target.conninfo).get("port") or 5432))
    except ValueError:
        return 5432


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class Preflight:
    server_version: str
    server_major: int
    facts: TargetFacts
    findings: list[tuple[str, bool, str]]  # (check, passed, detail)
    identity: ServerIdentity | None = None

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.findings)


def connect(  # noqa: ANN201
    target: ResolvedTarget,
    dbname: str | None = None,
    *,
    autocommit: bool = True,
    options: str | None = None,
    timeout: int = 10,
):
    """A psycopg connection to the target (``options``: server settings for the session,
    e.g. ``-c search_path=pg_catalog`` for queries in a database the backup defined)."""
    import psycopg

    kwargs: dict[str, Any] = {}
    if target.password is not None:
        kwargs["password"] = target.password
    if dbname is not None:
        kwargs["dbname"] = dbname
    if options is not None:
        kwargs["options"] = options
    try:
        return psycopg.connect(
            target.conninfo, autocommit=autocommit, connect_timeout=timeout, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise connection_error(exc, target) from exc


def connection_error(exc: Exception, target: ResolvedTarget) -> PgdeckError:
    # libpq's first line holds the cause ("... failed: Connection refused"); the lines
    # after it are generic hints. It names host and port, never the password.
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0].removeprefix("connection failed: ") if lines else type(exc).__name__
    low = str(exc).lower()
    where = f"target {target.display}"
    if "password authentication failed" in low or "no password supplied" in low:
        return PgdeckError(
            f"{where}: password authentication failed",
            "check the password: --target-password-file, PGPASSWORD or ~/.pgpass",
        )
    if (
        "connection refused" in low
        or "could not translate host" in low
        or "timeout expired" in low
        or "no such file" in low
    ):
        return PgdeckError(
            f"{where}: cannot connect ({text})", "is the server running and reachable from here?"
        )
    if "does not exist" in low:
        return PgdeckError(f"{where}: {text}", "check the DSN's dbname and user")
    return PgdeckError(f"{where}: {text}")


def run_preflight(
    target: ResolvedTarget, dump_version: str | None, *, drop_existing: bool
) -> Preflight:
    findings: list[tuple[str, bool, str]] = []
    with connect(target) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        is_super = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        current_user = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        superusers = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper")}
        locales: set[str] = set()
        for name, collate in conn.execute("SELECT collname, collcollate FROM pg_collation"):
            locales.update(x for x in (name, collate) if x)
        for datcollate, datctype in conn.execute("SELECT datcollate, datctype FROM pg_database"):
            locales.update((datcollate, datctype))
        locales.update({"C", "POSIX"})
    major = num // 10000
    findings.append(("target answers", True, f"PostgreSQL {version} at {target.display}"))
    findings.append(
        ("superuser", bool(is_super and is_super[0]), "restoring a whole dump needs a superuser")
    )
    if dump_version:
        dump_major = int(dump_version.split(".")[0])
        findings.append(
            (
                "server version",
                major >= dump_major,
                f"dump from PostgreSQL {dump_version}, target {version}"
                + (
                    ""
                    if major >= dump_major
                    else ": restoring into an older server is not supported"
                ),
            )
        )
    facts = TargetFacts(
        databases=databases,
        roles=roles,
        locales=locales,
        drop_existing=drop_existing,
        superusers=superusers,
        current_user=current_user,
    )
    return Preflight(server_version=version, server_major=major, facts=facts, findings=findings)
