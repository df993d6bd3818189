"""``pgdeck restore --jobs N``: table data on N sessions, the same result as one session.

A real source cluster with the cases that could go wrong when COPYs overlap (many tables
of mixed sizes, a partitioned table with a partition's own foreign key, foreign keys
between tables loaded by different sessions, an expression index, deferrable and NOT
VALID constraints, a trigger, sequences, a large object, a CHECK calling a function of
the dump, three databases, one of them LATIN1), pg_dumpall'd, gzip'd into moto's S3 and restored with one
session and with four into fresh servers, compared row by row and catalog by catalog.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import seed, storage_config, table_digests
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
KEY = "spilo/acid-sales/0f000000-0000-4000-8000-000000000016/logical_backups/1763600000.sql.gz"
# legacy is LATIN1: pg_dump writes its section in LATIN1 (SET client_encoding), which a
# data session must take before its COPY or the rows would be read as UTF-8.
DATABASES = ("sales", "inventory", "legacy")

SOURCE_SQL = r"""
CREATE ROLE reader NOLOGIN;
CREATE DATABASE sales;
CREATE DATABASE inventory;
\connect sales
CREATE FUNCTION public.positive(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v > 0';
CREATE DOMAIN public.qty AS int CHECK (VALUE >= 0);
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, name text);
CREATE INDEX customers_email_lower ON customers (lower(email));
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                     total numeric(10,2), note text);
CREATE TABLE order_items (order_id bigint REFERENCES orders(id) DEFERRABLE INITIALLY DEFERRED,
                          line int, qty public.qty, price numeric(10,2),
                          doubled numeric GENERATED ALWAYS AS (price * 2) STORED,
                          PRIMARY KEY (order_id, line));
CREATE TABLE events (day date NOT NULL, customer int, what text) PARTITION BY RANGE (day);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-05-01');
CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM ('2026-05-01') TO ('2026-09-01');
CREATE TABLE events_3 PARTITION OF events FOR VALUES FROM ('2026-09-01') TO ('2027-01-01');
ALTER TABLE events_2 ADD CONSTRAINT events_2_customer_fkey FOREIGN KEY (customer) REFERENCES customers(id);
CREATE TABLE checked (id int, v int CHECK (public.positive(v)));
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION public.audit_order() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.audit(what) VALUES ('order ' || NEW.id); RETURN NEW; END$$;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION public.audit_order();
CREATE TABLE b_big (id int, payload text);
INSERT INTO customers SELECT g, 'User' || g || '@Example.com', 'name ' || g FROM generate_series(1, 3000) g;
INSERT INTO orders (customer, total, note) SELECT 1 + g % 3000, g / 100.0, E'n\t' || g FROM generate_series(1, 60000) g;
INSERT INTO order_items (order_id, line, qty, price) SELECT 1 + g % 60000, g, g % 7, g / 10.0 FROM generate_series(1, 40000) g;
INSERT INTO order_items (order_id, line, qty, price) VALUES (1, -1, 0, -5);
ALTER TABLE order_items ADD CONSTRAINT order_items_price_check CHECK (price >= 0) NOT VALID;
INSERT INTO events SELECT DATE '2026-01-01' + g % 365, 1 + g % 3000, 'e' || g FROM generate_series(1, 20000) g;
INSERT INTO checked SELECT g, g FROM generate_series(1, 500) g;
INSERT INTO b_big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 60000) g;
SELECT setval('orders_id_seq', 70000);
CREATE SEQUENCE public.spare_seq START 5;
SELECT nextval('public.spare_seq'), nextval('public.spare_seq');
SELECT lo_from_bytea(424242, '\xcafe0123');
COMMENT ON TABLE orders IS 'the orders';
COMMENT ON COLUMN customers.email IS 'where we write';
GRANT SELECT ON orders, customers TO reader;
GRANT USAGE ON SEQUENCE orders_id_seq TO reader;
DO $$BEGIN FOR i IN 1..40 LOOP
  EXECUTE format('CREATE TABLE a_small_%s (id int PRIMARY KEY, v text)', lpad(i::text, 2, '0'));
  EXECUTE format('INSERT INTO a_small_%s SELECT g, %L || g FROM generate_series(1, %s) g',
                 lpad(i::text, 2, '0'), 'v', 20 * i);
