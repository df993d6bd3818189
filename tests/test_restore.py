"""Restores of real pg_dumpall output into real PostgreSQL servers, compared by content."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.config import StorageLocation
from services.restore import RestoreEngine
from services.restore_events import TableLoaded
from services.restore_plan import Scope
from services.storage import S3Store
from services.target import ResolvedTarget, resolve_target
from tests.conftest import seed, storage_config, table_digests
from tui.cli import main

KEY = "spilo/acid-shop/0f000000-0000-4000-8000-000000000001/logical_backups/1763600000.sql.gz"
SOURCE_DBS = ("shop", "Ünïcode db")


@pytest.fixture
def config(tmp_path: Path, bucket: str, s3_endpoint: str) -> Path:
    return storage_config(tmp_path, bucket, s3_endpoint)


def restore(
    capsys: pytest.CaptureFixture[str], config: Path, url: str, target: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    code = main(
        ["--config", str(config), "restore", url, "--target", target, "--yes", "--json", *extra]
    )
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def databases(pg: Any) -> set[str]:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_whole_cluster_restore_matches_the_source_table_by_table(
    config: Path,
    bucket: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 0, err
    assert report["status"] == "succeeded"
    assert (
        report["validation"]["completeness"]["passed"]
        and report["validation"]["integrity"]["passed"]
    )
    assert {fk["constraint"] for fk in report["validation"]["integrity"]["foreign_keys"]} >= {
        "orders_customer_fkey"
    }
    assert report["ttr_seconds"] > 0 and [p["name"] for p in report["phases"]][:1] == ["preflight"]
    assert {"restore shop", "restore Ünïcode db", "validate"} <= {
        p["name"] for p in report["phases"]
    }
    rows = {(t["database"], t["table"]): (t["expected"], t["restored"]) for t in report["tables"]}
    assert rows[("shop", "public.orders")] == (120, 120)
    for db in SOURCE_DBS:
        assert table_digests(target_pg, db) == table_digests(source_pg, db), db
    # The report and the audit line are archived; the role's password is not restored.
    archive = tmp_path / "archive"
    audit = (archive / "audit.log").read_text().splitlines()
    assert json.loads(audit[-1])["outcome"] == "succeeded"
    assert Path(report["archived"]["markdown"]).read_text().startswith("# Restore succeeded")
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'appuser'"
        ).fetchone() == (None,)
    assert "SCRAM-SHA-256" not in json.dumps(report)


def test_one_database_under_a_new_name_beside_the_live_one(
    config: Path,
    bucket: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop")  # the live one, untouched
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "shop:shop_restored"
    )
    assert code == 0, err
    assert databases(target_pg) >= {"shop", "shop_restored"}
    assert "Ünïcode db" not in databases(target_pg)
    assert table_digests(target_pg, "shop_restored") == table_digests(source_pg, "shop")
    assert table_digests(target_pg, "shop") == {}
    assert report["databases_created"] == ["shop_restored"]


def test_a_non_ascii_database_alone(
    config: Path,
    bucket: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, _, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "Ünïcode db:ü 2"
    )
    assert code == 0, err
    assert table_digests(target_pg, "ü 2") == table_digests(source_pg, "Ünïcode db")
    assert "shop" not in databases(target_pg)


@pytest.mark.parametrize(
    ("mode", "exists", "password"),
    [("all", True, True), ("no-passwords", True, False), ("skip", False, False)],
)
def test_roles_modes(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    exists: bool,
    password: bool,
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--roles", mode
    )
    assert code == 0, err
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'appuser'"
        ).fetchone()
    assert (row is not None) == exists
    if row is not None:
        assert row[0] == password


def test_existing_roles_are_left_alone_and_expected_errors_are_warnings(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE appuser LOGIN CONNECTION LIMIT 3 PASSWORD 'kept-by-the-operator'")
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 0, err
    assert report["scope"]["existing_roles_left_alone"] == ["appuser", "postgres"]
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        limit, pw = conn.execute(
            "SELECT rolconnlimit, rolpassword FROM pg_authid WHERE rolname = 'appuser'"
        ).fetchone()  # type: ignore[misc]
    assert limit == 3 and pw is not None
    # --roles all replays the dump's ALTER ROLE (passwords included) but never a CREATE
    # ROLE that would fail: psql runs with ON_ERROR_STOP, so any error left is real.
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        for db in ("shop", "Ünïcode db"):
            conn.execute(f'DROP DATABASE "{db}"')
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--roles", "all"
    )
    assert code == 0, err
    assert any("roles the target already has" in w and "appuser" in w for w in report["warnings"])


def test_a_real_sql_error_stops_the_restore_with_its_statement(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = source_dump.decode()
    marker = "CREATE TABLE public.orders ("
    broken = text.replace(marker, "CREATE TABLE public.orders (id int);\n" + marker, 1)
    seed(bucket, {KEY: gzip.compress(broken.encode())})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1
    assert report["status"] == "failed"
    assert 'relation "orders" already exists' in report["error"]
    assert "CREATE TABLE public.orders (" in report["error"]
    assert "Traceback" not in err


def test_a_non_empty_target_is_refused_then_replaced_with_drop_existing(
    config: Path,
    bucket: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    assert restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())[0] == 0
    code, report, _ = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1 and "database 'shop' already exists on the target" in report["error"]
    assert "--drop-existing" in report["error"]
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--drop-existing"
    )
    assert code == 0, err
    assert table_digests(target_pg, "shop") == table_digests(source_pg, "shop")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: gzip.compress(d[: len(d) * 2 // 3]), "trailer never arrived"),
        (lambda d: gzip.compress(d)[: len(gzip.compress(d)) * 2 // 3], "gzip stream is truncated"),
        (lambda d: b"", "object is empty"),
        (lambda d: b"\x1f\x8b\x08\x00garbage-garbage-garbage", "not intact gzip"),
    ],
)
def test_damaged_backups_fail_with_a_clear_message(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    damage: Any,
    message: str,
) -> None:
    seed(bucket, {KEY: damage(source_dump)})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1
    assert message in report["error"]
    assert "Traceback" not in err


def test_empty_or_corrupt_backups_are_refused_before_any_write(
    config: Path, bucket: str, target_pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = databases(target_pg)
    seed(bucket, {KEY: b""})
    code, report, _ = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1 and "object is empty" in report["error"]
    assert databases(target_pg) == before
    assert report["phases"][0]["name"] == "preflight" and len(report["phases"]) == 1


def test_wrong_password_is_clear_and_never_printed(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE postgres PASSWORD 'right-password'")
        hba = conn.execute("SHOW hba_file").fetchone()[0]  # type: ignore[index]
    Path(hba).write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    seed(bucket, {KEY: gzip.compress(source_dump)})
    dsn = f"postgresql://postgres:wrong-secret-pw@127.0.0.1:{target_pg.port}/postgres"
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", dsn)
    # Refused at the first connection, before anything started: one line, no report.
    assert code == 1 and report == {}
    assert err.strip().splitlines()[-1].startswith("pgdeck: target postgres@127.0.0.1:")
    assert "password authentication failed" in err
    assert "wrong-secret-pw" not in err
    good = f"postgresql://postgres:right-password@127.0.0.1:{target_pg.port}/postgres"
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", good)
    assert code == 0, err
    assert "right-password" not in json.dumps(report) + err


def test_unreachable_target(
    config: Path, bucket: str, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", "host=127.0.0.1 port=9 user=postgres"
    )
    assert code == 1 and report == {}
    assert "cannot connect" in err and "Traceback" not in err


def test_production_target_needs_its_name_typed(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = storage_config(
        tmp_path,
        bucket,
        s3_endpoint,
        targets={"prod": {"dsn": target_pg.dsn(), "production": True}},
    )
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, _, err = restore(capsys, cfg, f"s3://{bucket}/{KEY}", "prod")
    assert code == 2 and "--yes-production prod" in err
    assert databases(target_pg) == {"postgres", "template0", "template1"}
    code, report, err = restore(
        capsys, cfg, f"s3://{bucket}/{KEY}", "prod", "--yes-production", "prod"
    )
    assert code == 0, err
    assert report["target_name"] == "prod"


def test_a_failing_team_check_fails_integrity(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = storage_config(
        tmp_path,
        bucket,
        s3_endpoint,
        validation={
            "checks": [
                {
                    "name": "no_sad_customers",
                    "database": "shop",
                    "sql": "SELECT id FROM customers WHERE mood = 'sad'",
                },
                {
                    "name": "every_order_noted",
                    "database": "shop",
                    "sql": "SELECT id FROM orders WHERE note IS NOT NULL",
                },
            ]
        },
    )
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, _ = restore(capsys, cfg, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1 and report["status"] == "failed"
    checks = {c["name"]: c for c in report["validation"]["integrity"]["checks"]}
    assert checks["no_sad_customers"]["passed"] and not checks["every_order_noted"]["passed"]
    assert checks["every_order_noted"]["rows"] == 120
    assert report["validation"]["completeness"]["passed"]


def engine_for(
    bucket: str, s3_endpoint: str, pg: Any, events: list[Any], **kw: Any
) -> RestoreEngine:
    store = S3Store(StorageLocation(url=f"s3://{bucket}", endpoint_url=s3_endpoint))
    return RestoreEngine(
        store=store,
        key=KEY,
        url=store.url(KEY),
        target=ResolvedTarget(name="t", conninfo=pg.dsn(), display="t"),
        scope=Scope(),
        on_event=events.append,
        **kw,
    )


def test_a_target_session_killed_mid_restore_fails_the_restore_clearly(
    bucket: str, s3_endpoint: str, source_dump: bytes, target_pg: Any
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    events: list[Any] = []

    def on_event(e: Any) -> None:
        events.append(e)
        if isinstance(e, TableLoaded) and e.table == "public.customers":
            with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'pgdeck-restore' AND datname = 'shop'"
                )

    engine = engine_for(bucket, s3_endpoint, target_pg, events)
    engine._emit = on_event
    report = engine.run()
    assert report.status == "failed"
    assert report.error and "terminat" in report.error
    assert report.databases_incomplete == ("shop",)


def test_cancel_marks_the_report_and_leaves_no_session(
    bucket: str, s3_endpoint: str, source_dump: bytes, target_pg: Any
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    events: list[Any] = []

    def on_event(e: Any) -> None:
        events.append(e)
        if isinstance(e, TableLoaded):
            engine.cancel()

    engine = engine_for(bucket, s3_endpoint, target_pg, events)
    engine._emit = on_event
    report = engine.run()
    assert report.status == "cancelled"
    assert report.databases_incomplete == ("shop",)
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgdeck-restore'"
        ).fetchall()


def test_target_dsn_forms_and_password_kept_out_of_display() -> None:
    from services.config import Config

    t = resolve_target("postgresql://app:s3cret@db.example:6432/shop", Config(path=None))
    assert t.display == "app@db.example:6432/shop" and t.password == "s3cret"
    assert "s3cret" not in t.conninfo and "s3cret" not in repr(t)
    k = resolve_target("host=db port=5433 user=x password=zz", Config(path=None))
    assert k.display == "x@db:5433/postgres" and "zz" not in k.conninfo


def test_restore_cli_asks_without_yes_and_refuses_without_a_terminal(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**os.environ}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--config",
            str(config),
            "restore",
            "file:///nope.sql.gz",
            "--target",
            "host=x",
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 2
    assert "pass --yes" in proc.stderr


def test_orphans_under_a_not_valid_key_are_counted_and_fail_integrity(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = source_dump.decode()
    fk = "ADD CONSTRAINT orders_customer_fkey FOREIGN KEY (customer) REFERENCES public.customers(id);"
    assert fk in text
    text = text.replace(fk, fk[:-1] + " NOT VALID;")
    head = "COPY public.orders (id, customer, note) FROM stdin;\n"
    assert head in text
    text = text.replace(head, head + "999\t4242\tan orphan\n")
    seed(bucket, {KEY: gzip.compress(text.encode())})
    code, report, _ = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1 and "integrity" in report["error"]
    fks = {f["constraint"]: f for f in report["validation"]["integrity"]["foreign_keys"]}
    assert (
        fks["orders_customer_fkey"]["orphans"] == 1
        and fks["orders_customer_fkey"]["how"] == "counted"
    )
    assert report["validation"]["completeness"]["passed"]  # all 121 rows arrived


def test_thorough_validation_recounts_everything(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--thorough"
    )
    assert code == 0, err
    assert {f["how"] for f in report["validation"]["integrity"]["foreign_keys"]} == {"counted"}
    rows = {(t["database"], t["table"]): t["restored"] for t in report["tables"]}
    assert rows[("shop", "public.customers")] == 50


def test_ctrl_c_stops_psql_marks_the_report_cancelled_and_exits_non_zero(
    tmp_path: Path, bucket: str, s3_endpoint: str, source_dump: bytes, target_pg: Any
) -> None:
    import signal

    # A dump with a big orders table, so that the interrupt lands mid-stream.
    text = source_dump.decode()
    head = "COPY public.orders (id, customer, note) FROM stdin;\n"
    rows = "".join(f"{i}\t1\tbulk row {i}\n" for i in range(1000, 600_000))
    seed(bucket, {KEY: gzip.compress(text.replace(head, head + rows).encode(), 1)})
    cfg = storage_config(tmp_path, bucket, s3_endpoint)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--config",
            str(cfg),
            "restore",
            f"s3://{bucket}/{KEY}",
            "--target",
            target_pg.dsn(),
            "--yes",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("loaded shop.public.customers"):
            proc.send_signal(signal.SIGINT)
            break
    err = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert code == 130
    assert "cancelled" in err and "Traceback" not in err
    audit = json.loads((tmp_path / "archive" / "audit.log").read_text().splitlines()[-1])
    assert audit["outcome"] == "cancelled"
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgdeck-restore'"
        ).fetchall()


def test_verify_first_refuses_before_the_first_statement(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database the target already has: without --verify-first the roles would be
    # written before that database's section arrives; with it, nothing is.
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "Ünïcode db"')
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, _ = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--verify-first"
    )
    assert code == 1 and "'Ünïcode db' already exists" in report["error"]
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'appuser'").fetchone() is None
    assert "shop" not in databases(target_pg)
    # A truncated backup is refused before any write, with no report of a restore.
    seed(bucket, {KEY: gzip.compress(source_dump[: len(source_dump) // 2])})
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--verify-first"
    )
    assert code == 1 and report == {}
    assert "trailer never arrived" in err and "nothing was written" in err


def _renamed_dump(source_dump: bytes, old: str, new_ident: str, new_name: str) -> bytes:
    text = source_dump.decode()
    text = text.replace(f"DATABASE {old} ", f"DATABASE {new_ident} ")
    text = text.replace(f"\\connect {old}\n", f"\\connect {new_name}\n")
    text = text.replace(f'-- Database "{old}" dump', f'-- Database "{new_name}" dump')
    return text.encode()


def test_a_database_named_by_a_reserved_word_restores(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(_renamed_dump(source_dump, "shop", '"order"', "order"))})
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 0, report.get("error") or err
    assert "order" in databases(target_pg)
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "order:user"
    )
    assert code == 0, report.get("error") or err
    assert "user" in databases(target_pg)


def test_a_renamed_database_takes_its_role_settings_with_it(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = source_dump.decode()
    owner = "ALTER DATABASE shop OWNER TO postgres;\n"
    assert owner in text
    text = text.replace(
        owner, owner + "ALTER ROLE appuser IN DATABASE shop SET work_mem TO '8MB';\n"
    )
    seed(bucket, {KEY: gzip.compress(text.encode())})
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop")
        conn.execute("CREATE ROLE appuser")
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "shop:shop2"
    )
    assert code == 0, report.get("error") or err
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.datname, s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
        ).fetchall()
    assert rows == [("shop2", ["work_mem=8MB"])]


def test_a_database_not_in_the_backup_fails_instead_of_restoring_nothing(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {KEY: gzip.compress(source_dump)})
    code, report, _ = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "shpo"
    )
    assert code == 1 and report["status"] == "failed"
    assert "'shpo': no such database in this backup" in report["error"]
    code, report, err = restore(
        capsys,
        config,
        f"s3://{bucket}/{KEY}",
        target_pg.dsn(),
        "--database",
        "shpo",
        "--verify-first",
    )
    assert code == 1 and "it holds" in err


def test_spilo_objects_on_the_target_are_kept_and_a_newer_dump_is_refused(
    config: Path,
    bucket: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What Spilo creates in the postgres database of every operator cluster.
    spilo = "CREATE SCHEMA metric_helpers;\nCREATE FUNCTION metric_helpers.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n"
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        for statement in spilo.strip().splitlines():
            conn.execute(statement)
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE public.job (id int)")  # as pg_cron's cron.job
        conn.execute("CREATE FUNCTION public.named_like() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    # The backup's own copy of them (another body), in its postgres section, with what
    # pg_dump writes there for the extensions and schema public of a Spilo cluster and a
    # large object of its own.
    theirs = spilo.replace("SELECT 42", "SELECT 666") + (
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public;\n"
        "COMMENT ON EXTENSION pg_stat_statements IS 'track planning and execution';\n"
        "GRANT CREATE ON SCHEMA public TO PUBLIC;\n"
        "SELECT pg_catalog.lo_create('50001');\n"
        "ALTER LARGE OBJECT 50001 OWNER TO postgres;\n"
        "BEGIN;\nSELECT pg_catalog.lo_open('50001', 131072);\n"
        "SELECT pg_catalog.lowrite(0, '\\x6869');\nSELECT pg_catalog.lo_close(0);\nCOMMIT;\n"
        # What is the backup's own there is restored: a Spilo-schema function the target
        # lacks, a view of its own that calls Spilo's, a schema of its own and its grant.
        "CREATE FUNCTION metric_helpers.other() RETURNS int LANGUAGE sql AS 'SELECT 7';\n"
        "CREATE VIEW public.uses_helpers AS SELECT metric_helpers.answer() AS a;\n"
        "CREATE SCHEMA app;\nGRANT USAGE ON SCHEMA app TO PUBLIC;\n"
        # pg_dump's search_path is empty: a column named as a table of the target's is
        # no reference to it.
        "CREATE TABLE app.jobs (id integer, job text);\n"
        # A table of the backup's named like a function of the target's is the backup's.
        "CREATE TABLE public.named_like (id integer);\n"
        "ALTER TABLE ONLY public.named_like ADD CONSTRAINT named_like_pkey PRIMARY KEY (id);\n"
    )
    text = source_dump.decode()
    connect = "\\connect postgres\n"
    assert connect in text
    at = text.index(connect)
    text = text[:at] + text[at:].replace(
        "SET row_security = off;\n", "SET row_security = off;\n" + theirs, 1
    )
    seed(bucket, {KEY: gzip.compress(text.encode())})
    # The whole cluster leaves the target's own postgres alone, and says what it held.
    code, report, err = restore(capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 0, report.get("error") or err
    assert any("postgres database holds" in w for w in report["warnings"])
    # Asked for, it is restored in place: Spilo's objects stay the target's.
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "postgres"
    )
    assert code == 0, report.get("error") or err
    assert any("Spilo's own objects" in w for w in report["warnings"])
    assert any("target's own schemas" in w for w in report["warnings"])
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT metric_helpers.answer()").fetchone() == (42,)
        assert conn.execute("SELECT lo_get(50001)").fetchone() == (b"hi",)
        assert conn.execute("SELECT metric_helpers.other()").fetchone() == (7,)
        assert conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'named_like_pkey'"
        ).fetchone() == (1,)
        assert conn.execute("SELECT a FROM public.uses_helpers").fetchone() == (42,)
        assert conn.execute("SELECT has_schema_privilege('public', 'app', 'USAGE')").fetchone() == (
            True,
        )
        assert conn.execute(
            "SELECT has_schema_privilege('public', 'public', 'CREATE')"
        ).fetchone() == (False,)
    newer = source_dump.decode().replace(
        "Dumped from database version 15.", "Dumped from database version 17."
    )
    seed(bucket, {KEY: gzip.compress(newer.encode())})
    code, report, _ = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--drop-existing"
    )
    assert code == 1 and "restoring into an older server is not supported" in report["error"]


def test_an_unwritable_archive_is_refused_before_the_restore(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "file").write_text("")
    cfg = storage_config(tmp_path, bucket, s3_endpoint, archive=str(tmp_path / "file" / "archive"))
    code, report, err = restore(capsys, cfg, f"s3://{bucket}/{KEY}", target_pg.dsn())
    assert code == 1 and report == {}  # an archive that cannot be written is a failure
    assert "is not writable" in err and "Traceback" not in err


def test_report_labels_name_the_cluster_from_any_url() -> None:
    from services.report import report_label

    key = "acid-a/0f000000-0000-4000-8000-000000000001/logical_backups/1763600000.sql.gz"
    assert report_label(f"s3://b/spilo/{key}", "staging") == "acid-a-to-staging"
    assert report_label(f"file:///srv/copy/spilo/{key}", "x") == "acid-a-to-x"
    assert report_label("file:///tmp/dump.sql.gz", "x") == "backup-to-x"


def test_a_dsn_for_a_production_server_is_that_production_target(tmp_path: Path) -> None:
    from services.config import load_config

    cfg = load_config(
        str(
            storage_config(
                tmp_path,
                "some-bucket",
                "http://127.0.0.1:1",
                targets={"prod": {"dsn": "host=db.prod port=5433 user=app", "production": True}},
            )
        )
    )
    typed = resolve_target("host=db.prod port=5433 user=postgres dbname=other password=pw", cfg)
    assert typed.production and typed.name == "prod"
    assert typed.password == "pw" and "pw" not in typed.conninfo
    assert not resolve_target("host=db.staging port=5433", cfg).production
    from services.errors import UsageError

    with pytest.raises(UsageError) as err:
        resolve_target("postgres:S3cr3t@db/app", cfg)
    assert "S3cr3t" not in str(err.value)


def test_role_passwords_are_redacted_from_statements() -> None:
    from services.grammar import mask_literals, redact

    sql = "ALTER ROLE app WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc''d=';"
    assert redact(sql) == "ALTER ROLE app WITH LOGIN PASSWORD '***';"
    assert mask_literals(sql) == "ALTER ROLE app WITH LOGIN PASSWORD '***';"
    assert redact("CREATE TABLE t (password text)") == "CREATE TABLE t (password text)"
    assert mask_literals("COMMENT ON TABLE t IS 'keep me'") == "COMMENT ON TABLE t IS 'keep me'"


@pytest.mark.parametrize("flags", [(), ("--load-via-partition-root",)])
def test_table_data_loaded_through_a_partitioned_root_is_restored(
    flags: tuple[str, ...],
    config: Path,
    bucket: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pg_dump COPYs into the root of a partition tree by itself when it is hash
    partitioned on an enum (or always, with --load-via-partition-root): admitted, since
    every partition is an ordinary table the dump created."""
    import subprocess

    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE parts")
    with psycopg.connect(target_pg.dsn(dbname="parts"), autocommit=True) as conn:
        conn.execute("CREATE TYPE public.color AS ENUM ('red', 'green', 'blue')")
        conn.execute("CREATE TABLE public.ph (c public.color, v int) PARTITION BY HASH (c)")
        for r in range(2):
            conn.execute(
                f"CREATE TABLE public.ph_{r} PARTITION OF public.ph "
                f"FOR VALUES WITH (MODULUS 2, REMAINDER {r})"
            )
        conn.execute("CREATE TABLE public.pr (v int) PARTITION BY RANGE (v)")
        conn.execute(
            "CREATE TABLE public.pr_low PARTITION OF public.pr FOR VALUES FROM (0) TO (50)"
        )
        conn.execute(
            "CREATE TABLE public.pr_mid PARTITION OF public.pr FOR VALUES FROM (50) TO (80) PARTITION BY RANGE (v)"
        )
        conn.execute(
            "CREATE TABLE public.pr_mid_a PARTITION OF public.pr_mid FOR VALUES FROM (50) TO (80)"
        )
        conn.execute(
            "INSERT INTO public.ph SELECT (ARRAY['red','green','blue'])[1 + g % 3]::public.color, g FROM generate_series(1, 30) g"
        )
        conn.execute("INSERT INTO public.pr SELECT g FROM generate_series(0, 79) g")
    env = {**os.environ, **target_pg.env()}
    dump = subprocess.run(
        [str(target_pg.bindir / "pg_dumpall"), *flags], env=env, check=True, capture_output=True
    ).stdout
    assert b"COPY public.ph (c, v) FROM stdin;" in dump  # loaded through the root
    with psycopg.connect(target_pg.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE parts")
    seed(bucket, {KEY: gzip.compress(dump)})
    code, report, err = restore(
        capsys, config, f"s3://{bucket}/{KEY}", target_pg.dsn(), "--database", "parts"
    )
    assert code == 0, json.dumps(report.get("validation"), indent=1) + err
    with psycopg.connect(target_pg.dsn(dbname="parts"), autocommit=True) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM public.ph), (SELECT count(*) FROM public.ph_0), "
            "(SELECT count(*) FROM public.pr), (SELECT count(*) FROM public.pr_mid_a)"
        ).fetchone()
    assert counts is not None and counts[0] == 30 and 0 < counts[1] < 30
    assert counts[2] == 80 and counts[3] == 30
    assert report["validation"]["completeness"]["passed"]
    wrong = report["validation"]["completeness"]["tables_wrong"]
    # ph through its root, pr's partitions each (all through the root with the flag)
    assert wrong == [] and report["validation"]["completeness"]["tables_checked"] == (
        2 if flags else 3
    )


