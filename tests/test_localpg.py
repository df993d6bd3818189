"""sandbox.localpg against the machine's real PostgreSQL binaries (no mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest

from sandbox import localpg
from services.errors import PgdeckError

try:
    BINDIR: Path | None = localpg.find_bindir()
except PgdeckError:  # pragma: no cover - depends on the machine
    BINDIR = None

needs_pg = pytest.mark.skipif(BINDIR is None, reason="PostgreSQL server binaries not installed")


@needs_pg
def test_create_start_query_stop(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / "pg")
    assert not pg.running()
    assert pg.bindir == BINDIR
    assert f"port={pg.port}" in pg.dsn() and "user=postgres" in pg.dsn()
    try:
        pg.start()
        assert pg.running()
        with psycopg.connect(pg.dsn()) as conn:
            row = conn.execute(
                "SELECT current_user, current_database(), current_setting('fsync'),"
                " current_setting('server_encoding'), current_setting('server_version_num')::int"
            ).fetchone()
        assert row is not None
        assert row[:4] == ("postgres", "postgres", "off", "UTF8")
        assert row[4] >= 100000
        # TCP on loopback too (tests and tools connect that way)
        with psycopg.connect(
            host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres"
        ) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO t VALUES (1, 'Jürgen'), (2, '東京')")
            conn.commit()
            assert conn.execute("SELECT name FROM t ORDER BY id").fetchall() == [
                ("Jürgen",),
                ("東京",),
            ]
        pg.start()  # already running: a no-op
    finally:
        pg.stop()
    assert not pg.running()
    pg.stop()  # stopped: a no-op


@needs_pg
def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / "data", settings={"work_mem": "8MB", "application_name": "x y"})
    with pg as running:
        assert running is pg and pg.running()
        with psycopg.connect(pg.dsn("template1")) as conn:
            assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
            assert conn.execute("SELECT current_database()").fetchone() == ("template1",)
    assert not pg.running()


@needs_pg
def test_env_drives_child_processes(tmp_path: Path) -> None:
    with localpg.create(tmp_path / "pg") as pg:
        env = {**os.environ, **pg.env()}
        assert env["PGPORT"] == str(pg.port) and env["PGHOST"] == pg.host
        out = subprocess.run(
            [str(pg.bindir / "psql"), "-XAtc", "SELECT 6 * 7", "postgres"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == "42"


@needs_pg
def test_open_existing_finds_port_and_socket(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / "pg", port=localpg.free_port())
    again = localpg.open_existing(tmp_path / "pg")
    assert (again.port, again.host, again.datadir) == (pg.port, pg.host, pg.datadir)
    with again, psycopg.connect(again.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not pg.running()


@needs_pg
def test_destroy_removes_everything(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / "pg")
    pg.start()
    pg.destroy()
    assert not pg.running()
    assert not pg.datadir.exists()
    assert not Path(pg.host).exists()


@needs_pg
def test_start_failure_says_why(tmp_path: Path) -> None:
    first = localpg.create(tmp_path / "one")
    second = localpg.create(tmp_path / "two", port=first.port)
    with first:
        with pytest.raises(PgdeckError) as err:
            second.start(timeout=10)
        text = str(err.value)
        assert "did not start" in text and str(second.datadir) in text
        assert "Address already in use" in text or "could not" in text
        assert str(second.logfile) in text  # the hint says where to look
        assert "\n" not in text
    assert not second.running()


@needs_pg
def test_a_chosen_port_taken_before_the_start_is_chosen_again(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / "data")
    taken = pg.port
    # Another program binds the port between create() and start().
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", taken))
        other.listen()
        with pg:
            assert pg.port != taken
            with psycopg.connect(pg.dsn()) as conn:
                assert conn.execute("SHOW port").fetchone() == (str(pg.port),)
            assert localpg.open_existing(pg.datadir).port == pg.port
    pg.destroy()


@needs_pg
def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "precious.txt").write_text("keep me")
    with pytest.raises(PgdeckError, match="not empty"):
        localpg.create(tmp_path / "pg")
    assert (tmp_path / "pg" / "precious.txt").read_text() == "keep me"


def test_open_existing_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(PgdeckError, match="cannot open the PostgreSQL data directory"):
        localpg.open_existing(tmp_path / "missing")


def test_missing_bindir_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PGDECK_PG_BINDIR", str(empty))
    with pytest.raises(PgdeckError) as err:
        localpg.find_bindir()
    assert err.value.message.startswith("PostgreSQL server binaries not found")
    assert err.value.hint == (
        "install postgresql (apt-get install postgresql) or set PGDECK_PG_BINDIR"
    )
    with pytest.raises(PgdeckError, match="PostgreSQL server binaries not found"):
        localpg.create(tmp_path / "pg")
    assert not (tmp_path / "pg").exists()


@needs_pg
def test_bindir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BINDIR is not None
    monkeypatch.setenv("PGDECK_PG_BINDIR", str(BINDIR))
    assert localpg.find_bindir() == BINDIR


@needs_pg
def test_long_paths_get_a_short_socket_directory(tmp_path: Path) -> None:
    pg = localpg.create(tmp_path / ("d" * 90) / "pg")
    try:
        assert len(pg.host) < 60 and Path(pg.host).is_dir()
        assert localpg.open_existing(pg.datadir).host == pg.host
        with pg, psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pg.destroy()
    assert not Path(pg.host).exists()
