"""Hostile backups: a bucket is writable by more people than the database is, so a backup is
untrusted input. Each test builds a real hostile object (the real ``source_dump`` with an
attack spliced in where it does most harm), gzips it into moto's S3 server and runs the real
command line against a real PostgreSQL target, then asserts what the issue asks: nothing ran
(no marker file made on this machine or by the server), the target's own roles, settings
and databases are exactly as before (its superuser still logs in over TCP with its password),
no role logs in with a password from the dump, the exit status, and one clear line naming
the line of the backup, with no traceback and no secret printed.

The target is one server for the module, reset between tests and compared with the state it
had when it was made (rebuilt from scratch when a reset cannot bring it back). It holds a
database (``bystander``) and a role (``bystander_role``) of its own that no backup names,
and its ``pg_hba.conf`` asks for passwords over TCP (scram-sha-256), so logins prove
passwords. Markers live in a directory the database server's user may write to, so an
attack that reaches the server's programs would leave one.

Attacks that succeed today are ``xfail(strict=True)`` with the reason: findings for the
lead, not accepted behaviour.
"""

from __future__ import annotations

import gc
import gzip
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from sandbox import localpg
from services.dump import MAX_LINE, DumpReader, NotADump
from services.restore_plan import TARGETS_OWN
from tests.conftest import seed, storage_config
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TARGET_PASSWORD = "target-superuser-pw-7Qx"
BYSTANDER_PASSWORD = "bystander-pw-9Kd"
# Every password a hostile object below carries contains this, so no output may.
DUMP_SECRET = "dump-secret"
SOURCE_PASSWORD = "not-a-real-password"  # appuser's, in the source dump (as a SCRAM verifier)
OWN_DATABASES = ("postgres", "template1", "bystander")
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x00")
_keys = itertools.count(1)


# --- the target -------------------------------------------------------------------------------
def _connect(pg: localpg.LocalPostgres, db: str = "postgres") -> psycopg.Connection[Any]:
    # Whatever settings an attack stored for the role or the database, the checks see
    # names schema-qualified and may write.
    return psycopg.connect(
        pg.dsn(db),
        autocommit=True,
        options="-c search_path=pg_catalog -c default_transaction_read_only=off",
    )


def can_log_in(pg: localpg.LocalPostgres, user: str, password: str) -> bool:
    """A password login over TCP (scram-sha-256 in pg_hba.conf: trust only on the socket)."""
    try:
        psycopg.connect(
            host="127.0.0.1",
            port=pg.port,
            user=user,
            password=password,
            dbname="postgres",
            connect_timeout=10,
        ).close()
    except psycopg.OperationalError:
        return False
    return True


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(query).fetchall()]  # type: ignore[arg-type]


_OBJECTS = """
SELECT 'rel ' || c.oid::regclass::text, c.relkind::text, c.relacl::text, c.relowner::regrole::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT 'fn ' || p.oid::regprocedure::text, p.prolang::text, p.proacl::text, p.proowner::regrole::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'nsp ' || nspname, '', nspacl::text, nspowner::regrole::text FROM pg_namespace
UNION ALL SELECT 'ext ' || extname, extversion, '', '' FROM pg_extension
UNION ALL SELECT 'evt ' || evtname, evtevent, '', '' FROM pg_event_trigger
UNION ALL SELECT 'trg ' || tgname, tgrelid::regclass::text, '', '' FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'srv ' || srvname, '', srvoptions::text, '' FROM pg_foreign_server
UNION ALL SELECT 'dacl ' || defaclrole::regrole::text, defaclobjtype::text, defaclacl::text, '' FROM pg_default_acl
UNION ALL SELECT 'lo ' || oid::text, '', lomacl::text, lomowner::regrole::text FROM pg_largeobject_metadata
"""


def target_state(pg: localpg.LocalPostgres) -> dict[str, Any]:
    """What the target holds of its own: databases, roles (attributes, whether they have a
    password, comments), settings, memberships, parameter privileges, tablespaces, and the
    objects and rows of its own databases. Compared whole, or restricted to what existed
    before a restore (``untouched``)."""
    with _connect(pg) as conn:
        state: dict[str, Any] = {
            "databases": {
                r[0]: r[1:]
                for r in _rows(
                    conn,
                    "SELECT datname, datdba::regrole::text, datacl::text, datallowconn, "
                    "datconnlimit, datistemplate, shobj_description(oid, 'pg_database') "
                    "FROM pg_database",
                )
            },
            "roles": {
                r[0]: r[1:]
                for r in _rows(
                    conn,
                    "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, "
                    "rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, "
                    "rolvaliduntil::text, rolpassword IS NOT NULL, "
                    "shobj_description(oid, 'pg_authid') FROM pg_authid",
                )
            },
            "settings": sorted(
                _rows(
                    conn,
                    "SELECT coalesce((SELECT rolname FROM pg_roles WHERE oid = setrole), ''), "
                    "coalesce((SELECT datname FROM pg_database WHERE oid = setdatabase), ''), "
                    "setconfig::text FROM pg_db_role_setting",
                )
            ),
            "memberships": sorted(
                _rows(
                    conn,
                    "SELECT roleid::regrole::text, member::regrole::text, admin_option "
                    "FROM pg_auth_members",
                )
            ),
            "parameters": sorted(_rows(conn, "SELECT parname, paracl::text FROM pg_parameter_acl")),
            "tablespaces": sorted(_rows(conn, "SELECT spcname, spcacl::text FROM pg_tablespace")),
            "subscriptions": sorted(_rows(conn, "SELECT subname FROM pg_subscription")),
        }
    for db in OWN_DATABASES:
        with _connect(pg, db) as conn:
            state[f"objects {db}"] = sorted(_rows(conn, _OBJECTS))
            if db != "template1":
                state[f"rows {db}"] = _rows(
                    conn, "SELECT array_agg(k::text ORDER BY k::text) FROM public.keep k"
                )
    return state