def test_the_restore_flow_needs_no_terminal_and_returns_its_archived_report(
    config: Path, bucket: str, source_dump: bytes, target_pg: Any, source_pg: Any
) -> None:
    # The third caller (a scheduled restore test in a Kubernetes Job): no terminal, no
    # prompt, events to a callback, the archived report returned.
    from services.catalog import Catalog
    from services.config import load_config
    from services.restore_events import RestoreDone, RestorePhase
    from services.restore_flow import RestoreRequest, run_restore

    seed(bucket, {KEY: gzip.compress(source_dump)})
    loaded = load_config(config)
    catalog = Catalog(loaded)
    events: list[Any] = []
    request = RestoreRequest(
        backup=f"s3://{bucket}/{KEY}",
        target=resolve_target(target_pg.dsn(), loaded),
        verify_first=True,
    )
    report = run_restore(request, events.append, config=loaded, resolve=catalog.resolve)
    assert report.status == "succeeded", report.error
    names = [p.name for p in report.phases]
    assert names[0] == "preflight" and names[-2:] == ["restore", "validate"]
    assert "restore shop" in names
    assert report.validation is not None and report.validation.completeness_passed
    archived = json.loads(Path(report.archived["json"]).read_text())
    assert archived == {**report.to_dict(), "archived": {}}
    assert isinstance(events[-1], RestoreDone) and events[-1].report.status == "succeeded"
    assert RestorePhase("validate", "started") in events
    for db in SOURCE_DBS:
        assert table_digests(target_pg, db) == table_digests(source_pg, db)
