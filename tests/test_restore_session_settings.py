"""``restore.session_settings``: what pgdeck's own sessions on the target run with, checked
against an allow-list, in effect on the server, and stated in the report; and the report's
account of the data sessions and of where the time went (issue 16).

The server is a real one whose log shows what its sessions did: ``trace_sort`` makes each
index build log the sort memory it was given (its ``maintenance_work_mem``),
``log_statement`` every statement, and the log line prefix names the application and the
backend's pid, so the test sees which of pgdeck's sessions built what with how much memory.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.config import DEFAULT_SESSION_SETTINGS, parse_config, session_settings_for
from services.errors import ConfigError
from tests.conftest import seed, storage_config, table_digests
from tui.cli import main

KEY = "spilo/acid-shop/0f000000-0000-4000-8000-000000000017/logical_backups/1763600000.sql.gz"

SOURCE_SQL = r"""
CREATE DATABASE shop;
\connect shop
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, customer int REFERENCES customers(id), note text);
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX customers_email ON customers (email);
CREATE TABLE items (order_id bigint REFERENCES orders(id), line int, PRIMARY KEY (order_id, line));
INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 5000) g;
INSERT INTO orders SELECT g, 1 + g % 5000, md5(g::text) FROM generate_series(1, 30000) g;
INSERT INTO items SELECT 1 + g % 30000, g FROM generate_series(1, 20000) g;
"""

WORK_MEM = 4096  # the server's default work_mem, in kB
SORT = re.compile(r"^pgdeck-restore\|(\d+)\| LOG:  begin index sort: .*workMem = (\d+)", re.M)


@pytest.fixture(scope="module")
def shop_dump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, bytes]]:
    from sandbox import localpg

    pg = localpg.create(tmp_path_factory.mktemp("settings-source") / "data")
    pg.start()
    env = {**os.environ, **pg.env()}
    subprocess.run(
        [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
        input=SOURCE_SQL,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    dump = subprocess.run(
        [str(pg.bindir / "pg_dumpall")], env=env, check=True, capture_output=True
    ).stdout
    yield pg, dump
    pg.destroy()


@pytest.fixture
def logged_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A target whose log shows each session's index sorts and statements."""
    from sandbox import localpg

    pg = localpg.create(
        tmp_path_factory.mktemp("settings-target") / "data",
        settings={
            "trace_sort": "on",
            "log_statement": "all",
            "log_line_prefix": "%a|%p| ",
            "max_parallel_maintenance_workers": "0",  # one sort per index build
        },
    )
    pg.start()
    yield pg
    pg.destroy()


def restore(capsys: Any, config: Path, url: str, target: str, *extra: str) -> tuple[int, Any, str]:
    code = main(
        ["--config", str(config), "restore", url, "--target", target, "--yes", "--json", *extra]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def sorts(pg: Any) -> list[tuple[int, int]]:
    """(pid, sort memory in kB) of each index build pgdeck's sessions ran."""
    text = pg.logfile.read_text(encoding="utf-8", errors="replace")
    return [(int(pid), int(kb)) for pid, kb in SORT.findall(text)]


def test_the_default_settings_are_in_effect_on_every_session_and_stated_in_the_report(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    shop_dump: tuple[Any, bytes],
    logged_target: Any,
    capsys: Any,
) -> None:
    source, dump = shop_dump
    seed(bucket, {KEY: gzip.compress(dump, 1)})
    config = storage_config(tmp_path, bucket, s3_endpoint)
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", logged_target.dsn(), "--jobs", "2"
    )
    assert code == 0, err
    assert table_digests(logged_target, "shop") == table_digests(source, "shop")
    assert report["session_settings"] == {
        "maintenance_work_mem": "256MB",
        "synchronous_commit": "off",
        "max_parallel_maintenance_workers": "0",  # auto, with --jobs 2
    }
    built = sorts(logged_target)
    # Five indexes (three primary keys, two plain) built by the data sessions, and the
    # TOAST tables' indexes by the main session's CREATE TABLEs: each with 256MB (the
    # server's own default would give 65536 kB; a unique build's second sort, of dead
    # rows, takes work_mem, 4096 kB).
    assert len([kb for _, kb in built if kb == 256 << 10]) >= 5, built
    assert {kb for _, kb in built} <= {256 << 10, WORK_MEM}, built
    assert len({pid for pid, _ in built}) == 3  # the main session and both data sessions
    log = logged_target.logfile.read_text(encoding="utf-8", errors="replace")
    # The end made durable: one synchronous commit after the last COPY, before validation.
    flush = log.index("statement: SET LOCAL synchronous_commit = on")
    assert log.index("statement: SELECT pg_catalog.txid_current()", flush) > flush
    assert log.rindex("pgdeck-restore") > flush
    assert "durable_flush_seconds" in report["time_split"]

    # Where the time went, and the data sessions' account.
    split = report["time_split"]
    for part in ("download", "decompress", "reading", "waiting_for_data"):
        assert split[f"{part}_seconds"] >= 0, part
    assert split["decompress_seconds"] > 0
    parallel = report["parallel"]
    assert parallel["jobs"] == 2 and 1 <= parallel["busiest"] <= 2
    sessions = parallel["sessions"]
    assert [s["session"] for s in sessions] == [1, 2]
    # Every table's COPY is counted once, on the session that loaded it, with its bytes.
    assert sum(s["tables"] for s in sessions) == 3
    copy_text = sum(
        len(block)
        for block in re.findall(rb"FROM stdin;\n(.*?)\\\.\n", dump, re.S)  # the rows' bytes
    )
    assert sum(s["copy_bytes"] for s in sessions) == copy_text
    assert sum(s["postdata_statements"] for s in sessions) == parallel["postdata_statements"]
    assert parallel["postdata_statements"] >= 7  # 3 primary keys, 2 indexes, 2 foreign keys
    assert parallel["postdata_runs"] >= 1
    assert parallel["largest_spool_bytes"] >= 0
    markdown = Path(report["archived"]["markdown"].removeprefix("file://")).read_text()
    assert "- `maintenance_work_mem = 256MB`" in markdown
    assert "## Data sessions" in markdown and "## Where the time went" in markdown


