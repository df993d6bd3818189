"""The PostgreSQL server a restore writes into: named in the config or given as a DSN,
checked before anything is written (preflight), and shown without its password."""

from __future__ import annotations

import dataclasses
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
    display: str = ""  # user@host:port/dbname: what reports and logs show

    def __repr__(self) -> str:
        return f"ResolvedTarget({self.name!r}, {self.display!r})"

    def conninfo_for(self, dbname: str) -> str:
        """The same server, user and options, connected to another database."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.conninfo)
        params["dbname"] = dbname
        return make_conninfo(**{k: str(v) for k, v in params.items()})


def resolve_target(spec: str, config: Config) -> ResolvedTarget:
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
    password = params.pop("password", None)
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
                        password=str(password) if password is not None else known_target.password,
                    )
    return ResolvedTarget(
        name=named.name if named else "dsn",
        conninfo=make_conninfo(**{k: str(v) for k, v in params.items()}),
        password=str(password) if password is not None else None,
        production=named.production if named else False,
        display=display,
    )


def _server(display: str) -> str:
    """host:port of a display form user@host:port/db."""
    return display.split("@")[-1].rsplit("/", 1)[0]


@dataclass
class Preflight:
    server_version: str
    server_major: int
    facts: TargetFacts
    findings: list[tuple[str, bool, str]]  # (check, passed, detail)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.findings)


def connect(target: ResolvedTarget, dbname: str | None = None, *, autocommit: bool = True):  # noqa: ANN201
    import psycopg

    kwargs: dict[str, Any] = {}
    if target.password is not None:
        kwargs["password"] = target.password
    if dbname is not None:
        kwargs["dbname"] = dbname
    try:
        return psycopg.connect(target.conninfo, autocommit=autocommit, connect_timeout=10, **kwargs)
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
            "check the password, PGPASSWORD or ~/.pgpass",
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
    target: ResolvedTarget, dump_version: str | None, *, drop_existing: bool, psql_restrict: bool
) -> Preflight:
    findings: list[tuple[str, bool, str]] = []
    with connect(target) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        is_super = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
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
        psql_knows_restrict=psql_restrict,
        drop_existing=drop_existing,
    )
    return Preflight(server_version=version, server_major=major, facts=facts, findings=findings)
