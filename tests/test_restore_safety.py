"""A restore that stops never leaves a silent half; a production server is known by its identity.

Real signals to a real ``pgdeck restore`` process mid-COPY, a real second restore racing the
first, production targets reached by other spellings, and databases left incomplete.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import held_mid_copy, seed, storage_config, table_digests
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
KEY = "spilo/acid-shop/0f000000-0000-4000-8000-000000000001/logical_backups/1763600000.sql.gz"
ORDERS = "COPY public.orders (id, customer, note) FROM stdin;\n"


def spawn(cfg: Path, url: str, target: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--config",
            str(cfg),
            "restore",
            url,
            "--target",
            target,
            "--yes",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def hold_mid_copy(stalling_s3: Any, bucket: str, source_dump: bytes) -> None:
    """The backup, and a proxy that will stall its download inside the orders rows: the
    restore then waits there, mid-COPY, for as long as the test needs."""
    obj, stall = held_mid_copy(source_dump)
    seed(bucket, {KEY: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{KEY}".encode())


def wait_mid_orders(proc: subprocess.Popen[str]) -> list[str]:
    """Read the restore's progress lines until it is inside the orders table's COPY."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        m = re.search(r"shop public\.orders ([\d,]+) rows", line)
        if m and int(m[1].replace(",", "")) > 0:
            return seen
    raise AssertionError("the restore never reported loading public.orders:\n" + "".join(seen))