def test_configured_settings_replace_the_defaults_on_the_one_session_path(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    shop_dump: tuple[Any, bytes],
    logged_target: Any,
    capsys: Any,
) -> None:
    _, dump = shop_dump
    seed(bucket, {KEY: gzip.compress(dump, 1)})
    config = storage_config(
        tmp_path,
        bucket,
        s3_endpoint,
        restore={"session_settings": {"maintenance_work_mem": "100MB", "synchronous_commit": None}},
    )
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", logged_target.dsn())
    assert code == 0, err
    # auto, with --jobs 1: the server's own max_parallel_maintenance_workers.
    assert report["session_settings"] == {"maintenance_work_mem": "100MB"}
    built = sorts(logged_target)
    assert len([kb for _, kb in built if kb == 100 << 10]) >= 5, built
    assert {kb for _, kb in built} <= {100 << 10, WORK_MEM}, built
    assert len({pid for pid, _ in built}) == 1  # --jobs 1: the main session builds them
    assert report["parallel"] is None
    # synchronous_commit left to the server: no flush of pgdeck's own.
    log = logged_target.logfile.read_text(encoding="utf-8", errors="replace")
    assert "SET LOCAL synchronous_commit" not in log
    assert "durable_flush_seconds" not in report["time_split"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fsync": "off"}, "restore.session_settings.fsync: not a setting a restore may give"),
        (
            {"search_path": "evil"},
            "restore.session_settings.search_path: not a setting a restore may give",
        ),
        (
            {"maintenance_work_mem": "1GB -c session_replication_role=replica"},
            "restore.session_settings.maintenance_work_mem: expected a size with its unit",
        ),
        (
            {"synchronous_commit": "maybe"},
            "restore.session_settings.synchronous_commit: expected on, off, local",
        ),
        (
            {"maintenance_work_mem": "512kB"},
            "restore.session_settings.maintenance_work_mem: must be between 1024kB and 2TB",
        ),
        (
            {"max_parallel_maintenance_workers": "2; DROP"},
            "restore.session_settings.max_parallel_maintenance_workers: expected auto or a whole",
        ),
        (["maintenance_work_mem"], "restore.session_settings: expected a mapping"),
    ],
)
def test_a_hostile_session_setting_is_refused_in_one_line_with_exit_2(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: Any,
    settings: Any,
    message: str,
) -> None:
    config = storage_config(tmp_path, bucket, s3_endpoint, restore={"session_settings": settings})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 2
    assert report == {}
    assert message in err, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the line and its hint


def test_session_settings_read_yaml_as_written(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    assert parse_config("", path).restore.session_settings == DEFAULT_SESSION_SETTINGS
    cfg = parse_config(
        "restore:\n  session_settings:\n    synchronous_commit: on\n"
        "    work_mem: 64MB\n    max_parallel_maintenance_workers: 2\n",
        path,
    )
    # YAML reads a bare on as true: it is the setting's on.
    assert dict(cfg.restore.session_settings) == {
        "maintenance_work_mem": "256MB",
        "synchronous_commit": "on",
        "work_mem": "64MB",
        "max_parallel_maintenance_workers": "2",
    }
    with pytest.raises(ConfigError):
        parse_config("restore:\n  session_settings:\n    work_mem: 32kB\n", path)


def test_parallel_index_builds_are_left_to_the_data_sessions_unless_configured(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"

    def given(text: str, jobs: int) -> dict[str, str]:
        settings = parse_config(text, path).restore.session_settings
        return dict(session_settings_for(settings, jobs))

    assert given("", 1) == {"maintenance_work_mem": "256MB", "synchronous_commit": "off"}
    for jobs in (2, 4):
        assert given("", jobs)["max_parallel_maintenance_workers"] == "0"
    auto = "restore:\n  session_settings:\n    max_parallel_maintenance_workers: auto\n"
    assert "max_parallel_maintenance_workers" not in given(auto, 1)
    assert given(auto, 2)["max_parallel_maintenance_workers"] == "0"
    two = "restore:\n  session_settings:\n    max_parallel_maintenance_workers: 2\n"
    assert given(two, 1)["max_parallel_maintenance_workers"] == "2"
    assert given(two, 4)["max_parallel_maintenance_workers"] == "2"
    server = "restore:\n  session_settings:\n    max_parallel_maintenance_workers: null\n"
    assert "max_parallel_maintenance_workers" not in given(server, 4)
