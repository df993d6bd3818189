"""Taking the demo's real dumps: one throwaway server per cluster, grown through the month.

A cluster's server is bootstrapped as Spilo would be, given its roles, databases and the
history before the month, then grown group by group; after each group ``pg_dumpall``
runs and its gzip becomes the objects of the group's hours (one file, hard links).
"""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import threading
from datetime import datetime
from pathlib import Path

import psycopg

from sandbox import localpg
from sandbox.demo.content import CONTENT, SPILO_SETUP
from sandbox.demo.layout import Progress
from sandbox.demo.story import HOUR, Group, Plants, Spec
from services.errors import PgdeckError
from services.operator import backup_key

DUMP_TRAILER = b"--\n-- PostgreSQL database cluster dump complete\n--\n"


def build_cluster(
    spec: Spec,
    groups: list[Group],
    plants: Plants,
    work: Path,
    store: Path,
    bindir: Path,
    say: Progress,
    cancel: threading.Event,
) -> list[int]:
    """Grow the cluster's data through the month, one real dump per group; the sizes."""
    if cancel.is_set():
        raise PgdeckError("demo sandbox build cancelled")
    pg = localpg.create(work / spec.name)
    sizes: list[int] = []
    try:
        pg.start()
        first = groups[0].slots[0].hour
        t0 = first
        rng = random.Random(f"{spec.name}/passwords")
        try:
            _bootstrap_spilo(pg, rng)
            # What a job dumping a freshly bootstrapped Spilo (its roles and helper schemas,
            # no application data) uploads: a complete pg_dumpall of a few kB, the planted
            # "suspiciously small" backup.
            empty = _pg_dumpall(pg, bindir) if plants.small is not None else b""
            _setup_cluster(pg, spec, rng, start=spec.lives[0].created, until=first)
        except psycopg.Error as exc:
            raise _data_error(spec, exc) from None
        for i, group in enumerate(groups, 1):
            if cancel.is_set():
                raise PgdeckError("demo sandbox build cancelled")
            t1 = group.slots[0].hour
            if t1 > t0:
                try:
                    _grow(pg, spec, t0, t1, seed=i)
                except psycopg.Error as exc:
                    raise _data_error(spec, exc) from None
            t0 = t1
            data = _pg_dumpall(pg, bindir)
            blob = gzip.compress(data, compresslevel=6, mtime=group.slots[0].epoch)
            _store_group(store, spec.name, group, blob, plants.small, empty)
            sizes.append(len(blob))
            say(
                f"{spec.name}: dump {i}/{len(groups)} ({t1:%Y-%m-%d %H:00}, "
                f"{len(data) / 1e6:.1f} MB, {len(blob) / 1e3:.0f} kB gzip, {len(group.slots)} hours)"
            )
    finally:
        pg.destroy()
    return sizes


def _data_error(spec: Spec, exc: psycopg.Error) -> PgdeckError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return PgdeckError(
        f"the demo data for {spec.name} could not be generated: {first}",
        hint="this is a bug in pgdeck's demo builder; please report it",
    )


def _store_group(
    store: Path,
    cluster: str,
    group: Group,
    blob: bytes,
    small: datetime | None = None,
    empty: bytes = b"",
) -> None:
    """One file for the group's first hour, hard links for the others; mtime of the last.

    The hour ``small`` gets a file of its own: the gzip of ``empty`` (an empty server's dump).
    """
    first: Path | None = None
    last = 0
    for slot in group.slots:
        path = store / backup_key(cluster, group.uid, slot.epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        if slot.hour == small:
            path.write_bytes(gzip.compress(empty, compresslevel=6, mtime=slot.epoch))
            os.utime(path, (slot.epoch, slot.epoch))
            continue
        if first is None:
            path.write_bytes(blob)
            first = path
        else:
            os.link(first, path)
        last = slot.epoch
    if first is not None:
        # hard links share one inode, so one mtime: that of the newest hour they serve
        os.utime(first, (last, last))


def _connect(pg: localpg.LocalPostgres, dbname: str) -> psycopg.Connection:
    return psycopg.connect(pg.dsn(dbname), autocommit=True)


def _bootstrap_spilo(pg: localpg.LocalPostgres, rng: random.Random) -> None:
    with _connect(pg, "postgres") as conn:
        conn.execute(SPILO_SETUP)
        conn.execute(f"ALTER ROLE standby PASSWORD {_literal(_password(rng))}")


def _setup_cluster(
    pg: localpg.LocalPostgres,
    spec: Spec,
    rng: random.Random,
    *,
    start: datetime,
    until: datetime,
) -> None:
    with _connect(pg, "postgres") as conn:
        for user, flags in spec.users.items():
            options = " ".join(f.upper() for f in flags if f.isalpha())
            conn.execute(f'CREATE ROLE "{user}" WITH LOGIN {options}'.rstrip())
            conn.execute(f'ALTER ROLE "{user}" PASSWORD {_literal(_password(rng))}')
        for db, owner in spec.databases.items():
            conn.execute(f'CREATE DATABASE "{db}" OWNER "{owner}"')
    for db, owner in spec.databases.items():
        content = CONTENT[db]
        with _connect(pg, db) as conn:
            conn.execute(f'SET ROLE "{owner}"')
            conn.execute(content.schema)
            conn.execute("RESET ROLE")
            conn.execute("SELECT setseed(%s)", (_seed(spec.name, db, 0),))
            params = {"t0": start, "t1": until, "n": content.seed_rows}
            for sql in content.seed:
                conn.execute(sql, params)
            # the history before the month, in four steps so that states move on
            span = (until - start) / 4
            for k in range(4):
                a, b = start + k * span, start + (k + 1) * span
                n = max(1, round(content.seed_rows * spec.scale / 4))
                for sql in content.grow:
                    conn.execute(sql, {"t0": a, "t1": b, "n": n})
            conn.execute("VACUUM ANALYZE")


def _grow(pg: localpg.LocalPostgres, spec: Spec, t0: datetime, t1: datetime, *, seed: int) -> None:
    hours = (t1 - t0) / HOUR
    for db in spec.databases:
        content = CONTENT[db]
        n = max(1, round(content.rows_per_hour * spec.scale * hours))
        with _connect(pg, db) as conn:
            conn.execute("SELECT setseed(%s)", (_seed(spec.name, db, seed),))
            for sql in content.grow:
                conn.execute(sql, {"t0": t0, "t1": t1, "n": n})


def _seed(*parts: object) -> float:
    return (random.Random("/".join(map(str, parts))).random() * 2) - 1


def _password(rng: random.Random) -> str:
    return "".join(
        rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32)
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_dumpall(pg: localpg.LocalPostgres, bindir: Path) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(pg.env())
    env["PGDATABASE"] = "postgres"
    try:
        result = subprocess.run(
            [str(bindir / "pg_dumpall"), "--no-password"],
            capture_output=True,
            env=env,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PgdeckError(
            f"pg_dumpall could not run for the demo sandbox: {exc}",
            hint="check the PostgreSQL client installation (PGDECK_PG_BINDIR)",
        ) from None
    if result.returncode != 0 or not result.stdout.rstrip().endswith(DUMP_TRAILER.rstrip()):
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PgdeckError(
            f"pg_dumpall failed for the demo sandbox (exit status {result.returncode}): "
            + (err[-1] if err else "the dump has no completion trailer"),
            hint="see the server log; rebuild with --rebuild",
        )
    return result.stdout
