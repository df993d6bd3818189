"""A table whose data session cannot keep up spills to the spool, so the reader moves on.

When a streaming table's queue is full and another data session is idle, the rest of the
table goes to a spool file its session reads after the queue, following it as it grows;
once the session has caught up, the rows stream by the queue again. The rows must arrive
exactly, in order, whatever the switches. A real server: a test session holds a lock on
the first table, so its data session waits inside its COPY for as long as the test needs
(no timing involved), while the reader delivers the table and then the next one.

The same lock shows the post-data's order: an index on a table already loaded is built
while another table's COPY still waits, and an index on that table waits for its COPY;
a statement after a setting (pg_dump's ``SET default_tablespace``) never passes one
before it, so each runs with the settings it had in the dump; of the statements ready, the
one on the most data goes first.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services import grammar
from services.config import Config
from services.copy_lanes import LanePool
from services.postdata_order import INDEX, PostStatement
from services.spool import Spool
from services.target import resolve_target
from tests.test_copy_order import statements

CHUNK = 8191  # never on a row's end: a byte out of order would break a row


def rows(table: str, n: int) -> bytes:
    return b"".join(
        f"{i}\t{table} {hashlib.md5(str(i).encode()).hexdigest()}\n".encode() for i in range(n)
    )


def digest(conn: Any, table: str) -> tuple[int, str]:
    row = conn.execute(
        f"SELECT count(*), md5(string_agg(id || ' ' || v, ',' ORDER BY id)) FROM {table}"
    ).fetchone()
    return row[0], row[1]


def expected(table: str, n: int) -> tuple[int, str]:
    text = ",".join(f"{i} {table} {hashlib.md5(str(i).encode()).hexdigest()}" for i in range(n))
    return n, hashlib.md5(text.encode()).hexdigest()


def wait_for(what: Any, pool: LanePool) -> None:
    """Until ``what()`` holds under the pool's lock (a deadline only against a hang)."""
    deadline = time.monotonic() + 60
    with pool._cond:
        while not what():
            job = pool._lanes[0].job or pool._lanes[1].job
            assert time.monotonic() < deadline, (
                "the pool never got there",
                job
                and (
                    job.read,
                    job.spool and job.spool.size,
                    len(job.chunks),
                    job.done,
                    job.mode,
                    job.running,
                ),
                pool.failure,
            )
            pool._cond.wait(0.05)


def in_thread(work: Any) -> threading.Event:
    """``work`` run as the dump's reader, in a thread of its own: a reader that waits (for
    a session the test's lock holds) fails the test instead of hanging it."""
    done = threading.Event()

    def run() -> None:
        work()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def copy(pool: LanePool, table: str, line: int) -> None:
    sql = f"COPY {table} FROM STDIN".encode()
    pool.begin("shop", ("shop", f"public.{table}"), ("public", table), sql, "UTF8", line)


def deliver(pool: LanePool, data: bytes) -> None:
    for i in range(0, len(data), CHUNK):
        pool.write(data[i : i + CHUNK])


@pytest.fixture
def shop(target_pg: Any) -> Iterator[Any]:
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop")
    with psycopg.connect(target_pg.dsn("shop"), autocommit=True) as conn:
        for table in ("big", "small"):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    yield target_pg


@pytest.fixture
def pool(shop: Any, tmp_path: Path) -> Iterator[tuple[LanePool, dict[tuple[str, str], int]]]:
    target = resolve_target(shop.dsn("shop"), Config(path=None))
    copied: dict[tuple[str, str], int] = {}
    lanes = LanePool(
        target, jobs=2, spool=Spool(tmp_path, 1 << 30), copied=copied, queue_limit=64 << 10
    )
    yield lanes, copied
    lanes.close()


BIG, SMALL = rows("big", 40_000), rows("small", 500)


def check(shop: Any, copied: dict[tuple[str, str], int], tmp_path: Path) -> None:
    assert copied == {("shop", "public.big"): 40_000, ("shop", "public.small"): 500}
    with psycopg.connect(shop.dsn("shop")) as conn:
        assert digest(conn, "big") == expected("big", 40_000)
        assert digest(conn, "small") == expected("small", 500)
    assert list(tmp_path.iterdir()) == []