END LOOP; END$$;
ALTER TABLE a_small_02 ADD CONSTRAINT a_small_02_ref FOREIGN KEY (id) REFERENCES a_small_40(id) NOT VALID;
\connect postgres
CREATE DATABASE legacy ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\connect legacy
SET client_encoding = 'UTF8';
CREATE TABLE "Grüße" (id int PRIMARY KEY, t text);
INSERT INTO "Grüße" SELECT g, 'Grüß ' || g FROM generate_series(1, 2000) g;
CREATE TABLE "Maße" (id int, t text);
INSERT INTO "Maße" SELECT g, 'Maß ' || g FROM generate_series(1, 2000) g;
\connect inventory
CREATE TABLE products (id int PRIMARY KEY, name text UNIQUE);
CREATE TABLE stock (product int REFERENCES products(id), place text, n int CHECK (n >= 0));
CREATE INDEX stock_place ON stock (upper(place));
INSERT INTO products SELECT g, 'p' || g FROM generate_series(1, 5000) g;
INSERT INTO stock SELECT 1 + g % 5000, 'shelf ' || (g % 40), g % 100 FROM generate_series(1, 30000) g;
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sandbox import localpg

    pg = localpg.create(tmp_path_factory.mktemp("par-source") / "data")
    pg.start()
    subprocess.run(
        [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=SOURCE_SQL,
        text=True,
        env={**os.environ, **pg.env()},
        check=True,
        capture_output=True,
    )
    yield pg
    pg.destroy()


@pytest.fixture(scope="module")
def dump(source: Any) -> bytes:
    return subprocess.run(
        [str(source.bindir / "pg_dumpall")],
        env={**os.environ, **source.env()},
        check=True,
        capture_output=True,
    ).stdout


@pytest.fixture
def second_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sandbox import localpg

    pg = localpg.create(tmp_path_factory.mktemp("target-pg-2") / "data")
    pg.start()
    yield pg
    pg.destroy()


def restore(
    capsys: pytest.CaptureFixture[str], config: Path, url: str, target: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    code = main(
        ["--config", str(config), "restore", url, "--target", target, "--yes", "--json", *extra]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def catalog(pg: Any, database: str) -> dict[str, list[tuple[str, ...]]]:
    """What a restore must recreate beside the rows, in names (never OIDs)."""
    queries = {
        "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        "constraints": "SELECT conrelid::regclass::text, conname, contype, convalidated,"
        " condeferrable, condeferred, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace",
        "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)"
        " FROM pg_trigger WHERE NOT tgisinternal",
        "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences",
        "comments": "SELECT c.relname, d.objsubid, d.description FROM pg_description d"
        " JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass",
        "acls": "SELECT relname, relacl::text FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relacl IS NOT NULL",
        "large objects": "SELECT loid::text, md5(string_agg(data, ''::bytea ORDER BY pageno))"
        " FROM pg_largeobject GROUP BY loid",
        "partitions": "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits",
    }
    out = {}
    with psycopg.connect(pg.dsn(database), autocommit=True) as conn:
        for name, sql in queries.items():
            out[name] = sorted(tuple(str(v) for v in row) for row in conn.execute(sql))
    return out


def rows_of(report: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(t["database"], t["table"]): (t["expected"], t["restored"]) for t in report["tables"]}


def test_four_sessions_restore_exactly_what_one_session_restores(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source: Any,
    dump: bytes,
    target_pg: Any,
    second_target: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(dump, 1)})
    config = storage_config(tmp_path, bucket, s3_endpoint)
    url = f"s3://{bucket}/{KEY}"
    code, serial, err = restore(capsys, config, url, target_pg.dsn(), "--jobs", "1")
    assert code == 0, err
    assert "data sessions" not in err  # --jobs 1: the serial path, no lanes
    code, parallel, err = restore(capsys, config, url, second_target.dsn(), "--jobs", "4")
    assert code == 0, err
    assert parallel["status"] == "succeeded"
    assert re.search(r"table data loaded on up to [2-4] of 4 data sessions", err), err
    # The post-data's index builds and foreign keys ran on those sessions.
    m = re.search(r"(\d+) post-data statements \(indexes, keys\) ran on them", err)
    assert m and int(m[1]) >= 10, err
    # The validation's counts came from every session's COPY tags, and agree.
    assert rows_of(parallel) == rows_of(serial)
    assert all(expected == restored for expected, restored in rows_of(parallel).values())
    assert len(rows_of(parallel)) >= 50
    for db in DATABASES:
        assert table_digests(second_target, db) == table_digests(source, db), db
        assert table_digests(second_target, db) == table_digests(target_pg, db), db
        assert catalog(second_target, db) == catalog(target_pg, db), db
        assert catalog(second_target, db) == catalog(source, db), db
    with psycopg.connect(second_target.dsn("sales"), autocommit=True) as conn:
        # The trigger came after the data: it fired for no restored row (the source's
        # own audit rows are all there is).
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (60000,)
        nv = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'order_items_price_check'"
        ).fetchone()
        assert nv == (False,)

    # One database under a new name, beside the one restored already.
    code, renamed, err = restore(
        capsys, config, url, second_target.dsn(), "--jobs", "4", "--database", "sales:sales_copy"
    )
    assert code == 0, err
    assert renamed["databases_created"] == ["sales_copy"]
    assert table_digests(second_target, "sales_copy") == table_digests(source, "sales")
    assert catalog(second_target, "sales_copy") == catalog(source, "sales")


def open_files() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
    return out


def test_the_spool_takes_tables_while_sessions_are_busy_and_is_removed(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source: Any,
    dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(dump, 1)})
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    config = storage_config(
        tmp_path, bucket, s3_endpoint, restore={"jobs": 2, "spool_dir": str(spool_dir)}
    )
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 0, err
    # Forty small tables come first in the dump: the reader outruns two sessions.
    m = re.search(r"(\d+) tables? went through the spool in (\S+) \(at most", err)
    assert m and int(m[1]) > 0 and m[2] == str(spool_dir), err
    assert list(spool_dir.iterdir()) == []  # unlinked as they were made
    assert not [f for f in open_files() if f.startswith(str(spool_dir))]  # and closed
    for db in DATABASES:
        assert table_digests(target_pg, db) == table_digests(source, db), db
    assert all(e == r for e, r in rows_of(report).values())