def orders_rows(pg: Any) -> int | None:
    with psycopg.connect(pg.dsn("shop"), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM public.orders").fetchone()
    return int(row[0]) if row else None


def no_restore_sessions(pg: Any, timeout: float = 30) -> bool:
    """The server has let go of every pgdeck session (it notices a dead client promptly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgdeck-restore'"
            ).fetchall():
                return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_mid_copy_rolls_the_table_back_and_says_what_was_left(
    sig: signal.Signals,
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    hold_mid_copy(stalling_s3, bucket, source_dump)
    cfg = storage_config(tmp_path, bucket, stalling_s3.url)
    proc = spawn(cfg, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--json")
    wait_mid_orders(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig.value, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["status"] == "cancelled"
    # The COPY in flight was rolled back, never ended as if its input had finished.
    assert orders_rows(target_pg) == 0
    assert report["databases_incomplete"] == ["shop"]
    assert "left incomplete on the target (created by this restore): shop" in err
    audit = json.loads((tmp_path / "archive" / "audit.log").read_text().splitlines()[-1])
    assert audit["outcome"] == "cancelled"
    assert no_restore_sessions(target_pg)


def test_sigkill_mid_copy_leaves_no_rows_and_the_next_start_marks_the_report_interrupted(
    tmp_path: Path, bucket: str, stalling_s3: Any, source_dump: bytes, target_pg: Any
) -> None:
    hold_mid_copy(stalling_s3, bucket, source_dump)
    cfg = storage_config(tmp_path, bucket, stalling_s3.url)
    proc = spawn(cfg, f"s3://{bucket}/{KEY}", target_pg.dsn())
    wait_mid_orders(proc)
    proc.kill()
    proc.communicate(timeout=30)
    # No loader outlives pgdeck: the server sees the connection go and rolls the COPY back.
    assert no_restore_sessions(target_pg)
    assert orders_rows(target_pg) == 0
    running = list((tmp_path / "archive").rglob("running/*.json"))
    assert len(running) == 1
    # The next pgdeck that reads the archive finds the process gone.
    assert main(["--config", str(cfg), "audit", "verify"]) == 0
    audit = [
        json.loads(line) for line in (tmp_path / "archive" / "audit.log").read_text().splitlines()
    ]
    assert audit[-1]["outcome"] == "interrupted" and audit[-1]["action"] == "restore"
    report = json.loads((tmp_path / "archive" / audit[-1]["report"]).read_text())
    assert report["status"] == "interrupted"


def test_a_second_restore_into_the_same_target_refuses_while_the_first_runs(
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hold_mid_copy(stalling_s3, bucket, source_dump)
    cfg = storage_config(tmp_path, bucket, stalling_s3.url)
    first = spawn(cfg, f"s3://{bucket}/{KEY}", target_pg.dsn())
    wait_mid_orders(first)
    code = main(
        [
            "--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target",
            target_pg.dsn(), "--yes", "--database", "shop:shop_second", "--json",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 1 and report["status"] == "failed"
    assert report["error"].startswith("another restore is writing to ")
    assert "nothing was written" in report["error"]
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert "shop_second" not in names  # the second wrote nothing
    # The first is still inside its COPY, untouched by the second: stop it.
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM.value
    assert orders_rows(target_pg) == 0


@pytest.mark.parametrize(
    "spelling",
    ["tcp-localhost", "tcp-127.0.0.1", "hostaddr", "pghost-env"],
)
def test_a_production_server_needs_its_confirmation_however_it_is_reached(
    spelling: str,
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production is configured by its Unix socket; the user types another way to it.
    cfg = storage_config(
        tmp_path,
        bucket,
        s3_endpoint,
        targets={"prod": {"dsn": target_pg.dsn(), "production": True}},
    )
    seed(bucket, {KEY: gzip.compress(source_dump)})
    port = target_pg.port
    typed = {
        "tcp-localhost": f"host=localhost port={port} user=postgres",
        "tcp-127.0.0.1": f"postgresql://postgres@127.0.0.1:{port}/postgres",
        "hostaddr": f"hostaddr=127.0.0.1 port={port} user=postgres dbname=template1",
        "pghost-env": "user=postgres",
    }[spelling]
    if spelling == "pghost-env":
        monkeypatch.setenv("PGHOST", "127.0.0.1")
        monkeypatch.setenv("PGPORT", str(port))
    argv = ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", typed, "--yes"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is the server of production target 'prod'" in err
    assert (
        err.strip().splitlines()[-1]
        == "pgdeck: target 'prod' is production; pass --yes-production prod to restore into it"
    )
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert "shop" not in {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert main([*argv, "--yes-production", "prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # The report names the server as the live connection reports it.
    assert report["target"].startswith("postgres@127.0.0.1:") and report["target_name"] == "prod"
    assert report["scope"]["target_system_identifier"].isdigit()


def test_on_failure_drop_removes_only_what_this_restore_created(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A real failure inside the second database: a table the dump fills twice.
    text = source_dump.decode()
    grusse = 'COPY public."Grüße" (id, text) FROM stdin;\n'
    assert grusse in text
    text = text.replace(grusse, grusse + "1\tdouble\n", 1)
    seed(bucket, {KEY: gzip.compress(text.encode())})
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE keepme")
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    code = main(
        ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", target_pg.dsn(),
         "--yes", "--json", "--on-failure", "drop"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 1 and report["status"] == "failed"
    assert "is duplicated" in report["error"]
    assert report["databases_incomplete"] == ["Ünïcode db"]
    assert report["databases_dropped"] == ["Ünïcode db"]
    assert "dropped again (--on-failure drop): Ünïcode db" in err
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert "Ünïcode db" not in names
    assert {"keepme", "shop"} <= names  # one existed before; one finished loading
    md = Path(report["archived"]["markdown"]).read_text()
    assert "Dropped again" in md and "Ünïcode db" in md


def test_a_failed_restore_says_what_it_left_incomplete_by_default(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = source_dump.decode().replace(ORDERS, ORDERS + "1\t1\tduplicate of an existing id\n", 1)
    seed(bucket, {KEY: gzip.compress(text.encode())})
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    code = main(
        ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", target_pg.dsn(),
         "--yes"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "left incomplete on the target (created by this restore): shop" in err
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert "shop" in {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_a_password_in_the_target_is_warned_about_and_a_password_file_is_used(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE postgres PASSWORD 'file-secret'")
        hba = conn.execute("SHOW hba_file").fetchone()[0]  # type: ignore[index]
    Path(hba).write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    seed(bucket, {KEY: gzip.compress(source_dump)})
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    url = f"s3://{bucket}/{KEY}"
    inline = f"postgresql://postgres:file-secret@127.0.0.1:{target_pg.port}/postgres"
    assert (
        main(
            [
                "--config",
                str(cfg),
                "restore",
                url,
                "--target",
                inline,
                "--yes",
                "--database",
                "shop:one",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "visible to other local users in the process list" in err
    assert "--target-password-file" in err and "file-secret" not in err
    secret = tmp_path / "pw"
    secret.write_text("file-secret\n")
    bare = f"host=127.0.0.1 port={target_pg.port} user=postgres"
    code = main(
        ["--config", str(cfg), "restore", url, "--target", bare, "--yes", "--database", "shop:two",
         "--target-password-file", str(secret)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "visible to other local users" not in err
    assert main(
        ["--config", str(cfg), "restore", url, "--target", bare, "--yes",
         "--target-password-file", str(tmp_path / "missing")]
    ) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("pgdeck: --target-password-file ")


ODD_NAMES = ['we"ird', "it's", "two words", "Ümlaut Straße", "back\\slash"]


def test_databases_with_quotes_spaces_and_non_ascii_names_restore_and_validate(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from psycopg import sql

    from sandbox import localpg

    source = localpg.create(tmp_path_factory.mktemp("odd-source") / "data")
    source.start()
    try:
        for name in ODD_NAMES:
            with psycopg.connect(source.dsn(), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(source.dsn(name), autocommit=True) as conn:
                conn.execute('CREATE TABLE "t ""q""" (id int PRIMARY KEY, v text)')
                conn.execute(
                    sql.SQL(
                        'INSERT INTO "t ""q""" SELECT g, {} FROM generate_series(1, {}) g'
                    ).format(sql.Literal(name), sql.Literal(len(name)))
                )
        env = {**os.environ, **source.env()}
        dump = subprocess.run(
            [str(source.bindir / "pg_dumpall")], env=env, check=True, capture_output=True
        ).stdout
        seed(bucket, {KEY: gzip.compress(dump)})
        cfg = storage_config(tmp_path, bucket, s3_endpoint)
        code = main(
            ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", target_pg.dsn(),
             "--yes", "--json"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        report = json.loads(out)
        assert code == 0, report.get("error") or err
        checked = {(t["database"], t["table"]): t["restored"] for t in report["tables"]}
        for name in ODD_NAMES:
            assert checked[(name, 'public.t "q"')] == len(name)
            assert table_digests(target_pg, name) == table_digests(source, name)
        # One of them alone, under a new odd name, validated too (never "passed (0 tables)").
        code = main(
            ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", target_pg.dsn(),
             "--yes", "--json", "--database", "it's:it''s \"copy\""]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report.get("error")
        assert report["validation"]["completeness"]["tables_checked"] == 1
        assert table_digests(target_pg, "it''s \"copy\"") == table_digests(source, "it's")
    finally:
        source.destroy()


def test_a_dump_cut_short_names_the_database_it_left_half_loaded_and_drops_it_when_asked(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # pg_dumpall died inside the second database; pigz still closed the gzip cleanly.
    text = source_dump.decode()
    cut = text.index('COPY public."Grüße"')
    seed(bucket, {KEY: gzip.compress(text[:cut].encode())})
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    argv = ["--config", str(cfg), "restore", f"s3://{bucket}/{KEY}", "--target", target_pg.dsn()]
    code = main([*argv, "--yes", "--json", "--on-failure", "drop"])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 1 and "trailer never arrived" in report["error"]
    assert report["databases_incomplete"] == ["Ünïcode db"]
    assert report["databases_dropped"] == ["Ünïcode db"]
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert "Ünïcode db" not in names and "shop" in names  # shop was read to its end


def test_a_signal_before_anything_is_written_exits_with_its_number(
    tmp_path: Path, bucket: str, stalling_s3: Any, source_dump: bytes, target_pg: Any
) -> None:
    # --verify-first reads the object before any write; the read stalls, the signal lands.
    seed(bucket, {KEY: gzip.compress(source_dump)})
    stalling_s3.stall_after(2000, match=f"GET /{bucket}/{KEY}".encode())
    cfg = storage_config(tmp_path, bucket, stalling_s3.url)
    proc = spawn(cfg, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--verify-first")
    assert proc.stderr is not None
    for _ in range(1200):  # until the proxy has served its 2000 bytes and gone silent
        if stalling_s3.stalls:
            break
        time.sleep(0.05)
    assert stalling_s3.stalls == 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM.value
    assert err.strip().splitlines()[-1] == "pgdeck: interrupted; nothing was written"
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert "shop" not in {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