def test_a_full_queue_spills_and_streams_again_once_caught_up_rows_in_order(
    shop: Any, pool: tuple[LanePool, dict[tuple[str, str], int]], tmp_path: Path
) -> None:
    lanes, copied = pool
    half = len(BIG) // 2 // CHUNK * CHUNK
    lock = psycopg.connect(shop.dsn("shop"))
    try:
        lock.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")  # big's COPY waits for it
        copy(lanes, "big", 1)
        job = lanes._current
        assert job is not None
        # The queue filled while the other session was idle: the rest went to a file, so
        # the reader never waited for big's session.
        assert in_thread(lambda: deliver(lanes, BIG[:half])).wait(60)
        first = job.spool
        assert first is not None and lanes.spool.tables == 1
        lock.rollback()  # big's COPY may go on now: it sends the queue, then the file
        wait_for(lambda: lanes._caught_up(job), lanes)
        # Caught up: the reader's next bytes stream by the queue again, the file is gone.
        lanes.write(BIG[half : half + CHUNK])
        assert job.spool is not first and first not in lanes.spool._open
        deliver(lanes, BIG[half + CHUNK :])
        lanes.end()
        copy(lanes, "small", 2)
        deliver(lanes, SMALL)
        lanes.end()
        lanes.wait_idle()
        assert lanes.spool.tables == 1  # a table spilled twice counts once
    finally:
        lock.close()  # a reader still waiting is freed
    check(shop, copied, tmp_path)


def test_while_one_table_waits_the_reader_delivers_the_next_to_the_idle_session(
    shop: Any, pool: tuple[LanePool, dict[tuple[str, str], int]], tmp_path: Path
) -> None:
    lanes, copied = pool
    lock = psycopg.connect(shop.dsn("shop"))

    def reader() -> None:
        copy(lanes, "big", 1)
        deliver(lanes, BIG)  # never waits for big's session: the rest spills
        lanes.end()
        copy(lanes, "small", 2)
        deliver(lanes, SMALL)
        lanes.end()

    try:
        lock.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
        assert in_thread(reader).wait(60)
        # small is stored while big's session still waits for the lock.
        wait_for(lambda: ("shop", "public.small") in copied, lanes)
        assert ("shop", "public.big") not in copied
        assert lanes.spool.largest > 0
        lock.rollback()
        lanes.wait_idle()
    finally:
        lock.close()
    check(shop, copied, tmp_path)


def load_both(pool: LanePool) -> None:
    """The reader's part of the data section: big's rows, then small's."""
    copy(pool, "big", 1)
    deliver(pool, BIG)
    pool.end()
    copy(pool, "small", 2)
    deliver(pool, SMALL)
    pool.end()


def index(pool: LanePool, table: str, line: int) -> None:
    post = PostStatement(INDEX, (("public", table),), f"index on public.{table}")
    sql = f"CREATE INDEX {table}_v ON public.{table} USING btree (v)".encode()
    pool.statement("shop", post, sql, "UTF8", line)


def test_a_loaded_tables_index_is_built_while_another_table_still_loads(
    shop: Any, pool: tuple[LanePool, dict[tuple[str, str], int]], tmp_path: Path
) -> None:
    lanes, copied = pool
    lock = psycopg.connect(shop.dsn("shop"))
    watch = psycopg.connect(shop.dsn("shop"), autocommit=True)

    def reader() -> None:
        load_both(lanes)
        index(lanes, "big", 3)  # the dump's order: big's index first
        index(lanes, "small", 4)

    def built() -> set[str]:
        found = watch.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname IN ('big_v', 'small_v')"
        ).fetchall()
        return {name for (name,) in found}

    try:
        lock.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
        assert in_thread(reader).wait(60)  # the reader never waits for the statements
        deadline = time.monotonic() + 60
        while built() != {"small_v"}:
            assert time.monotonic() < deadline and not built() - {"small_v"}, built()
            time.sleep(0.05)
        # big's index was not even started: no session is running or waiting on it.
        running = watch.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX big_v%'"
        ).fetchone()
        assert running == (0,)
        assert ("shop", "public.big") not in copied
        lock.rollback()
        lanes.wait_idle()
        assert built() == {"big_v", "small_v"}
        facts = lanes.facts()
        assert facts["postdata_statements"] == 2 and facts["postdata_runs"] == 1
        assert sum(s["postdata_statements"] for s in facts["sessions"]) == 2
    finally:
        lock.close()
        watch.close()
    check(shop, copied, tmp_path)