def test_a_spool_limit_of_zero_makes_the_reader_wait_for_a_session(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source: Any,
    dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(dump, 1)})
    config = storage_config(tmp_path, bucket, s3_endpoint, restore={"spool_limit": "0B"})
    code, _, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "2")
    assert code == 0, err
    assert "none went through the spool" in err
    for db in DATABASES:
        assert table_digests(target_pg, db) == table_digests(source, db), db


def test_a_spool_dir_that_is_no_directory_is_a_config_error(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, capsys: Any
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    config = storage_config(tmp_path, bucket, s3_endpoint, restore={"spool_dir": str(not_a_dir)})
    code, _, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "2")
    assert code == 2
    assert f"restore.spool_dir: {not_a_dir} is not a directory" in err
    assert len(err.strip().splitlines()) <= 2  # the line and its hint


def spawn(cfg: Path, url: str, target: str, *extra: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--config", str(cfg), "restore", url]
        + ["--target", target, "--yes", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_spool_the_disk_cannot_hold_ends_in_one_line(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    dump: bytes,
    target_pg: Any,
) -> None:
    import resource

    def small_files() -> None:
        # Every file this process writes stops at 256 KiB (EFBIG, as a full disk's ENOSPC).
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    seed(bucket, {KEY: gzip.compress(dump, 1)})
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    proc = spawn(
        cfg, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "2", preexec_fn=small_files
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "could not hold" in line]
    assert len(lines) == 1, err
    assert "restore with --jobs 1 (no spool), set restore.spool_dir to a larger disk" in err


# --- failure and cancel mid-load -----------------------------------------------------------------
ORDERS = "COPY public.orders (id, customer, total, note) FROM stdin;\n"
CUSTOMERS = "COPY public.customers (id, email, name) FROM stdin;\n"


def held_in_orders(dump: bytes, bad_customer: bool) -> tuple[bytes, int]:
    """The dump as two gzip members, the first ending inside the orders rows (a proxy
    stalls there), and with a customer the target refuses (no email) when asked."""
    text = dump.decode("utf-8", "surrogateescape")
    if bad_customer:
        end = text.index("\\.\n", text.index(CUSTOMERS))
        text = text[:end] + "999999\t\\N\tno email\n" + text[end:]
    cut = text.index("\n", text.index(ORDERS) + len(ORDERS) + 600_000) + 1
    first = gzip.compress(text[:cut].encode("utf-8", "surrogateescape"), 1)
    return first + gzip.compress(text[cut:].encode("utf-8", "surrogateescape"), 1), len(first)


def copying_orders(pg: Any, proc: subprocess.Popen[str], timeout: float = 120) -> bool:
    """A data session of the restore is inside the orders table's COPY."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            if conn.execute(
                'SELECT 1 FROM pg_stat_activity WHERE query LIKE \'COPY "public"."orders"%\''
                " AND state = 'active' AND application_name = 'pgdeck-restore'"
            ).fetchall():
                return True
        time.sleep(0.05)
    return False


def counts(pg: Any, database: str) -> dict[str, int]:
    return {name: n for name, (n, _) in table_digests(pg, database).items()}


def test_a_session_failing_mid_copy_fails_the_restore_and_rolls_back_the_others(
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    source: Any,
    dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    obj, stall = held_in_orders(dump, bad_customer=True)
    seed(bucket, {KEY: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{KEY}".encode())
    config = storage_config(tmp_path, bucket, stalling_s3.url)
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "4"
    )
    assert code == 1, err
    assert report["status"] == "failed"
    error = report["error"]
    assert 'null value in column "email"' in error and '"public"."customers"' in error, error
    assert len([line for line in err.splitlines() if "null value" in line]) == 1, err
    # The reader was held inside the orders rows: their COPY was in flight, and is gone.
    restored = counts(target_pg, "sales")
    expected = counts(source, "sales")
    assert restored["public.orders"] == 0
    assert restored["public.customers"] == 0
    for table, n in restored.items():
        assert n in (0, expected[table]), table  # never a half-loaded table


def test_sigint_mid_load_with_four_sessions_exits_130_and_leaves_no_half_table(
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    source: Any,
    dump: bytes,
    target_pg: Any,
) -> None:
    obj, stall = held_in_orders(dump, bad_customer=False)
    seed(bucket, {KEY: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{KEY}".encode())
    cfg = storage_config(tmp_path, bucket, stalling_s3.url)
    proc = spawn(cfg, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "4", "--json")
    assert copying_orders(target_pg, proc), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(out)["status"] == "cancelled"
    restored = counts(target_pg, "sales")
    expected = counts(source, "sales")
    assert restored["public.orders"] == 0
    for table, n in restored.items():
        assert n in (0, expected[table]), table
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgdeck-restore'"
        ).fetchall()


def test_an_index_build_failing_on_a_data_session_fails_the_restore_in_one_line(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = dump.decode("utf-8", "surrogateescape")
    copy = "COPY public.a_small_05 (id, v) FROM stdin;\n"
    at = text.index(copy) + len(copy)
    seed(
        bucket,
        {
            KEY: gzip.compress(
                (text[:at] + "1\tv1\n" + text[at:]).encode("utf-8", "surrogateescape"), 1
            )
        },
    )
    config = storage_config(tmp_path, bucket, s3_endpoint)
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "4"
    )
    assert code == 1, err
    assert report["status"] == "failed"
    assert "could not create unique index" in report["error"], report["error"]
    assert "ADD CONSTRAINT a_small_05_pkey PRIMARY KEY" in report["error"]
    assert len([line for line in err.splitlines() if "could not create unique" in line]) == 1, err
    assert report["databases_incomplete"] == ["sales"]


def test_post_data_read_under_another_search_path_runs_on_the_main_session(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source: Any,
    dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Under any search_path but pg_dump's empty one, an unqualified function or operator
    # in an index could be the dump's own (reading another table still loading), and an
    # unqualified table name is not the one its COPY was keyed by: nothing is placed.
    empty = b"SELECT pg_catalog.set_config('search_path', '', false);\n"
    assert dump.count(empty) >= len(DATABASES)
    changed = dump.replace(empty, empty + b"SET search_path = public, pg_catalog;\n")
    seed(bucket, {KEY: gzip.compress(changed, 1)})
    config = storage_config(tmp_path, bucket, s3_endpoint)
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--jobs", "4"
    )
    assert code == 0, err
    assert re.search(r"table data loaded on up to [2-4] of 4 data sessions", err), err
    assert "post-data statements" not in err
    assert report["parallel"]["postdata_statements"] == 0
    for db in DATABASES:
        assert table_digests(target_pg, db) == table_digests(source, db), db
        assert catalog(target_pg, db) == catalog(source, db), db