def untouched(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What of the target's own state (as it was ``before``) differs ``after``: its own
    databases and roles, settings and memberships naming them, everything cluster-wide."""
    own_roles = set(before["roles"])
    own_dbs = set(before["databases"])
    diff: dict[str, Any] = {}
    for key in ("databases", "roles"):
        mine = set(before[key])
        changed = {n: after[key].get(n) for n in mine if after[key].get(n) != before[key][n]}
        if changed:
            diff[key] = changed

    def settings(state: dict[str, Any]) -> list[Any]:
        return [
            s
            for s in state["settings"]
            if s[0] in own_roles or (s[0] == "" and (s[1] in own_dbs or s[1] == ""))
        ]

    def memberships(state: dict[str, Any]) -> list[Any]:
        return [m for m in state["memberships"] if m[0] in own_roles or m[1] in own_roles]

    def parameters(state: dict[str, Any]) -> list[Any]:
        # Grants of SET to the dump's own roles are the dump's; PUBLIC, the target's own
        # roles and ALTER SYSTEM (A) are not.
        out = []
        for name, acl in state["parameters"]:
            for item in (acl or "{}").strip("{}").split(","):
                grantee, _, privs = item.partition("=")
                if item == "postgres=sA/postgres":  # the owner's implicit privileges, shown
                    continue
                if item and (grantee in own_roles or grantee == "" or "A" in privs.split("/")[0]):
                    out.append((name, item))
        return sorted(out)

    for name, pick in (
        ("settings", settings),
        ("memberships", memberships),
        ("parameters", parameters),
    ):
        if pick(before) != pick(after):
            diff[name] = pick(after)
    for key in before:
        if key not in (
            "databases",
            "roles",
            "settings",
            "memberships",
            "parameters",
        ) and before[key] != after.get(key):
            diff[key] = after.get(key)
    return diff


def _own_rows(conn: psycopg.Connection[Any], note: str) -> None:
    conn.execute("CREATE TABLE public.keep (id int PRIMARY KEY, note text)")
    conn.execute(sql.SQL("INSERT INTO public.keep VALUES (1, {})").format(sql.Literal(note)))


def _bystander(pg: localpg.LocalPostgres) -> None:
    """The target's database that no backup names."""
    with _connect(pg) as conn:
        conn.execute("CREATE DATABASE bystander")
    with _connect(pg, "bystander") as conn:
        _own_rows(conn, "not in any backup")
        conn.execute("GRANT SELECT ON public.keep TO bystander_role")


@dataclass
class Target:
    """The module's target server, its markers directory and its state when made."""

    root: Path
    pg: localpg.LocalPostgres
    markers: Path
    server_secret: str
    baseline: dict[str, Any] = field(default_factory=dict)
    rebuilds: int = 0

    @classmethod
    def make(cls, root: Path, generation: int = 0) -> Target:
        pg = localpg.create(root / f"data{generation}")
        # Passwords over TCP, trust on the socket (pgdeck and the test's own checks).
        (pg.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n",
            encoding="utf-8",
        )
        pg.start()
        markers = root / "markers"
        markers.mkdir(exist_ok=True)
        os.chmod(markers, 0o1777)  # the server's user can write here: a program it runs would
        secret = f"server-file-{os.urandom(6).hex()}"
        (markers / "server-secret.txt").write_text(secret + "\n", encoding="utf-8")
        os.chmod(markers / "server-secret.txt", 0o644)
        with _connect(pg) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(TARGET_PASSWORD))
            )
            conn.execute(
                sql.SQL("CREATE ROLE bystander_role LOGIN PASSWORD {}").format(
                    sql.Literal(BYSTANDER_PASSWORD)
                )
            )
            _own_rows(conn, "the target's own row")
        _bystander(pg)
        target = cls(root, pg, markers, secret)
        target.baseline = target_state(pg)
        return target

    def marks(self) -> list[str]:
        return sorted(p.name for p in self.markers.iterdir() if p.name != "server-secret.txt")

    def reset(self) -> None:
        """Back to the baseline: what a restore (or an attack) added is dropped; what of
        the target's own it changed is put back; anything else rebuilds the server."""
        for p in self.markers.iterdir():
            if p.name != "server-secret.txt":
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        base = self.baseline
        try:
            self._repair(base)
            clean = target_state(self.pg) == base
        except psycopg.Error:
            clean = False
        if not clean:
            self.rebuild()

    def _repair(self, base: dict[str, Any]) -> None:
        now = target_state(self.pg)
        self._drop_added(now, base)
        with _connect(self.pg) as conn:

            def run(stmt: sql.Composable) -> None:
                conn.execute(stmt)

            for db in set(now["databases"]) - set(base["databases"]):
                run(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            for db in ("postgres", "template1"):
                run(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(db), sql.Identifier(base["databases"][db][0])
                    )
                )
            bystander_changed = (
                any(now.get(k) != base[k] for k in ("objects bystander", "rows bystander"))
                or now["databases"].get("bystander") != base["databases"]["bystander"]
            )
            if bystander_changed:
                run(sql.SQL("DROP DATABASE bystander WITH (FORCE)"))
            for role, db, _ in now["settings"]:
                if role and role not in base["roles"]:
                    continue  # goes with its role
                who = sql.SQL("ALL") if not role else sql.Identifier(role)
                if db:
                    run(
                        sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(
                            who, sql.Identifier(db)
                        )
                    )
                else:
                    run(sql.SQL("ALTER ROLE {} RESET ALL").format(who))
            for role, member, _ in set(now["memberships"]) - set(base["memberships"]):
                if role in base["roles"] and member in base["roles"]:
                    run(
                        sql.SQL("REVOKE {} FROM {}").format(
                            sql.Identifier(role), sql.Identifier(member)
                        )
                    )
            extra = set(now["roles"]) - set(base["roles"])
            for db in ("postgres", "template1", *(() if bystander_changed else ("bystander",))):
                with _connect(self.pg, db) as c:
                    for role in extra:
                        c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            for role in extra:
                run(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            for role in base["roles"]:
                if now["roles"].get(role, [None])[-1] is not None:
                    run(sql.SQL("COMMENT ON ROLE {} IS NULL").format(sql.Identifier(role)))
            for role, password in (
                ("postgres", TARGET_PASSWORD),
                ("bystander_role", BYSTANDER_PASSWORD),
            ):
                run(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            if now["rows postgres"] != base["rows postgres"]:
                run(sql.SQL("DROP TABLE public.keep"))
                _own_rows(conn, "the target's own row")
        if bystander_changed:
            _bystander(self.pg)

    def _drop_added(self, now: dict[str, Any], base: dict[str, Any]) -> None:
        """What a restore wrote into the target's own postgres and template1 (a whole
        cluster's sections of them are restored there) is dropped, event triggers first so
        that none fires; the target's own table is made again and its public schema's owner
        and grants set back when anything there changed."""
        order = {"evt": 0, "ext": 1, "srv": 2, "rel": 3, "fn": 4, "nsp": 5}
        drop = {"evt": "EVENT TRIGGER", "ext": "EXTENSION", "srv": "SERVER", "nsp": "SCHEMA"}
        relation = {
            "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE",
            "i": "INDEX", "I": "INDEX",
        }  # fmt: skip
        for db in ("postgres", "template1"):
            if all(now.get(f"{k} {db}") == base.get(f"{k} {db}") for k in ("objects", "rows")):
                continue
            had = {o[0] for o in base[f"objects {db}"]}
            added = {o for o in now[f"objects {db}"] if o[0] not in had}
            with _connect(self.pg, db) as conn:
                for (prefix, name), kind in sorted(
                    ((o[0].partition(" ")[::2], o[1]) for o in added),
                    key=lambda o: order.get(o[0][0], 9),
                ):
                    if prefix in drop:
                        stmt = sql.SQL("DROP {} IF EXISTS {} CASCADE").format(
                            sql.SQL(drop[prefix]), sql.Identifier(name)
                        )
                    elif prefix in ("rel", "fn"):  # regclass / regprocedure text: quoted
                        what = "ROUTINE" if prefix == "fn" else relation.get(kind, "TABLE")
                        stmt = sql.SQL(f"DROP {what} IF EXISTS {name} CASCADE")  # type: ignore[arg-type]
                    elif prefix == "lo":
                        stmt = sql.SQL("SELECT pg_catalog.lo_unlink({})").format(int(name))
                    else:
                        continue  # a trigger goes with its table; anything else: rebuilt
                    conn.execute(stmt)
                conn.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
                conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                if db == "postgres":
                    conn.execute("DROP TABLE IF EXISTS public.keep CASCADE")
                    _own_rows(conn, "the target's own row")

    def rebuild(self) -> None:
        self.pg.destroy()
        self.rebuilds += 1
        fresh = Target.make(self.root, self.rebuilds)
        self.pg, self.server_secret, self.baseline = fresh.pg, fresh.server_secret, fresh.baseline


@dataclass
class World:
    target: Target
    bucket: str
    config: Path
    archive: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[World]:
    root = tmp_path_factory.mktemp("hostile")
    target = Target.make(root)
    bucket = f"hostile-{os.urandom(3).hex()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    here = root / "client"
    here.mkdir()
    config = storage_config(here, bucket, s3_endpoint)
    yield World(target, bucket, config, here / "archive")
    target.pg.destroy()


@pytest.fixture
def hostile(world: World) -> Iterator[World]:
    """The world, its target at its baseline (each reset compares the whole state with
    it, and rebuilds the server when it cannot get back there)."""
    assert world.target.marks() == []
    yield world
    world.target.reset()


# --- hostile objects --------------------------------------------------------------------------
@dataclass(frozen=True)
class Spliced:
    data: bytes
    line: int  # the line of the backup the attack starts on


def after_line(dump: bytes, prefix: bytes, text: bytes, *, nth: int = 0) -> Spliced:
    """``text`` inserted after the ``nth`` line of ``dump`` that starts with ``prefix``."""
    starts = [m.start() for m in re.finditer(rb"(?m)^" + re.escape(prefix), dump)]
    assert len(starts) > nth, prefix
    at = dump.index(b"\n", starts[nth]) + 1
    return Spliced(dump[:at] + text + dump[at:], dump[:at].count(b"\n") + 1)


def in_section(dump: bytes, database: bytes, text: bytes) -> Spliced:
    """``text`` inside a database's section, after the settings that follow its \\connect."""
    connect = re.search(rb"(?m)^\\connect .*" + re.escape(database) + rb"'?\"?\n", dump)
    assert connect is not None, database
    settings = dump.index(b"SET row_security = off;\n", connect.end())
    at = settings + len(b"SET row_security = off;\n")
    return Spliced(dump[:at] + text + dump[at:], dump[:at].count(b"\n") + 1)


# Where an attack does most harm in the source dump.
def at(where: str, dump: bytes, text: bytes) -> Spliced:
    if where == "header":  # the first statement: nothing is connected yet
        return after_line(dump, b"SET default_transaction_read_only = off;", text)
    if where == "roles":  # the globals, among the roles
        return after_line(dump, b"ALTER ROLE appuser WITH", text)
    if where == "shop":  # inside database shop, before its data
        return after_line(dump, b"ALTER TABLE public.orders OWNER TO postgres;", text)
    if where == "shop end":  # inside database shop, after its data and constraints
        return after_line(dump, b"    ADD CONSTRAINT orders_customer_fkey", text)
    if where == "shop created":  # shop exists, before \connect shop (the postgres session)
        return after_line(dump, b"ALTER DATABASE shop OWNER TO postgres;", text)
    if where == "postgres":  # the target's own maintenance database
        return in_section(dump, b"postgres", text)
    if where == "template1":  # the target's own template of every new database
        return in_section(dump, b"template1", text)
    if where == "end":  # the last database, after its data
        return after_line(dump, b"SELECT pg_catalog.setval(", text)
    raise AssertionError(where)


@dataclass
class Run:
    code: int
    out: str
    err: str
    report: dict[str, Any]
    audited: str = ""  # what this run appended to the archive's audit log

    @property
    def printed(self) -> str:
        return self.out + self.err


def put(world: World, data: bytes, level: int = 6) -> str:
    key = f"spilo/acid-shop/0f000000-0000-4000-8000-00000000beef/logical_backups/{1763600000 + next(_keys)}.sql.gz"
    seed(world.bucket, {key: gzip.compress(data, compresslevel=level)})
    return f"s3://{world.bucket}/{key}"


def cli(capsys: pytest.CaptureFixture[str], world: World, *argv: str) -> Run:
    audit = world.archive / "audit.log"
    before = audit.stat().st_size if audit.is_file() else 0
    code = main(["--config", str(world.config), *argv], clock=lambda: NOW)
    out, err = capsys.readouterr()
    report = json.loads(out) if "--json" in argv and out.strip().startswith("{") else {}
    audited = ""
    if audit.is_file():
        with audit.open("rb") as f:
            f.seek(before)
            audited = f.read().decode("utf-8", "replace")
    return Run(code, out, err, report, audited)


def restore(
    capsys: pytest.CaptureFixture[str], world: World, url: str, *extra: str, json_out: bool = True
) -> Run:
    args = ["restore", url, "--target", world.target.pg.dsn(), "--yes", *extra]
    return cli(capsys, world, *args, *(["--json"] if json_out else []))


def archived_text(run: Run) -> str:
    """The run's report (JSON and Markdown) and its audit entry, as archived."""
    parts = [run.audited]
    for path in (run.report.get("archived") or {}).values():
        if isinstance(path, str) and Path(path).is_file():
            parts.append(Path(path).read_text(encoding="utf-8"))
    return "\n".join(parts)


def secrets_of(dump: bytes) -> list[str]:
    """What no output may show: the target's passwords, the dump's passwords (cleartext
    ones all contain DUMP_SECRET) and the password verifiers the dump carries."""
    verifiers = re.findall(rb"PASSWORD '((?:SCRAM-SHA-256|md5)[^']+)'", dump)
    return [TARGET_PASSWORD, BYSTANDER_PASSWORD, DUMP_SECRET, *(v.decode() for v in verifiers)]


def assert_clean_output(world: World, run: Run, dump: bytes) -> None:
    shown = run.printed + archived_text(run)
    assert "Traceback" not in run.printed
    for secret in secrets_of(dump):
        assert secret not in shown, f"a secret is printed or archived: {secret[:12]}…"
    assert not any(c in run.printed for c in RAW_CONTROLS), "a raw control character was printed"


def assert_target_untouched(
    world: World, *dump_logins: tuple[str, str], roles: str = "no-passwords"
) -> None:
    """The target's own databases, roles, settings and memberships are as they were; its
    superuser logs in with its password; no role logs in with a password of the dump
    (under --roles all, none of those the attack aimed at); no role but the target's own
    is a superuser; no marker was made."""
    t = world.target
    assert world.target.marks() == [], "a command from the backup ran"
    assert untouched(t.baseline, target_state(t.pg)) == {}
    assert can_log_in(t.pg, "postgres", TARGET_PASSWORD), "the superuser's password changed"
    assert can_log_in(t.pg, "bystander_role", BYSTANDER_PASSWORD), "a role's password changed"
    source = [("appuser", SOURCE_PASSWORD)] if roles != "all" else []
    for user, password in (*source, *dump_logins):
        assert not can_log_in(t.pg, user, password), f"{user} logs in with the dump's password"
    with _connect(t.pg) as conn:
        supers = {r[0] for r in _rows(conn, "SELECT rolname FROM pg_roles WHERE rolsuper")}
        loading = _rows(
            conn,
            "SELECT setrole::regrole::text, setconfig::text FROM pg_db_role_setting "
            "WHERE setconfig::text ~* 'preload_libraries|dynamic_library_path'",
        )
    if roles != "all":
        assert supers == {"postgres"}, "a role of the dump is a superuser"
    assert loading == [], "a stored setting loads a server library at login"


def reached_the_server(target: Target) -> list[str]:
    """What a restore reached of the database server's host: a marker made (a program ran,
    a file was written), the server's secret file read into ``public.loot`` of a database
    the restore created, a function bound to a server library or built-in (LANGUAGE c or
    internal) that no extension brought."""
    found = [f"made {name}" for name in target.marks()]
    with _connect(target.pg) as conn:
        dbs = [r[0] for r in _rows(conn, "SELECT datname FROM pg_database")]
    for db in sorted(set(dbs) - set(target.baseline["databases"])):
        with _connect(target.pg, db) as conn:
            has_loot = _rows(conn, "SELECT to_regclass('public.loot') IS NOT NULL")[0][0]
            loot = _rows(conn, "SELECT l::text FROM public.loot l") if has_loot else []
            bound = _rows(
                conn,
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_language l ON l.oid = p.prolang "
                "WHERE l.lanname IN ('c', 'internal') AND p.pronamespace <> 'pg_catalog'::regnamespace "
                "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
                "AND d.objid = p.oid AND d.deptype = 'e')",
            )
        if any(target.server_secret in str(r) for r in loot):
            found.append(f"read the server's file into {db}")
        found += [f"bound {fn} in {db} to the server's code" for (fn,) in bound]
    return found


def lines_naming(text: str, line: int) -> list[str]:
    """The lines of ``text`` naming line ``line`` of the backup (any line when < 0)."""
    number = r"\d+" if line < 0 else str(line)
    return [ln for ln in text.splitlines() if re.search(rf"\bline {number}\b", ln)]


@dataclass(frozen=True)
class Attack:
    where: str  # see ``at``
    text: str  # {M}: the markers directory, {PORT}: the target's TCP port, {SOCK}: its socket directory
    found: str  # what the one line must name
    args: tuple[str, ...] = ()
    offset: int | None = 0  # the refused line, from the first of ``text`` (None: a later one)
    logins: tuple[tuple[str, str], ...] = ()  # passwords of the dump that must not log in

    def splice(self, world: World, dump: bytes) -> Spliced:
        t = world.target
        return self.splice_with(t.markers, t.pg.port, dump, sock=t.pg.host)

    def splice_with(self, markers: Path, port: int, dump: bytes, sock: str = "") -> Spliced:
        text = self.text.replace("{M}", str(markers)).replace("{PORT}", str(port))
        text = text.replace("{SOCK}", sock)
        spliced = at(self.where, dump, text.encode("utf-8"))
        if self.offset is None:  # refused at a later statement of the dump: line unknown here
            return Spliced(spliced.data, -1)
        return Spliced(spliced.data, spliced.line + self.offset)


SET_PATH = "SELECT pg_catalog.set_config('search_path', '', false);"
EVIL = (("evil", f"{DUMP_SECRET}-evil"),)

# Refused by the reader: the restore stops before the line, verify calls the object
# not a pg_dumpall stream, --verify-first refuses it before any write.
REFUSED: dict[str, Attack] = {
    # --- role spellings that once reached the target's roles (each refused now) ----------
    "a CONNECTION LIMIT literal rendered back as SQL": Attack(
        "roles",
        "CREATE ROLE evil;\n"
        f"ALTER ROLE evil WITH LOGIN CONNECTION LIMIT '-1 SUPERUSER PASSWORD ''{DUMP_SECRET}-evil''';\n",
        "CONNECTION LIMIT other than a whole number",
        offset=1,
        logins=EVIL,
    ),
    "ALTER ROLE ALL SET: every role of the target at once": Attack(
        "roles", "ALTER ROLE ALL SET search_path TO 'loot', 'pg_catalog';\n", "ALL stands for roles"
    ),
    "ALTER ROLE CURRENT_USER SET: the connecting role by a keyword": Attack(
        "roles",
        "ALTER ROLE CURRENT_USER SET search_path TO 'loot', 'pg_catalog';\n",
        "CURRENT_USER stands for roles",
    ),
    "the connecting role by a keyword under --roles all": Attack(
        "roles",
        f"ALTER ROLE CURRENT_USER WITH SUPERUSER LOGIN PASSWORD '{DUMP_SECRET}-pg';\n",
        "CURRENT_USER stands for roles",
        ("--roles", "all"),
        logins=(("postgres", f"{DUMP_SECRET}-pg"),),
    ),
    "a Unicode-escaped name for the target's superuser": Attack(
        "roles", "ALTER ROLE U&\"\\0070ostgres\" SET search_path TO 'loot';\n", "U&-escaped"
    ),
    "a Unicode-escaped membership in the target's superuser": Attack(
        "roles", 'CREATE ROLE evil;\nGRANT U&"\\0070ostgres" TO evil;\n', "U&-escaped", offset=1
    ),
    "a Unicode-escaped library-loading setting": Attack(
        "roles",
        "CREATE ROLE evil;\nALTER ROLE evil SET U&\"\\0073ession_preload_libraries\" TO 'x';\n",
        "U&-escaped",
        offset=1,
    ),
    "a Unicode-escaped superuser under --roles all": Attack(
        "roles",
        f"ALTER ROLE U&\"\\0070ostgres\" WITH SUPERUSER LOGIN PASSWORD '{DUMP_SECRET}-pg';\n",
        "U&-escaped",
        ("--roles", "all"),
        logins=(("postgres", f"{DUMP_SECRET}-pg"),),
    ),
    "a grant on a list of databases": Attack(
        "shop created",
        "GRANT ALL ON DATABASE shop, bystander TO appuser WITH GRANT OPTION;\n",
        "a list of databases",
    ),
    # --- what the dump's objects would run as the restoring superuser ----------------------
    "a trigger created before the data": Attack(
        "shop",
        "CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "COPY (SELECT 1) TO PROGRAM 'touch {M}/trigger'; RETURN NEW; END$$;\n"
        "CREATE TRIGGER evil BEFORE INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.evil();\n",
        "table data after a trigger was created",
        offset=None,
    ),
    "an event trigger before the rest of the database": Attack(
        "shop",
        "CREATE FUNCTION public.evil() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN "
        "COPY (SELECT 1) TO PROGRAM 'touch {M}/event'; END$$;\n"
        "CREATE EVENT TRIGGER evil ON ddl_command_end EXECUTE FUNCTION public.evil();\n",
        "after an event trigger was created",
        offset=None,
    ),
    "a quoted call of pg_read_file in a column default": Attack(
        "shop",
        "CREATE TABLE public.loot (id int, f text DEFAULT pg_catalog.\"pg_read_file\"('{M}/server-secret.txt'));\n",
        "a use of pg_read_file",
    ),
    "file_fdw's program option spelled with a Unicode escape": Attack(
        "shop",
        "CREATE FOREIGN TABLE public.ft (f text) SERVER fs OPTIONS (U&\"\\0070rogram\" 'touch {M}/fdw');\n",
        "U&-escaped",
    ),
    "a function in internal named with a Unicode escape": Attack(
        "shop",
        "CREATE FUNCTION public.ls(text) RETURNS SETOF text LANGUAGE U&\"\\0069nternal\" AS 'pg_ls_dir_1arg';\n",
        "U&-escaped",
    ),
    "a statement cut off by a \\connect": Attack(
        "shop", "CREATE TABLE public.loot (a int) \\connect shop\n", "inside or after a statement"
    ),
    # --- client side: psql meta-commands ---------------------------------------------------
    "shell command after the header": Attack("header", r"\! touch {M}/shell" "\n", r"\!"),
    "shell command in the chosen database": Attack(
        "shop", r"\! touch {M}/shell" "\n", r"\!", ("--database", "shop")
    ),
    "shell command in a database not chosen": Attack(
        "postgres", r"\! touch {M}/shell" "\n", r"\!", ("--database", "shop")
    ),
    "query output to a file after a statement": Attack(
        "shop", SET_PATH + r" \o {M}/out" "\n", r"\o"
    ),
    "query output to a program": Attack("shop", r"\o |touch {M}/out" "\n", r"\o"),
    "query buffer written to a file": Attack("shop", SET_PATH + r" \w {M}/w" "\n", r"\w"),
    "client-side copy to a file after a statement": Attack(
        "shop", SET_PATH + r" \copy public.orders to '{M}/copy'" "\n", r"\copy"
    ),
    "client-side copy from a program": Attack(
        "shop", r"\copy public.orders from program 'touch {M}/copy'" "\n", r"\copy"
    ),
    "include a file": Attack("shop", r"\i /etc/hostname" "\n", r"\i"),
    "include a file after a statement": Attack(
        "shop", SET_PATH + r" \i /etc/hostname" "\n", r"\i /etc"
    ),
    "include a relative file after a statement": Attack(
        "shop", SET_PATH + r" \ir ../../etc/hostname" "\n", r"\ir"
    ),
    "send the buffer to a file": Attack(
        "shop", r"SELECT pg_catalog.set_config('search_path', '', false) \g {M}/g" "\n", r"\g"
    ),
    "send the buffer to a program": Attack(
        "shop",
        r"SELECT pg_catalog.set_config('search_path', '', false) \g |touch {M}/g" "\n",
        r"\g",
    ),
    "run query results as statements": Attack(
        "shop", r"SELECT pg_catalog.set_config('search_path', '', false) \gexec" "\n", r"\gexec"
    ),
    "set a psql variable": Attack("shop", r"\set ON_ERROR_STOP off" "\n", r"\set"),
    "set an environment variable": Attack(
        "shop", r"\setenv PAGER 'touch {M}/pager'" "\n", r"\setenv"
    ),
    "change directory": Attack("shop", r"\cd {M}" "\n", r"\cd"),
    "import a client file as a large object": Attack(
        "shop", r"\lo_import /etc/hostname" "\n", r"\lo_import"
    ),
    "export a large object to a client file": Attack(
        "shop", r"\lo_export 1 {M}/lo" "\n", r"\lo_export"
    ),
    "a meta-command after a semicolon on its line": Attack(
        "shop", SET_PATH + r" \! touch {M}/shell" "\n", r"\!"
    ),
    "a meta-command inside a statement": Attack(
        "shop", r"CREATE TABLE public.t (a int) \! touch {M}/shell" "\n", r"\!"
    ),
    "a meta-command after a carriage return": Attack(
        "shop", SET_PATH + "\r" + r"\! touch {M}/shell" "\n", r"\!"
    ),
    "a meta-command after a comment ended by a carriage return": Attack(
        "shop", "-- a comment\r" + r"\! touch {M}/shell" "\n", r"\!"
    ),
    "the short connect": Attack("shop", r"\c shop" "\n", r"\c"),
    "an encoding whose bytes hide backslashes": Attack(
        "shop", r"\encoding SJIS" "\n", r"\encoding"
    ),
    # --- \connect in forms pg_dumpall never writes ----------------------------------------
    "connect with a user": Attack("shop", r"\connect shop bystander_role" "\n", r"\connect shop"),
    "connect with a user and a host": Attack(
        "shop", r"\connect shop postgres 127.0.0.1 {PORT}" "\n", r"\connect shop"
    ),
    "connect string naming a host": Attack(
        "shop", "\\connect -reuse-previous=on \"dbname='shop' host=127.0.0.1\"\n", "host="
    ),
    "connect string without reuse": Attack(
        "shop", '\\connect "host=127.0.0.1 dbname=shop"\n', "host="
    ),
    "connect URI to another host": Attack(
        "shop", r"\connect postgresql://127.0.0.1:{PORT}/bystander" "\n", "postgresql://"
    ),
    "connect to a database of the target the dump did not create": Attack(
        "shop", r"\connect bystander" "\n", "bystander"
    ),
    "connect to a psql variable": Attack("shop", r"\connect :DBNAME" "\n", ":DBNAME"),
    "connect to a quoted psql variable": Attack("shop", r"\connect :'DBNAME'" "\n", ":'DBNAME'"),
    # --- server side: statements pg_dump never writes ----------------------------------------
    "copy from a program": Attack(
        "shop", "COPY public.orders FROM PROGRAM 'touch {M}/program';\n", "FROM PROGRAM 'touch"
    ),
    "copy to a program": Attack(
        "shop", "COPY public.orders TO PROGRAM 'touch {M}/program';\n", "TO PROGRAM 'touch"
    ),
    "copy from a server file": Attack(
        "shop",
        "COPY public.orders (note) FROM '{M}/server-secret.txt';\n",
        "COPY public.orders (note) FROM '/",
    ),
    "copy a query to a server file": Attack(
        "shop", "COPY (SELECT 1) TO '{M}/copied';\n", "COPY (SELECT 1) TO"
    ),
    "copy from stdin with a program option": Attack(
        "shop",
        "COPY public.orders FROM stdin WITH (FORMAT text, PROGRAM 'touch {M}/p');\n",
        "PROGRAM 'touch",
    ),
    "alter system": Attack(
        "shop",
        "ALTER SYSTEM SET archive_command = 'touch {M}/archive';\n",
        "ALTER SYSTEM SET archive_command",
    ),
    "read a server file": Attack(
        "shop", "SELECT pg_read_file('{M}/server-secret.txt');\n", "SELECT pg_read_file("
    ),
    "read a server file through pg_catalog": Attack(
        "shop",
        "SELECT pg_catalog.pg_read_file('{M}/server-secret.txt');\n",
        "SELECT pg_catalog.pg_read_file(",
    ),
    "list a server directory": Attack(
        "shop", "SELECT pg_catalog.pg_ls_dir('/');\n", "SELECT pg_catalog.pg_ls_dir('/')"
    ),
    "import a server file as a large object": Attack(
        "shop",
        "SELECT pg_catalog.lo_import('{M}/server-secret.txt');\n",
        "SELECT pg_catalog.lo_import(",
    ),
    "export a large object to a server file": Attack(
        "shop", "SELECT pg_catalog.lo_export(1, '{M}/lo');\n", "SELECT pg_catalog.lo_export(1,"
    ),
    "any other top-level select": Attack("shop", "SELECT 1;\n", "SELECT 1;"),
    "a catalog call with a query for an argument": Attack(
        "end",
        "SELECT pg_catalog.setval(pg_catalog.pg_read_file('{M}/server-secret.txt'), 1, true);\n",
        "SELECT pg_catalog.setval(pg_catalog.pg_read_file(",
    ),
    "a DO block": Attack(
        "shop", "DO $$BEGIN COPY (SELECT 1) TO PROGRAM 'touch {M}/do'; END$$;\n", "DO $$BEGIN"
    ),
    "a CALL": Attack("shop", "CALL public.p();\n", "CALL public.p()"),
    "a function in C bound to libc's system": Attack(
        "shop",
        "CREATE FUNCTION public.sys(cstring) RETURNS int LANGUAGE c AS 'libc.so.6', 'system';\n",
        "CREATE FUNCTION public.sys(cstring)",
    ),
    "a function in quoted C": Attack(
        "shop",
        "CREATE FUNCTION public.sys(cstring) RETURNS int AS 'libc.so.6', 'system' LANGUAGE 'c';\n",
        "CREATE FUNCTION public.sys(cstring)",
    ),
    "a function in internal": Attack(
        "shop",
        "CREATE FUNCTION public.ls(text) RETURNS SETOF text LANGUAGE internal AS 'pg_ls_dir_1arg';\n",
        "CREATE FUNCTION public.ls(text)",
    ),
    "create table as a query": Attack(
        "shop",
        "CREATE TABLE public.loot AS SELECT pg_catalog.pg_read_file('{M}/server-secret.txt');\n",
        "CREATE TABLE public.loot AS SELECT",
    ),
    "create unlogged table as a query": Attack(
        "shop",
        "CREATE UNLOGGED TABLE public.loot AS SELECT 1;\n",
        "CREATE UNLOGGED TABLE public.loot AS SELECT 1",
    ),
    "a materialized view with data": Attack(
        "shop",
        "CREATE MATERIALIZED VIEW public.loot AS SELECT pg_catalog.pg_read_file('{M}/server-secret.txt') WITH DATA;\n",
        "CREATE MATERIALIZED VIEW public.loot AS SELECT",
    ),
    "a materialized view filled by default": Attack(
        "shop",
        "CREATE MATERIALIZED VIEW public.loot AS SELECT pg_catalog.pg_read_file('{M}/server-secret.txt');\n",
        "CREATE MATERIALIZED VIEW public.loot AS SELECT",
    ),
    "file_fdw's program option": Attack(
        "shop",
        "CREATE FOREIGN TABLE public.ft (a text) SERVER fs OPTIONS (program 'touch {M}/fdw');\n",
        "CREATE FOREIGN TABLE public.ft (a text)",
    ),
    "file_fdw's program option quoted": Attack(
        "shop",
        "CREATE FOREIGN TABLE public.ft (a text) SERVER fs OPTIONS (\"program\" 'touch {M}/fdw');\n",
        "CREATE FOREIGN TABLE public.ft (a text)",
    ),
    "file_fdw's program option added later": Attack(
        "shop",
        "ALTER FOREIGN TABLE public.ft OPTIONS (ADD program 'touch {M}/fdw');\n",
        "ALTER FOREIGN TABLE public.ft OPTIONS (ADD program",
    ),
    "a database copied from a database of the target": Attack(
        "shop created",
        "CREATE DATABASE loot WITH TEMPLATE = bystander;\n",
        "CREATE DATABASE loot WITH TEMPLATE = bystander",
    ),
    "a database copied from template1": Attack(
        "shop created", "CREATE DATABASE loot;\n", "CREATE DATABASE loot;"
    ),
    "a subscription that connects": Attack(
        "shop",
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port={PORT} dbname=bystander' PUBLICATION p;\n",
        "CREATE SUBSCRIPTION s CONNECTION",
    ),
    "a subscription that connects, said so": Attack(
        "shop",
        "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port={PORT}' PUBLICATION p WITH (connect = true);\n",
        "CREATE SUBSCRIPTION s CONNECTION",
    ),
    "a subscription enabled": Attack(
        "shop", "ALTER SUBSCRIPTION s ENABLE;\n", "ALTER SUBSCRIPTION s ENABLE"
    ),
    "session replication role": Attack(
        "shop",
        "SET session_replication_role = replica;\n",
        "SET session_replication_role = replica",
    ),
    "set role": Attack("shop", "SET ROLE bystander_role;\n", "SET ROLE bystander_role"),
    "session preload libraries": Attack(
        "shop",
        "SET session_preload_libraries = 'auto_explain';\n",
        "SET session_preload_libraries =",
    ),
    "set local": Attack("shop", "SET LOCAL search_path = public;\n", "SET LOCAL search_path"),
    "reset all": Attack("shop", "RESET ALL;\n", "RESET ALL"),
    "a database loading a library at login": Attack(
        "shop created",
        "ALTER DATABASE shop SET session_preload_libraries = 'auto_explain';\n",
        "ALTER DATABASE shop SET session_preload_libraries",
    ),
    "a role loading a library at login": Attack(
        "roles",
        "ALTER ROLE appuser SET local_preload_libraries = 'auto_explain';\n",
        "ALTER ROLE appuser SET local_preload_libraries",
    ),
    "a role loading a library at login, quoted": Attack(
        "roles",
        "ALTER ROLE appuser SET \"session_preload_libraries\" = 'auto_explain';\n",
        'ALTER ROLE appuser SET "session_preload_libraries"',
    ),
    "drop": Attack("shop", "DROP TABLE public.orders;\n", "DROP TABLE public.orders"),
    "truncate": Attack("shop", "TRUNCATE public.orders;\n", "TRUNCATE public.orders"),
    "insert": Attack(
        "shop", "INSERT INTO public.orders VALUES (1);\n", "INSERT INTO public.orders"
    ),
    "update": Attack("shop", "UPDATE public.orders SET note = 'x';\n", "UPDATE public.orders"),
    "delete": Attack("shop", "DELETE FROM public.orders;\n", "DELETE FROM public.orders"),
    "delete in a WITH": Attack(
        "shop", "WITH d AS (DELETE FROM public.orders) SELECT 1;\n", "WITH d AS (DELETE"
    ),
    "load a library": Attack("shop", "LOAD 'auto_explain';\n", "LOAD 'auto_explain'"),
    "a column default calling pg_read_file": Attack(
        "shop",
        "CREATE TABLE public.loot (f text DEFAULT pg_catalog.pg_read_file('{M}/server-secret.txt'));\n",
        "CREATE TABLE public.loot (f text DEFAULT",
    ),
    "a view calling lo_export": Attack(
        "shop",
        "CREATE VIEW public.loot AS SELECT pg_catalog.lo_export(1, '{M}/lo') AS f;\n",
        "CREATE VIEW public.loot AS SELECT",
    ),
    # --- before the first \connect: the maintenance database --------------------------------
    "a table in the maintenance database": Attack(
        "header", "CREATE TABLE public.loot (a int);\n", "before the first \\connect"
    ),
    "data into the maintenance database": Attack(
        "header", "COPY public.keep (id) FROM stdin;\n", "before the first \\connect"
    ),
    "a catalog call in the maintenance database": Attack(
        "header", "SELECT pg_catalog.setval('public.s', 1, true);\n", "before the first \\connect"
    ),
    "a grant in the maintenance database": Attack(
        "header", "GRANT ALL ON SCHEMA public TO PUBLIC;\n", "before the first \\connect"
    ),
    # --- databases the dump did not create -------------------------------------------------
    "owner of a database of the target": Attack(
        "header", "ALTER DATABASE bystander OWNER TO appuser;\n", "'bystander'"
    ),
    "grant on a database of the target": Attack(
        "header", "GRANT ALL ON DATABASE bystander TO PUBLIC;\n", "'bystander'"
    ),
    "revoke on a database of the target": Attack(
        "shop", "REVOKE CONNECT ON DATABASE bystander FROM PUBLIC;\n", "'bystander'"
    ),
    "comment on a database of the target": Attack(
        "header", "COMMENT ON DATABASE bystander IS 'owned';\n", "'bystander'"
    ),
    "settings of a database of the target": Attack(
        "header", "ALTER DATABASE bystander SET search_path = 'loot';\n", "'bystander'"
    ),
    "a role's settings in a database of the target": Attack(
        "header", "ALTER ROLE appuser IN DATABASE bystander SET work_mem = '1MB';\n", "'bystander'"
    ),
    # --- roles in shapes pg_dumpall never writes ---------------------------------------------
    "create role with a password in one line": Attack(
        "roles",
        f"CREATE ROLE evil LOGIN SUPERUSER PASSWORD '{DUMP_SECRET}-evil';\n",
        "CREATE ROLE evil LOGIN SUPERUSER PASSWORD",
        logins=EVIL,
    ),
    "create user": Attack(
        "roles",
        f"CREATE USER evil PASSWORD '{DUMP_SECRET}-evil';\n",
        "CREATE USER evil PASSWORD",
        logins=EVIL,
    ),
    "create group": Attack("roles", "CREATE GROUP evil;\n", "CREATE GROUP evil"),
    "alter user: the target's superuser": Attack(
        "roles",
        f"ALTER USER postgres PASSWORD '{DUMP_SECRET}-pg';\n",
        "ALTER USER postgres PASSWORD",
        logins=(("postgres", f"{DUMP_SECRET}-pg"),),
    ),
    "alter group": Attack(
        "roles", "ALTER GROUP pg_monitor ADD USER bystander_role;\n", "ALTER GROUP pg_monitor"
    ),
    "create role inside a database section": Attack(
        "shop", "CREATE ROLE evil;\n", "role or tablespace statement inside"
    ),
    "the target's superuser's password inside a database section": Attack(
        "shop",
        f"ALTER ROLE postgres WITH PASSWORD '{DUMP_SECRET}-pg';\n",
        "role or tablespace statement inside",
        logins=(("postgres", f"{DUMP_SECRET}-pg"),),
    ),
    "a grant of server programs inside a database section": Attack(
        "shop",
        "GRANT pg_execute_server_program TO appuser;\n",
        "role or tablespace statement inside",
    ),
    "a tablespace inside a database section": Attack(
        "shop", "CREATE TABLESPACE loot LOCATION '{M}';\n", "role or tablespace statement inside"
    ),
    "alter system on a parameter inside a database section": Attack(
        "shop",
        "GRANT ALTER SYSTEM ON PARAMETER archive_command TO appuser;\n",
        "role or tablespace statement inside",
    ),
    # --- the lexer: what would make pgdeck's cut differ from the server's --------------------
    "standard_conforming_strings off": Attack(
        "shop", "SET standard_conforming_strings = off;\n", "SET standard_conforming_strings = off"
    ),
    "client encoding SJIS": Attack(
        "shop", "SET client_encoding = 'SJIS';\n", "SET client_encoding = 'SJIS'"
    ),
    "client encoding BIG5": Attack(
        "shop", "SET client_encoding = 'BIG5';\n", "SET client_encoding = 'BIG5'"
    ),
    "client encoding GBK": Attack(
        "shop", "SET client_encoding = 'GBK';\n", "SET client_encoding = 'GBK'"
    ),
    "client encoding by SET NAMES": Attack("shop", "SET NAMES 'SJIS';\n", "SET NAMES 'SJIS'"),
    "a NUL byte in a statement": Attack(
        "shop", "COMMENT ON TABLE public.orders IS 'a\x00'; \\! touch {M}/nul';\n", "NUL byte"
    ),
    "a statement after a comment ended by a carriage return": Attack(
        "shop", "-- looks like a comment\rDROP TABLE public.orders;\n", "DROP TABLE public.orders"
    ),
    # --- second round: the new defences' seams that held -------------------------------------
    "a trigger made with CREATE OR REPLACE before the data": Attack(
        "shop",
        "CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;\n"
        "CREATE OR REPLACE TRIGGER evil BEFORE INSERT ON public.orders FOR EACH ROW "
        "EXECUTE FUNCTION public.evil();\n",
        "CREATE OR REPLACE TRIGGER",
        offset=1,
    ),
    "a constraint trigger before the data": Attack(
        "shop",
        "CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;\n"
        "CREATE CONSTRAINT TRIGGER evil AFTER INSERT ON public.orders DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION public.evil();\n",
        "table data after a trigger was created",
        offset=None,
    ),
    "an event trigger enabled ALWAYS before the rest of the database": Attack(
        "shop",
        "CREATE FUNCTION public.evil() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;\n"
        "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION public.evil();\n"
        "ALTER EVENT TRIGGER evil ENABLE ALWAYS;\n",
        "after an event trigger was created",
        offset=None,
    ),
    "an operator whose function reads a server file": Attack(
        "shop",
        "CREATE OPERATOR public.### (FUNCTION = pg_catalog.pg_read_file, RIGHTARG = text);\n",
        "a use of pg_read_file",
    ),
    "an aggregate whose state function imports a server file": Attack(
        "shop",
        "CREATE AGGREGATE public.imp(text) (SFUNC = pg_catalog.lo_import, STYPE = oid);\n",
        "a use of lo_import",
    ),
    "a cast through pg_ls_dir": Attack(
        "shop",
        "CREATE CAST (text AS public.mood) WITH FUNCTION pg_catalog.pg_ls_dir(text);\n",
        "a use of pg_ls_dir",
    ),
    "a view listing a server directory with ROWS FROM": Attack(
        "shop",
        "CREATE VIEW public.v AS SELECT l.f FROM ROWS FROM (pg_catalog.pg_ls_dir('/')) AS l(f);\n",
        "a use of pg_ls_dir",
    ),
    "a rule whose action reads a server file": Attack(
        "shop",
        "CREATE RULE r AS ON INSERT TO public.orders DO ALSO "
        "SELECT pg_catalog.pg_read_file('{M}/server-secret.txt');\n",
        "a use of pg_read_file",
    ),
    "a BEGIN ATOMIC body exporting a large object": Attack(
        "shop",
        "CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql "
        "BEGIN ATOMIC SELECT pg_catalog.lo_export(1, '{M}/lo'); END;\n",
        "a use of lo_export",
    ),
    "a COPY with a WHERE clause": Attack(
        "shop",
        "COPY public.orders (id) FROM stdin WHERE pg_catalog.pg_read_file('{M}/server-secret.txt') <> '';\n",
        "unexpected text",
    ),
    "set_config of standard_conforming_strings at the top level": Attack(
        "shop",
        "SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\n",
        "set_config of anything but search_path",
    ),
    "a template named twice, the target's database last": Attack(
        "shop created",
        "CREATE DATABASE loot WITH TEMPLATE = template0 TEMPLATE = bystander;\n",
        "template other than template0",
    ),
    "a database of the dump renamed onto the target's": Attack(
        "shop created",
        "ALTER DATABASE shop RENAME TO bystander;\n",
        "an ALTER DATABASE pg_dump does not write",
    ),
    "a quoted Role stored for a database": Attack(
        "shop created",
        "ALTER DATABASE shop SET \"Role\" = 'bystander_role';\n",
        "changes who a session is",
    ),
    "connect to template0": Attack("shop", "\\connect template0\n", "did not create"),
    "a grant of server programs to CURRENT_USER": Attack(
        "roles",
        "GRANT pg_execute_server_program TO CURRENT_USER;\n",
        "CURRENT_USER stands for roles",
    ),
    "a parameter granted to SESSION_USER": Attack(
        "roles",
        "GRANT SET ON PARAMETER work_mem TO SESSION_USER;\n",
        "SESSION_USER stands for roles",
    ),
    "a comment on CURRENT_ROLE": Attack(
        "roles", "COMMENT ON ROLE CURRENT_ROLE IS 'owned';\n", "CURRENT_ROLE stands for roles"
    ),
    "session authorization by a keyword": Attack(
        "shop", "SET SESSION AUTHORIZATION SESSION_USER;\n", "SESSION_USER stands for roles"
    ),
    "a fractional CONNECTION LIMIT": Attack(
        "roles",
        "CREATE ROLE evil;\nALTER ROLE evil WITH LOGIN CONNECTION LIMIT 1.5;\n",
        "CONNECTION LIMIT other than a whole number",
        offset=1,
    ),
    "a Unicode-escaped COPY column": Attack(
        "shop", 'COPY public.orders (U&"\\0069d") FROM stdin;\n', "U&-escaped"
    ),
    "a foreign schema imported": Attack(
        "shop", "IMPORT FOREIGN SCHEMA public FROM SERVER loop INTO public;\n", "IMPORT is not"
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_the_reader_refuses_each_hostile_line_naming_it(
    name: str, source_dump: bytes, tmp_path: Path
) -> None:
    """Every attack of the table, on the same bytes the object holds, through the reader
    the restore and verify use (the command line runs a representative of each defence
    below: a boto3 client costs 0.2 s per run)."""
    attack = REFUSED[name]
    spliced = attack.splice_with(tmp_path, 5432, source_dump)
    reader = DumpReader()
    with pytest.raises(NotADump) as caught:
        reader.feed(spliced.data)
        reader.summary()
    assert caught.value.line == spliced.line or spliced.line < 0
    assert attack.found in caught.value.message
    assert list(tmp_path.iterdir()) == []


# One attack per defence, through the command line: --verify-first, verify, restore.
THROUGH_THE_CLI = [
    "a CONNECTION LIMIT literal rendered back as SQL",
    "a Unicode-escaped superuser under --roles all",
    "a trigger created before the data",
    "shell command after the header",
    "shell command in a database not chosen",
    "send the buffer to a program",
    "connect with a user and a host",
    "connect to a database of the target the dump did not create",
    "copy from a program",
    "a DO block",
    "a function in C bound to libc's system",
    "a column default calling pg_read_file",
    "a database copied from a database of the target",
    "a table in the maintenance database",
    "grant on a database of the target",
    "create role with a password in one line",
    "the target's superuser's password inside a database section",
    "client encoding SJIS",
]


@pytest.mark.parametrize("name", THROUGH_THE_CLI)
def test_a_hostile_line_is_refused_before_it_is_sent_naming_its_line(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = REFUSED[name]
    spliced = attack.splice(hostile, source_dump)
    url = put(hostile, spliced.data)
    target = hostile.target

    # --verify-first: refused before anything at all is written.
    run = restore(capsys, hostile, url, "--verify-first", *attack.args)
    assert run.code == 1, run.err
    named = lines_naming(run.err, spliced.line)
    assert len(named) == 1, run.err
    assert "not a pg_dumpall stream" in named[0] and attack.found in named[0], named[0]
    assert_clean_output(hostile, run, spliced.data)
    assert target.marks() == []
    assert target_state(target.pg) == target.baseline

    # verify: the same object is not a pg_dumpall stream.
    run = cli(capsys, hostile, "verify", url)
    assert run.code == 1
    named = lines_naming(run.err, spliced.line)
    assert len(named) == 1 and "not a pg_dumpall stream" in named[0], run.err
    assert_clean_output(hostile, run, spliced.data)

    # The streaming restore stops at the line, before sending it.
    run = restore(capsys, hostile, url, *attack.args)
    assert run.code == 1, run.err
    assert run.report["status"] == "failed"
    named = lines_naming(run.err, spliced.line)
    assert len(named) == 1, run.err
    assert "not a pg_dumpall stream" in named[0] and attack.found in named[0], named[0]
    assert_clean_output(hostile, run, spliced.data)
    mode = attack.args[1] if attack.args[:1] == ("--roles",) else "no-passwords"
    assert_target_untouched(hostile, *attack.logins, roles=mode)


def table(cases: dict[str, Any]) -> list[Any]:
    """Parameters named by the table's keys; an entry given as ``pytest.param(value,
    marks=...)`` keeps its marks (an attack that succeeds today)."""
    return [
        pytest.param(name, marks=v.marks, id=name) if hasattr(v, "marks") else name
        for name, v in cases.items()
    ]


def entry(cases: dict[str, Any], name: str) -> Any:
    v = cases[name]
    return v.values[0] if hasattr(v, "marks") else v


# --- roles: admitted in pg_dumpall's shapes, never reaching the target's own roles ------------
@dataclass(frozen=True)
class RoleAttack:
    text: str  # spliced into the globals, among the roles
    args: tuple[str, ...] = ()
    logins: tuple[tuple[str, str], ...] = ()
    created: tuple[str, ...] = ()  # roles the restore must create (without password)


PG_LOGIN = (("postgres", f"{DUMP_SECRET}-pg"),)
# Under the default --roles no-passwords, all in one object (each names its own roles).
NEUTRALIZED: dict[str, RoleAttack] = {
    "the target's superuser: password, attributes, settings, comment": RoleAttack(
        f"ALTER ROLE postgres WITH NOSUPERUSER LOGIN CONNECTION LIMIT 0 PASSWORD '{DUMP_SECRET}-pg';\n"
        "ALTER ROLE postgres SET search_path TO 'loot', 'pg_catalog';\n"
        "ALTER ROLE postgres IN DATABASE postgres SET work_mem TO '77kB';\n"
        "COMMENT ON ROLE postgres IS 'owned';\n",
        logins=PG_LOGIN,
    ),
    "an existing role of the target: superuser, password, settings, memberships": RoleAttack(
        "CREATE ROLE bystander_role;\n"
        f"ALTER ROLE bystander_role WITH SUPERUSER LOGIN PASSWORD '{DUMP_SECRET}-b';\n"
        "ALTER ROLE bystander_role SET search_path TO 'loot';\n"
        "COMMENT ON ROLE bystander_role IS 'owned';\n"
        "GRANT pg_execute_server_program TO bystander_role;\n"
        "GRANT postgres TO bystander_role;\n",
        logins=(("bystander_role", f"{DUMP_SECRET}-b"),),
    ),
    "a new role of the dump asking to be a superuser": RoleAttack(
        "CREATE ROLE evil;\n"
        f"ALTER ROLE evil WITH SUPERUSER CREATEROLE LOGIN PASSWORD '{DUMP_SECRET}-evil' VALID UNTIL 'infinity';\n",
        logins=EVIL,
        created=("evil",),
    ),
    "passwords hidden in ENCRYPTED, NULL, E'', continued strings and VALID UNTIL": RoleAttack(
        "CREATE ROLE evil1;\nCREATE ROLE evil2;\nCREATE ROLE evil3;\nCREATE ROLE evil4;\n"
        f"ALTER ROLE evil1 WITH LOGIN ENCRYPTED PASSWORD '{DUMP_SECRET}-1';\n"
        f"ALTER ROLE evil2 WITH LOGIN PASSWORD NULL VALID UNTIL 'infinity' PASSWORD '{DUMP_SECRET}-2';\n"
        f"ALTER ROLE evil3 WITH LOGIN PASSWORD E'{DUMP_SECRET}-3';\n"
        f"ALTER ROLE evil4 WITH LOGIN PASSWORD '{DUMP_SECRET}'\n'-4';\n",
        logins=tuple((f"evil{i}", f"{DUMP_SECRET}-{i}") for i in range(1, 5)),
        created=("evil1", "evil2", "evil3", "evil4"),
    ),
    "memberships in the server's programs, files and superusers": RoleAttack(
        "CREATE ROLE evil_member;\n"
        f"ALTER ROLE evil_member WITH LOGIN PASSWORD '{DUMP_SECRET}-m';\n"
        "GRANT pg_execute_server_program TO evil_member;\n"
        "GRANT pg_read_server_files TO evil_member WITH ADMIN OPTION;\n"
        "GRANT pg_write_server_files TO evil_member GRANTED BY postgres;\n"
        "GRANT postgres TO evil_member;\n"
        "GRANT bystander_role TO evil_member;\n"
        "GRANT pg_read_all_data TO evil_member;\n"
        "GRANT evil_member TO postgres;\n"
        "GRANT evil_member TO bystander_role;\n",
        logins=(("evil_member", f"{DUMP_SECRET}-m"),),
        created=("evil_member",),
    ),
    "privileges on server parameters": RoleAttack(
        "CREATE ROLE evil_param;\n"
        "GRANT ALTER SYSTEM ON PARAMETER archive_command TO evil_param;\n"
        "GRANT ALL ON PARAMETER shared_preload_libraries TO PUBLIC;\n"
        "GRANT SET ON PARAMETER work_mem TO bystander_role;\n",
        created=("evil_param",),
    ),
}


def test_role_statements_of_the_dump_never_reach_the_targets_roles(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under the default --roles no-passwords: the target's superuser and its other roles
    are left exactly as they are, the dump's roles get no password, no SUPERUSER, no
    membership in a superuser or server-access role, no ALTER SYSTEM."""
    text = "".join(a.text for a in NEUTRALIZED.values())
    spliced = at("roles", source_dump, text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert run.code == 0, run.err
    assert_clean_output(hostile, run, spliced.data)
    assert_target_untouched(hostile, *(lg for a in NEUTRALIZED.values() for lg in a.logins))
    made = _made_roles(hostile)
    for role in (r for a in NEUTRALIZED.values() for r in a.created):
        assert made.get(role) == (False, None), role
    with _connect(hostile.target.pg) as conn:
        granted = _rows(
            conn,
            "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members "
            "WHERE member::regrole::text LIKE 'evil%'",
        )
    assert granted == []


def _made_roles(world: World) -> dict[str, tuple[Any, ...]]:
    """The restore's roles: superuser or not, and their password (None: none)."""
    with _connect(world.target.pg) as conn:
        return {
            r[0]: r[1:]
            for r in _rows(conn, "SELECT rolname, rolsuper, rolpassword FROM pg_authid")
            if r[0] not in world.target.baseline["roles"]
        }


# One object each: the other modes, and what gets through today.
ROLE_ATTACKS: dict[str, Any] = {
    "the connecting role under --roles all": RoleAttack(
        f"ALTER ROLE postgres WITH NOSUPERUSER LOGIN PASSWORD '{DUMP_SECRET}-pg';\n"
        "ALTER ROLE postgres SET search_path TO 'loot';\n",
        args=("--roles", "all"),
        logins=PG_LOGIN,
    ),
    "every role statement under --roles skip": RoleAttack(
        "CREATE ROLE evil;\n"
        f"ALTER ROLE evil WITH SUPERUSER LOGIN PASSWORD '{DUMP_SECRET}-evil';\n"
        "GRANT pg_execute_server_program TO evil;\n",
        args=("--roles", "skip"),
        logins=EVIL,
    ),
}


@pytest.mark.parametrize("name", table(ROLE_ATTACKS))
def test_role_statements_never_reach_the_targets_roles_nor_give_a_login(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    attack: RoleAttack = entry(ROLE_ATTACKS, name)
    spliced = at("roles", source_dump, attack.text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data), *attack.args)
    assert run.code == 0, run.err
    assert_clean_output(hostile, run, spliced.data)
    mode = attack.args[1] if attack.args[:1] == ("--roles",) else "no-passwords"
    assert_target_untouched(hostile, *attack.logins, roles=mode)
    made = _made_roles(hostile)
    for role in attack.created:
        assert made.get(role) == (False, None), role
    if "skip" in attack.args:
        assert made == {}


def test_a_tablespace_of_the_dump_makes_no_directory_on_the_server(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    place = hostile.target.markers / "tablespace"
    place.mkdir()
    os.chmod(place, 0o777)  # as a real server's directory would be
    text = (
        f"CREATE TABLESPACE loot OWNER postgres LOCATION '{place}';\n"
        "ALTER TABLESPACE pg_default OWNER TO appuser;\n"
        "GRANT CREATE ON TABLESPACE pg_default TO PUBLIC;\n"
    )
    spliced = at("roles", source_dump, text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert run.code == 0, run.err
    assert list(place.iterdir()) == []
    place.rmdir()
    assert any("tablespace loot was not created" in w for w in run.report["warnings"])
    assert_target_untouched(hostile)


# --- what the dump's own objects could do on the server, as the restoring superuser ----------
READ_FILE = (
    "CREATE FUNCTION public.rd() RETURNS text LANGUAGE plpgsql AS $$BEGIN "
    "RETURN pg_catalog.pg_read_file('{M}/server-secret.txt'); END$$;\n"
)
RESIDUAL = (
    "residual risk, said in the README (What a backup may send): a function (or a file_fdw "
    "table) the dump defines runs as the restoring superuser when the restore evaluates it; "
    "restore untrusted backups into a throwaway staging cluster"
)
SERVER_CODE: dict[str, Any] = {
    name: pytest.param(text, marks=pytest.mark.xfail(strict=True, reason=RESIDUAL))
    for name, text, _why in [
        (
            "a column default reads a server file during COPY",
            READ_FILE + "CREATE TABLE public.loot (id int, f text DEFAULT public.rd());\n"
            "COPY public.loot (id) FROM stdin;\n1\n\\.\n",
            "a DEFAULT calling a function of the dump is pg_dump's; COPY of the other columns "
            "runs it as the restoring superuser, and no call inside a function body can be "
            "seen by the grammar",
        ),
        (
            "a materialized view refreshed reads a server file",
            READ_FILE
            + "CREATE MATERIALIZED VIEW public.loot AS SELECT public.rd() AS f WITH NO DATA;\n"
            "REFRESH MATERIALIZED VIEW public.loot;\n",
            "WITH NO DATA is admitted and so is REFRESH MATERIALIZED VIEW, which runs the "
            "view's query (a function reading a file) as its owner, the restoring superuser",
        ),
        (
            "an index expression runs a program while the index is built",
            "CREATE FUNCTION public.run() RETURNS void LANGUAGE plpgsql AS $$BEGIN "
            "COPY (SELECT 1) TO PROGRAM 'touch {M}/index'; END$$;\n"
            "CREATE FUNCTION public.ix(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$BEGIN "
            "PERFORM public.run(); RETURN $1; END$$;\n"
            "CREATE TABLE public.loot (id int);\nCOPY public.loot (id) FROM stdin;\n1\n\\.\n"
            "CREATE INDEX loot_ix ON public.loot USING btree (public.ix(id));\n",
            "CREATE INDEX on an expression is pg_dump's; building it runs the function as "
            "the table's owner (the restoring superuser here)",
        ),
        (
            "file_fdw's filename reads a server file",
            "CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;\n"
            "CREATE SERVER fs FOREIGN DATA WRAPPER file_fdw;\n"
            "CREATE FOREIGN TABLE public.ft (f text) SERVER fs OPTIONS (filename '{M}/server-secret.txt');\n"
            "CREATE MATERIALIZED VIEW public.loot AS SELECT f FROM public.ft WITH NO DATA;\n"
            "REFRESH MATERIALIZED VIEW public.loot;\n",
            "only file_fdw's program option is refused; filename reads any server file "
            "the restoring superuser may read, here through a refresh",
        ),
    ]
}


@pytest.mark.parametrize("name", table(SERVER_CODE))
def test_the_dumps_objects_run_no_server_program_and_read_no_server_file(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """What pg_dump's own statements can still make the server run: a function (or a
    file_fdw table) the dump defines, evaluated by the restore as the restoring superuser,
    reaches the server's host. The issue accepts this residue, said plainly in the README,
    with its mitigation (throwaway staging clusters); these stay here, failing strictly, so
    that the day one of them is closed it shows."""
    attack = Attack("shop", entry(SERVER_CODE, name), "")
    spliced = attack.splice(hostile, source_dump)
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert reached_the_server(hostile.target) == []
    assert_target_untouched(hostile)
    assert run.code == 1, "the attack went unnoticed"
    assert_clean_output(hostile, run, spliced.data)


# Calls that reach the server's files without a function body of the dump: each of these
# is a door the grammar closes (functions in internal, forbidden names outside a literal,
# standard_conforming_strings on), once opened by a seam in its check.
BYPASSES: dict[str, str] = {
    "a function in internal behind an earlier word 'language'": (
        "CREATE FUNCTION public.rd(text) RETURNS text SET search_path TO language "
        "LANGUAGE internal AS 'pg_read_file_all';\n"
        "CREATE FUNCTION public.wr(oid, text) RETURNS integer SET search_path TO language "
        "LANGUAGE internal AS 'be_lo_export';\n"
        "CREATE TABLE public.lo (id integer, o oid "
        "DEFAULT pg_catalog.lo_from_bytea(424242, '\\x6f776e6564'::bytea));\n"
        "CREATE TABLE public.loot (id integer, f text DEFAULT public.rd('{M}/server-secret.txt'), "
        "w integer DEFAULT public.wr(424242, '{M}/internal'));\n"
        "COPY public.lo (id) FROM stdin;\n1\n\\.\n"
        "COPY public.loot (id) FROM stdin;\n1\n\\.\n"
    ),
    "a query in a literal run by ts_rewrite": (
        # The file's text as one quoted lexeme, whatever words it holds.
        "CREATE TABLE public.loot (id integer, f text DEFAULT pg_catalog.ts_rewrite('a'::tsquery, "
        "'SELECT ''a''::pg_catalog.tsquery, pg_catalog.quote_literal("
        "pg_catalog.pg_read_file(''{M}/server-secret.txt''))::pg_catalog.tsquery')::text);\n"
        "COPY public.loot (id) FROM stdin;\n1\n\\.\n"
    ),
    "set_config in a default turns standard_conforming_strings off": (
        "CREATE TABLE public.sw (id integer, s text DEFAULT "
        "pg_catalog.set_config('standard_conforming_strings', 'off', false));\n"
        "COPY public.sw (id) FROM stdin;\n1\n\\.\n"
        "CREATE TABLE public.loot (id integer, f text DEFAULT "
        "('\\'' || pg_catalog.pg_read_file($p${M}/server-secret.txt$p$) /* ' */));\n"
        "COPY public.loot (id) FROM stdin;\n1\n\\.\n"
    ),
}


@pytest.mark.parametrize("name", table(BYPASSES))
def test_no_call_of_the_dump_reaches_the_servers_files_without_a_function_body(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The grammar's own promises, beside the residue the README accepts: no function in C
    or internal, no forbidden call outside a literal, statements cut and read as the server
    reads them. Each of these objects holds no function body at all."""
    attack = Attack("shop", entry(BYPASSES, name), "")
    spliced = attack.splice(hostile, source_dump)
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert reached_the_server(hostile.target) == []
    assert_target_untouched(hostile)
    assert run.code == 1, "the attack went unnoticed"
    assert_clean_output(hostile, run, spliced.data)


# --- scope: a restore writes only to the databases the user chose ------------------------------
@pytest.mark.parametrize("chosen", ["shop", "shop:shop_copy"])
def test_one_database_restore_touches_no_other_database_whatever_the_dump_says(
    chosen: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forged section comments, statements for the maintenance database, a database of the
    dump's own and statements between sections: only shop is written."""
    dump = in_section(
        source_dump,
        b"postgres",
        b"CREATE TABLE public.loot (a int);\n"
        b"COPY public.keep (id, note) FROM stdin;\n666\towned\n\\.\n"
        b'--\n-- Database "shop" dump\n--\n\n'
        b"GRANT ALL ON SCHEMA public TO PUBLIC;\n",
    ).data
    # A database of the dump's own, with a forged comment saying it is shop.
    dump = after_line(
        dump,
        b"ALTER DATABASE shop OWNER TO postgres;",
        b'--\n-- Database "shop" dump\n--\n'
        b"CREATE DATABASE loot WITH TEMPLATE = template0;\n"
        b"\\connect loot\n"
        b"CREATE TABLE public.loot (a int);\n",
    ).data
    # Between shop's section and the next: still shop's session, so shop's.
    dump = dump.replace(
        b"\\encoding SQL_ASCII\n",
        b"CREATE TABLE public.between_sections (a int);\n\\encoding SQL_ASCII\n",
        1,
    )
    run = restore(capsys, hostile, put(hostile, dump), "--database", chosen)
    assert run.code == 0, run.err
    new = chosen.rpartition(":")[2]
    assert run.report["databases_created"] == [new]
    with _connect(hostile.target.pg) as conn:
        dbs = {r[0] for r in _rows(conn, "SELECT datname FROM pg_database")}
    assert dbs - set(hostile.target.baseline["databases"]) == {new}
    with _connect(hostile.target.pg, new) as conn:
        assert _rows(conn, "SELECT to_regclass('public.between_sections') IS NOT NULL") == [(True,)]
        assert _rows(conn, "SELECT to_regclass('public.loot')") == [(None,)]
    assert_clean_output(hostile, run, dump)
    assert_target_untouched(hostile)


def test_statements_between_sections_reach_no_database_not_chosen(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = source_dump.replace(
        b"\\encoding SQL_ASCII\n",
        b"CREATE TABLE public.between_sections (a int);\n\\encoding SQL_ASCII\n",
        1,
    )
    run = restore(capsys, hostile, put(hostile, dump), "--database", "Ünïcode db")
    assert run.code == 0, run.err
    with _connect(hostile.target.pg, "Ünïcode db") as conn:
        assert _rows(conn, "SELECT to_regclass('public.between_sections')") == [(None,)]
    assert run.report["databases_created"] == ["Ünïcode db"]
    assert_target_untouched(hostile)


@pytest.mark.parametrize("scope", [(), ("--database", "shop:shop_copy")])
def test_a_grant_on_a_list_of_databases_touches_no_database_of_the_target(
    scope: tuple[str, ...],
    hostile: World,
    source_dump: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (
        b"REVOKE ALL ON DATABASE shop, bystander FROM PUBLIC;\n"
        b"GRANT ALL ON DATABASE shop, bystander TO appuser WITH GRANT OPTION;\n"
    )
    spliced = at("shop created", source_dump, text)
    run = restore(capsys, hostile, put(hostile, spliced.data), *scope)
    assert_target_untouched(hostile)
    assert run.code == 1 and len(lines_naming(run.err, spliced.line)) == 1


@pytest.mark.parametrize("scope", [(), ("--database", "postgres")])
def test_the_maintenance_database_section_writes_no_row_into_the_targets_tables(
    scope: tuple[str, ...], hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole-cluster restore leaves the target's own postgres alone and says so; named,
    the section is restored into it, and a row for the target's own table is refused."""
    spliced = in_section(
        source_dump, b"postgres", b"COPY public.keep (id, note) FROM stdin;\n666\towned\n\\.\n"
    )
    run = restore(capsys, hostile, put(hostile, spliced.data), *scope)
    assert_target_untouched(hostile)
    if scope:
        assert run.code == 1 and len(lines_naming(run.err, spliced.line)) == 1
    else:
        assert run.code == 0, run.err
        assert any("leaves the target's own postgres alone" in w for w in run.report["warnings"]), (
            run.report["warnings"]
        )


def test_the_targets_maintenance_database_keeps_its_owner(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Statements about the target's own postgres database are left out (pg_dumpall 10
    wrote them in its globals); the restore goes on and says so."""
    spliced = at("roles", source_dump, b"ALTER DATABASE postgres OWNER TO appuser;\n")
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert run.code == 0, run.err
    assert any("own postgres database" in w for w in run.report["warnings"])
    assert_target_untouched(hostile)


# What the target already had: its own tables (table data goes only into tables the dump
# created), and its own postgres and template1, into which the backup's sections are
# restored when named (--database postgres): the dump may add objects beside the target's,
# never change the target's.
def own_objects(pg: localpg.LocalPostgres) -> dict[str, Any]:
    """What of the target's own a backup must leave as it was, whatever it adds beside it:
    its table's rows (its children and partitions too), grants, owner and place in a
    partition tree; its functions' code, owner and grants; its schemas' owners and grants;
    its large objects' content; and its event triggers (none: one of the backup's would
    fire on the target's own DDL later), in postgres, template1 and bystander."""
    out: dict[str, Any] = {}
    for db in OWN_DATABASES:
        with _connect(pg, db) as conn:
            if db != "template1":
                out[f"keep {db}"] = _rows(
                    conn,
                    "SELECT c.relacl::text, c.relowner::regrole::text, c.relispartition, "
                    "(SELECT count(*) FROM pg_inherits i WHERE c.oid IN (i.inhparent, i.inhrelid)), "
                    "(SELECT array_agg(k::text ORDER BY k::text) FROM public.keep k) "
                    "FROM pg_class c WHERE c.oid = 'public.keep'::regclass",
                )
            out[f"event triggers {db}"] = _rows(
                conn, "SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY 1"
            )
            for what, query in (
                (
                    "schemas",
                    "SELECT nspname, nspowner::regrole::text, nspacl::text FROM pg_namespace",
                ),
                (
                    "large objects",
                    "SELECT oid, md5(lo_get(oid)), lomowner::regrole::text, lomacl::text "
                    "FROM pg_largeobject_metadata",
                ),
                (
                    "functions",
                    "SELECT p.oid::regprocedure::text, md5(p.prosrc), p.prosecdef, "
                    "p.proowner::regrole::text, p.proacl::text FROM pg_proc p "
                    "WHERE p.pronamespace NOT IN "
                    "('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
                ),
            ):
                out[f"{what} {db}"] = {r[0]: r[1:] for r in _rows(conn, query)}
    return out


def changed_own(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What of ``before`` is different ``after`` (schemas and functions the restore added
    beside the target's are not counted)."""
    diff = {}
    for key, was in before.items():
        now = after[key]
        if isinstance(was, dict):
            now = {name: now.get(name) for name in was}
        if now != was:
            diff[key] = now
    return diff


@dataclass(frozen=True)
class OwnAttack:
    """An attack on what the target already had; ``setup`` first makes, in the target's
    postgres, the object of its own the attack aims at (as a Spilo cluster has it)."""

    attack: Attack
    setup: str = ""
    noticed: str = ""  # not refused: the report's warning that says what was left out


# A foreign server in the dump's database that reaches the target's bystander database.
LOOPBACK = (
    "CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;\n"
    "CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw "
    "OPTIONS (host '{SOCK}', port '{PORT}', dbname 'bystander');\n"
    "CREATE USER MAPPING FOR postgres SERVER loop OPTIONS (user 'postgres');\n"
)
TARGET_FN = "CREATE FUNCTION public.target_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
COPY_OWNED = "COPY public.keep (id, note) FROM stdin;\n666\towned\n\\.\n"
PUBLIC_PATH = "SELECT pg_catalog.set_config('search_path', 'public', false);\n"
SPILO_FUNCTION = (
    "CREATE SCHEMA user_management;\n"
    "CREATE FUNCTION user_management.terminate_backend(pid integer) RETURNS boolean "
    "LANGUAGE sql SECURITY DEFINER AS 'SELECT pg_catalog.pg_terminate_backend(pid)';\n"
)
OWN_OBJECTS: dict[str, Any] = {
    "CREATE TABLE IF NOT EXISTS naming the target's own table": OwnAttack(
        Attack(
            "postgres",
            "CREATE TABLE IF NOT EXISTS public.keep (id integer, note text);\n" + COPY_OWNED,
            "",
        )
    ),
    "a quoted name holding a dot stands for the target's table": OwnAttack(
        Attack(
            "postgres",
            PUBLIC_PATH + 'CREATE TABLE "public.keep" (id integer, note text);\n' + COPY_OWNED,
            "",
        )
    ),
    "the target's table attached as a partition of the dump's": OwnAttack(
        Attack(
            "postgres",
            "CREATE TABLE public.evil_parent (id integer, note text) PARTITION BY RANGE (id);\n"
            "ALTER TABLE ONLY public.evil_parent ATTACH PARTITION public.keep "
            "FOR VALUES FROM (0) TO (1000000);\n"
            + COPY_OWNED.replace("public.keep", "public.evil_parent"),
            "",
        )
    ),
    "a child of the target's table": OwnAttack(
        Attack(
            "postgres",
            "CREATE TABLE public.evil_child (id integer, note text) INHERITS (public.keep);\n"
            + COPY_OWNED.replace("public.keep", "public.evil_child"),
            "",
        )
    ),
    "a grant on the target's own table in its postgres database": OwnAttack(
        Attack("postgres", "GRANT ALL ON TABLE public.keep TO PUBLIC;\n", "")
    ),
    "a foreign table over another database of the target": OwnAttack(
        Attack(
            "shop",
            LOOPBACK + "CREATE FOREIGN TABLE public.ft (id integer, note text) SERVER loop "
            "OPTIONS (schema_name 'public', table_name 'keep');\n"
            + PUBLIC_PATH
            + 'CREATE TABLE "public.ft" (id integer, note text);\n'
            + COPY_OWNED.replace("public.keep", "public.ft"),
            "",
            ("--database", "shop"),
        )
    ),
    "a foreign partition under the dump's own partitioned table": OwnAttack(
        Attack(
            "shop",
            LOOPBACK + "CREATE TABLE public.root (id integer, note text) PARTITION BY LIST (id);\n"
            "CREATE FOREIGN TABLE public.fpart PARTITION OF public.root FOR VALUES IN (666) "
            "SERVER loop OPTIONS (schema_name 'public', table_name 'keep');\n"
            + COPY_OWNED.replace("public.keep", "public.root"),
            "",
            ("--database", "shop"),
        )
    ),
    "a sequence of the target's set through another search_path": OwnAttack(
        Attack("postgres", PUBLIC_PATH + "SELECT pg_catalog.setval('tseq', 424242, true);\n", ""),
        setup="CREATE SEQUENCE public.tseq",
    ),
    # Spilo's user_management functions are SECURITY DEFINER and run by its admin role: the
    # backup's CREATE FUNCTION there is left out (pgdeck once rewrote it to OR REPLACE).
    "a Spilo function of the target's postgres": OwnAttack(
        Attack(
            "postgres",
            "CREATE FUNCTION user_management.terminate_backend(pid integer) RETURNS boolean "
            "LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN "
            "COPY (SELECT 1) TO PROGRAM 'touch {M}/spilo'; RETURN true; END$$;\n",
            "",
        ),
        setup=SPILO_FUNCTION,
        noticed="statements about Spilo's own objects",
    ),
    "a large object of the target's postgres written over": OwnAttack(
        Attack(
            "postgres",
            "BEGIN;\nSELECT pg_catalog.lo_open('777001', 131072);\n"
            "SELECT pg_catalog.lowrite(0, '\\x6f776e6564');\n"
            "SELECT pg_catalog.lo_close(0);\nCOMMIT;\n",
            "",
        ),
        setup="SELECT pg_catalog.lo_from_bytea(777001, 'the target''s own')",
    ),
    "a grant on the target's large object beside the backup's own": OwnAttack(
        Attack(
            "postgres",
            "SELECT pg_catalog.lo_create('888001');\n"
            "GRANT SELECT,UPDATE ON LARGE OBJECT 888001, 777001 TO PUBLIC;\n",
            "",
        ),
        setup="SELECT pg_catalog.lo_from_bytea(777001, 'the target''s own')",
    ),
    "OR REPLACE of a function of the target's": OwnAttack(
        Attack(
            "postgres",
            "CREATE OR REPLACE FUNCTION public.target_fn() RETURNS integer LANGUAGE sql "
            "AS 'SELECT 666';\n",
            "",
        ),
        setup=TARGET_FN,
    ),
    "a function of the target's given away and granted": OwnAttack(
        Attack(
            "postgres",
            "ALTER FUNCTION public.target_fn() OWNER TO appuser;\n"
            "GRANT ALL ON FUNCTION public.target_fn() TO PUBLIC;\n",
            "",
        ),
        setup=TARGET_FN,
        noticed="the target's own schemas, functions",
    ),
    "a CHECK constraint unlinks the target's large object": OwnAttack(
        Attack(
            "postgres",
            "CREATE TABLE public.t2 (id integer);\nCOPY public.t2 (id) FROM stdin;\n1\n\\.\n"
            "ALTER TABLE ONLY public.t2 ADD CONSTRAINT c "
            "CHECK (pg_catalog.lo_unlink('777001'::oid) = 1);\n",
            "",
            offset=4,
        ),
        setup="SELECT pg_catalog.lo_from_bytea(777001, 'the target''s own')",
    ),
    "a grant on all the tables of the target's public schema": OwnAttack(
        Attack("postgres", "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;\n", "")
    ),
    "a grant of CREATE on the target's public schema": OwnAttack(
        Attack("postgres", "GRANT CREATE ON SCHEMA public TO PUBLIC;\n", ""),
        noticed="the target's own schemas, functions",
    ),
    "an event trigger planted in the target's template1": OwnAttack(
        Attack(
            "template1",
            "CREATE FUNCTION public.evil() RETURNS event_trigger LANGUAGE plpgsql "
            "AS $$BEGIN END$$;\n"
            "CREATE EVENT TRIGGER evil ON ddl_command_end EXECUTE FUNCTION public.evil();\n",
            "",
        )
    ),
}


def restore_own_attack(
    own: OwnAttack,
    world: World,
    dump: bytes,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> tuple[Run, Spliced]:
    """Make the target's own object the attack aims at, restore the attack, and check that
    no program ran and nothing of the target's changed."""
    pg = world.target.pg
    if own.setup:
        with _connect(pg) as conn:
            conn.execute(own.setup)  # type: ignore[arg-type]
    before = own_objects(pg)
    spliced = own.attack.splice(world, dump)
    run = restore(capsys, world, put(world, spliced.data), *args)
    assert world.target.marks() == [], "the database server ran a program of the backup"
    assert changed_own(before, own_objects(pg)) == {}
    return run, spliced


@pytest.mark.parametrize("name", table(OWN_OBJECTS))
def test_the_backup_changes_nothing_the_target_already_had(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The target's own tables get no row of the backup, whatever name, partition,
    inheritance or foreign table leads there, and nothing of its own in postgres and
    template1 changes: the restore refuses before, and says so."""
    own: OwnAttack = entry(OWN_OBJECTS, name)
    args = own.attack.args
    if own.attack.where in TARGETS_OWN and not args:  # restored there only when named
        args = ("--database", own.attack.where)
    run, spliced = restore_own_attack(own, hostile, source_dump, capsys, *args)
    if own.noticed:
        assert run.code == 0, run.err
        assert any(own.noticed in w for w in run.report["warnings"]), run.report["warnings"]
    else:
        assert run.code == 1, "the attack went unnoticed"
    assert_clean_output(hostile, run, spliced.data)


@pytest.mark.parametrize(
    "name", [n for n in OWN_OBJECTS if entry(OWN_OBJECTS, n).attack.where in TARGETS_OWN]
)
def test_a_whole_cluster_restore_leaves_the_targets_own_postgres_and_template1_alone(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not named, the backup's postgres and template1 sections are read (and checked) but
    not restored: every attack on the target's own objects there changes nothing, and the
    report says what of the backup was left out."""
    own: OwnAttack = entry(OWN_OBJECTS, name)
    run, spliced = restore_own_attack(own, hostile, source_dump, capsys)
    assert_clean_output(hostile, run, spliced.data)
    if run.code != 0:  # refused by the reader: not a statement pg_dumpall writes anywhere
        assert len(lines_naming(run.err, spliced.line)) == 1, run.err
        return
    where = own.attack.where
    assert any(f"leaves the target's own {where} alone" in w for w in run.report["warnings"])


# --- the lexer: pgdeck cuts statements where the server does ------------------------------------
PROBES = [
    # (object, the SQL spliced in, the comment the server must then hold)
    (
        "TABLE public.orders",
        "COMMENT ON TABLE public.orders IS E'it\\'s; \\'\\\\! touch {M}/e\\' --';\n",
        "it's; '\\! touch {M}/e' --",
    ),
    (
        "TABLE public.customers",
        "COMMENT ON TABLE public.customers IS 'a line;\n\\! touch {M}/s\n'\n  -- a comment\n'; continued';\n",
        "a line;\n\\! touch {M}/s\n; continued",
    ),
    (
        "TABLE public.events",
        "COMMENT ON TABLE public.events IS E'tail\\\n\\! touch {M}/e2\n';\n",
        "tail\n! touch {M}/e2\n",
    ),
    (
        "TABLE public.events_2026",
        "/* outer /* inner; */ still;\n\\! touch {M}/c\n*/ COMMENT ON TABLE public.events_2026 IS 'nested';\n",
        "nested",
    ),
    (
        "VIEW public.big_orders",
        "COMMENT ON VIEW public.big_orders IS $a$ $$; '\n\\! touch {M}/d\n$b$ $a$;\n",
        " $$; '\n\\! touch {M}/d\n$b$ ",
    ),
    (
        "COLUMN public.customers.name",
        "COMMENT ON COLUMN public.customers.name IS 'back\\';\n",
        "back\\",
    ),
    (
        "COLUMN public.customers.tags",
        "COMMENT ON COLUMN public.customers.tags\rIS $$cr$$;\n",
        "cr",
    ),
    (
        "TABLE public.t$q$",
        "CREATE TABLE public.t$q$ (v$q$ text);\nCOMMENT ON TABLE public.t$q$ IS 'dollar names; $q$';\n",
        "dollar names; $q$",
    ),
]


def test_the_lexer_cuts_every_tricky_construct_where_the_server_does(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """E'' strings with backslashes, strings continued over a newline, nested comments,
    dollar quotes and names holding $, U&'' with UESCAPE, a backslash before a quote in a
    standard string, a CR: each holds a would-be meta-command or a semicolon. The server
    accepts each as the one statement pgdeck cut and stores exactly the text pgdeck read."""
    markers = str(hostile.target.markers)
    text = "".join(sql_text for _, sql_text, _ in PROBES).replace("{M}", markers)
    spliced = at("shop end", source_dump, text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data), "--database", "shop")
    assert run.code == 0, run.err
    with _connect(hostile.target.pg, "shop") as conn:
        for obj, _, expected in PROBES:
            kind, _, name = obj.partition(" ")
            if kind == "COLUMN":
                rel, col = name.rsplit(".", 1)
                q = f"SELECT col_description('{rel}'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = '{rel}'::regclass AND attname = '{col}'))"
            else:
                q = f"SELECT obj_description('{name}'::regclass, 'pg_class')"
            assert _rows(conn, q) == [(expected.replace("{M}", markers),)], obj
    assert_target_untouched(hostile)


@pytest.mark.parametrize(
    "text",
    [
        b"CREATE TABLE public.loot (a int) \\connect shop\n",
        b"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;\n",
    ],
    ids=["connect after half a statement", "a BEGIN ATOMIC body that never ENDs"],
)
def test_a_statement_cut_off_by_a_meta_command_is_refused(
    text: bytes, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Right before shop's \unrestrict line: the body swallows nothing else of the dump.
    dump = source_dump
    at_shop_end = dump.index(b"\\unrestrict", dump.index(b"ADD CONSTRAINT orders_customer_fkey"))
    line = dump[:at_shop_end].count(b"\n") + 1
    dump = dump[:at_shop_end] + text + dump[at_shop_end:]
    run = restore(capsys, hostile, put(hostile, dump))
    assert_target_untouched(hostile)
    assert run.code == 1
    assert lines_naming(run.err, line) or lines_naming(run.err, line + 1)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("client_encoding", "LATIN1"), ("standard_conforming_strings", "off")],
)
def test_a_session_setting_changed_by_a_function_of_the_dump_stops_the_restore(
    setting: str,
    value: str,
    hostile: World,
    source_dump: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A function body is not judged; one that a column default runs during COPY changes
    a setting the lexer relies on (another client_encoding, even a safe one, reads names
    differently; backslashes in strings end them otherwise): the restore stops before the
    next statement, which the server would read otherwise than pgdeck judged it."""
    text = (
        "CREATE FUNCTION public.sw() RETURNS text LANGUAGE plpgsql AS $$BEGIN "
        f"PERFORM pg_catalog.set_config('{setting}', '{value}', false); RETURN 'x'; END$$;\n"
        "CREATE TABLE public.sw (id integer, s text DEFAULT public.sw());\n"
        "COPY public.sw (id) FROM stdin;\n1\n\\.\n"
    )
    spliced = at("shop", source_dump, text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert run.code == 1
    assert "standard_conforming_strings or client_encoding was changed" in run.err
    assert_target_untouched(hostile)
    assert_clean_output(hostile, run, spliced.data)


def test_a_begin_atomic_body_that_never_ends_leaves_the_dump_incomplete(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    spliced = at(
        "end",
        source_dump,
        b"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;\n",
    )
    dump = spliced.data[: spliced.data.rindex(b"\\unrestrict")]  # no meta-command after it
    dump += b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
    url = put(hostile, dump)
    run = cli(capsys, hostile, "verify", url)
    assert run.code == 1 and "incomplete" in run.err
    run = restore(capsys, hostile, url)
    assert run.code == 1 and "incomplete" in run.report["error"]
    with _connect(hostile.target.pg, "Ünïcode db") as conn:
        assert _rows(conn, "SELECT to_regproc('public.f')") == [(None,)]
    assert_clean_output(hostile, run, dump)
    assert_target_untouched(hostile)


def test_a_role_of_the_target_spelled_in_another_client_encoding_is_left_alone(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target whose role has a name beyond ASCII (jürgen); the backup names it in LATIN1,
    so that pgdeck reads another name than the server does."""
    pg = hostile.target.pg

    def jurgen() -> list[Any]:
        with _connect(pg) as conn:
            return _rows(
                conn,
                "SELECT shobj_description(r.oid, 'pg_authid'), "
                "(SELECT array_agg(setconfig::text) FROM pg_db_role_setting WHERE setrole = r.oid), "
                "(SELECT array_agg(roleid::regrole::text) FROM pg_auth_members WHERE member = r.oid) "
                "FROM pg_roles r WHERE rolname = 'jürgen'",
            )

    with _connect(pg) as conn:
        conn.execute('CREATE ROLE "jürgen" LOGIN')
    before = jurgen()
    text = (
        b"SET client_encoding = 'LATIN1';\n"
        b"CREATE ROLE evil;\n"
        b"ALTER ROLE \"j\xfcrgen\" SET search_path TO 'loot', 'pg_catalog';\n"
        b"COMMENT ON ROLE \"j\xfcrgen\" IS 'owned';\n"
        b'GRANT evil TO "j\xfcrgen";\n'
        b"SET client_encoding = 'UTF8';\n"
    )
    spliced = at("roles", source_dump, text)
    run = restore(capsys, hostile, put(hostile, spliced.data))
    assert jurgen() == before, "a role the target already had was changed"
    assert_target_untouched(hostile)
    assert_clean_output(hostile, run, spliced.data)


# --- what is printed ----------------------------------------------------------------------------
OSC = "\x1b]0;pwned\x07\x1b]52;c;ZWNobyBvd25lZA==\x07\x9b2J"


def test_control_sequences_in_names_and_failing_statements_never_reach_the_terminal_raw(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"loot{OSC}db"
    text = (
        f'CREATE DATABASE "{db}" WITH TEMPLATE = template0;\n'
        f"\\connect -reuse-previous=on \"dbname='{db}'\"\n"
        f'CREATE TABLE public."t{OSC}" (a text);\n'
        f'COPY public."t{OSC}" (a) FROM stdin;\nrow{OSC}\n\\.\n'
        f"COMMENT ON TABLE public.\"missing{OSC}\" IS 'x{OSC}';\n"
    )
    dump = source_dump.replace(
        b"--\n-- PostgreSQL database cluster dump complete",
        text.encode() + b"--\n-- PostgreSQL database cluster dump complete",
    )
    run = restore(capsys, hostile, put(hostile, dump), json_out=False)
    assert run.code == 1  # the comment on a missing table fails
    assert "missing" in run.err and "\\x1b]0;pwned" in run.err
    assert not any(c in run.printed for c in RAW_CONTROLS)
    assert_clean_output(hostile, run, dump)
    assert_target_untouched(hostile)


def test_the_archived_markdown_report_holds_no_raw_control_sequence(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f'CREATE TABLE public."t{OSC}" (a text);\nCOPY public."t{OSC}" (a) FROM stdin;\nx\n\\.\n'
    spliced = at("shop", source_dump, text.encode())
    run = restore(capsys, hostile, put(hostile, spliced.data), "--database", "shop")
    assert run.code == 0, run.err
    markdown = Path(run.report["archived"]["markdown"]).read_text(encoding="utf-8")
    assert not any(c in markdown for c in RAW_CONTROLS), "a raw escape sequence is archived"
    assert "\\x1b]0;pwned" in markdown  # shown escaped, as on the terminal


LEAKS = {
    "a refused one-line role": (
        "roles",
        f"CREATE ROLE evil LOGIN PASSWORD '{DUMP_SECRET}-plain';\n",
        (),
        True,
    ),
    "a refused CREATE USER": ("roles", f"CREATE USER evil PASSWORD '{DUMP_SECRET}-u';\n", (), True),
    "a refused role with an E'' password": (
        "roles",
        f"CREATE ROLE evil LOGIN PASSWORD E'{DUMP_SECRET}-e';\n",
        (),
        True,
    ),
    "a refused \\connect holding a password": (
        "shop",
        f"\\connect -reuse-previous=on \"dbname='shop' password='{DUMP_SECRET}-c'\"\n",
        (),
        True,
    ),
    "a failing ALTER ROLE with an E'' password under --roles all": (
        "roles",
        f"ALTER ROLE ghost WITH LOGIN PASSWORD E'{DUMP_SECRET}-g';\n",
        ("--roles", "all"),
        False,  # a statement pg_dumpall writes: the server, not the reader, refuses it
    ),
}


@pytest.mark.parametrize("name", list(LEAKS))
def test_no_password_of_the_dump_is_printed_reported_or_audited(
    name: str, hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    where, text, args, reader_refuses = LEAKS[name]
    spliced = at(where, source_dump, text.encode())
    url = put(hostile, spliced.data)
    runs = [restore(capsys, hostile, url, *args)]
    if reader_refuses:
        runs.append(cli(capsys, hostile, "verify", url))
    for run in runs:
        assert run.code == 1
        assert_clean_output(hostile, run, spliced.data)
    mode = args[1] if args[:1] == ("--roles",) else "no-passwords"
    assert_target_untouched(hostile, roles=mode)


# Passwords in places the first masking rules missed: a literal after PASSWORD with a
# comment between, a quoted "password" option, credentials in a URI.
MISSED_PASSWORDS: dict[str, tuple[str, str]] = {
    name: (where, text)
    for name, where, text in [
        (
            "a role's password after a comment",
            "roles",
            f"CREATE ROLE evil LOGIN PASSWORD /**/ '{DUMP_SECRET}-r';\n",
        ),
        (
            "a user mapping's quoted password option",
            "header",
            f"CREATE USER MAPPING FOR postgres SERVER s OPTIONS (\"password\" '{DUMP_SECRET}-um');\n",
        ),
        (
            "a subscription's connection URI",
            "shop",
            "CREATE SUBSCRIPTION s CONNECTION "
            f"'postgresql://rep:{DUMP_SECRET}-sub@10.0.0.1/app' PUBLICATION p;\n",
        ),
        (
            "a \\connect URI",
            "shop",
            f"\\connect postgresql://evil:{DUMP_SECRET}-uri@127.0.0.1/shop\n",
        ),
    ]
}


@pytest.mark.parametrize(
    ("where", "text"), list(MISSED_PASSWORDS.values()), ids=list(MISSED_PASSWORDS)
)
def test_a_refusal_names_the_line_without_any_password_it_holds(
    where: str, text: str, source_dump: bytes
) -> None:
    """The reader's message, which the command line prints and the report and audit log
    keep (the first round's LEAKS run those through the command line)."""
    spliced = at(where, source_dump, text.encode())
    with pytest.raises(NotADump) as caught:
        reader = DumpReader()
        reader.feed(spliced.data)
        reader.summary()
    assert caught.value.line == spliced.line
    assert DUMP_SECRET not in caught.value.message + (caught.value.hint or "")


def test_a_refused_backup_is_named_in_exactly_one_line_on_the_terminal(
    hostile: World, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    spliced = at("header", source_dump, b"\\! touch /nonexistent/marker\n")
    run = restore(capsys, hostile, put(hostile, spliced.data), json_out=False)
    assert run.code == 1
    assert len(lines_naming(run.printed, spliced.line)) == 1, run.err


# --- memory: a line of any length costs bounded memory ------------------------------------------
def _peak_rss_kib(world: World, url: str) -> tuple[int, str]:
    """``pgdeck verify URL`` in a process of its own: exit status and its peak RSS."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--config", str(world.config), "verify", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PGDECK_NOW": NOW.isoformat()},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss, f"{proc.returncode}:{err}"


def test_a_line_longer_than_max_line_is_refused_in_bounded_memory(
    hostile: World, source_dump: bytes
) -> None:
    """A line twice MAX_LINE: refused naming it, in memory bounded by MAX_LINE (the
    process's peak RSS against verify of the same dump without it)."""
    long_line = b"COMMENT ON TABLE public.orders IS " + b"x" * (2 * MAX_LINE)
    spliced = at("shop", source_dump, long_line + b";\n")
    del long_line
    url, line = put(hostile, spliced.data, level=1), spliced.line
    # A child's peak RSS counts what it shares with this process before it execs: the big
    # object is gone from here before either child starts.
    del spliced
    gc.collect()
    baseline, _ = _peak_rss_kib(hostile, put(hostile, source_dump))
    peak, outcome = _peak_rss_kib(hostile, url)
    code, _, err = outcome.partition(":")
    assert code == "1" and f"line {line}: " in err and "longer than" in err, err
    assert "Traceback" not in err
    assert (peak - baseline) * 1024 < 2 * MAX_LINE


def test_a_statement_of_many_tokens_is_refused_in_bounded_memory(source_dump: bytes) -> None:
    """A line of a million '(' (well under MAX_LINE): refused once it passes the lexer's
    token bound, its memory bounded by that (measured with tracemalloc)."""
    from services.sqllex import Lexer

    n = 1 << 20
    spliced = at("shop", source_dump, b"COMMENT ON TABLE public.orders IS " + b"(" * n + b"\n")
    tracemalloc.start()
    try:
        with pytest.raises(NotADump, match="tokens"):
            reader = DumpReader()
            for i in range(0, len(spliced.data), 1 << 16):
                reader.feed(spliced.data[i : i + (1 << 16)])
            reader.summary()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the line itself (held until it ends), and at most max_tokens tokens
    assert peak < 3 * n + Lexer.max_tokens * 200