def setting(pool: LanePool, text: str) -> None:
    """A setting the main session ran: the data sessions replay it before what follows."""
    (s,) = statements(text)
    pool.log.record(grammar.judge(s), s.text, "UTF8")


def test_a_statement_after_a_setting_waits_for_those_before_it(
    shop: Any, pool: tuple[LanePool, dict[tuple[str, str], int]], tmp_path: Path
) -> None:
    lanes, copied = pool
    lock = psycopg.connect(shop.dsn("shop"))
    watch = psycopg.connect(shop.dsn("shop"), autocommit=True)
    watch.execute("SET allow_in_place_tablespaces = on")  # under the server's own directory
    watch.execute("CREATE TABLESPACE elsewhere LOCATION ''")

    def reader() -> None:
        load_both(lanes)
        setting(lanes, "SET default_tablespace = elsewhere;\n")
        index(lanes, "big", 3)
        setting(lanes, "SET default_tablespace = '';\n")
        index(lanes, "small", 4)  # ready at once, but after a setting: it waits for big's

    def where() -> dict[str, str | None]:
        found = watch.execute(
            "SELECT indexname, tablespace FROM pg_indexes WHERE indexname LIKE '%_v'"
        ).fetchall()
        return dict(found)

    try:
        lock.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
        assert in_thread(reader).wait(60)
        wait_for(lambda: ("shop", "public.small") in copied, lanes)
        with lanes._cond:
            assert [job.label for job in lanes._pending] == [
                "index on public.big",
                "index on public.small",
            ]
        assert where() == {}
        lock.rollback()
        lanes.wait_idle()
        assert where() == {"big_v": "elsewhere", "small_v": None}
    finally:
        lock.close()
        with contextlib.suppress(psycopg.Error):
            watch.execute("DROP INDEX IF EXISTS big_v")
            watch.execute("DROP TABLESPACE elsewhere")
        watch.close()
    check(shop, copied, tmp_path)


def test_of_the_statements_ready_the_one_on_the_most_data_goes_first(
    shop: Any, pool: tuple[LanePool, dict[tuple[str, str], int]], tmp_path: Path
) -> None:
    lanes, copied = pool
    watch = psycopg.connect(shop.dsn("shop"), autocommit=True)
    for gate in ("gate1", "gate2"):
        watch.execute(f"CREATE TABLE {gate} (v text)")
    locks = [psycopg.connect(shop.dsn("shop")) for _ in range(2)]
    try:
        for lock, gate in zip(locks, ("gate1", "gate2"), strict=True):
            lock.execute(f"LOCK TABLE {gate} IN ACCESS EXCLUSIVE MODE")
        load_both(lanes)
        lanes.wait_idle()
        # Both sessions wait inside a statement on a locked table; meanwhile the indexes
        # of small and big (in the dump's order) are both ready.
        index(lanes, "gate1", 3)
        index(lanes, "gate2", 4)
        wait_for(lambda: all(lane.job is not None for lane in lanes._lanes), lanes)
        index(lanes, "small", 5)
        index(lanes, "big", 6)
        locks[0].rollback()  # one session frees: it takes big's index first, then small's
        wait_for(lambda: not lanes._pending and sum(bool(x.job) for x in lanes._lanes) == 1, lanes)
        locks[1].rollback()
        lanes.wait_idle()
        big, small = (
            watch.execute(f"SELECT '{name}'::regclass::oid").fetchone()[0]  # type: ignore[index]
            for name in ("big_v", "small_v")
        )
        assert big < small  # made first
    finally:
        for lock in locks:
            lock.close()
        watch.close()
    check(shop, copied, tmp_path)
