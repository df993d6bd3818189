"""``pgdeck restore-test`` end to end: a source cluster in the fake Kubernetes API, its
backups in moto, a stand-in operator that makes the staging cluster, and a real PostgreSQL
standing in for the staging primary. What is checked is what an auditor reads: the
archived report, the audit log, the staging cluster gone, the restored rows."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sandbox import kube as ko
from services.archive import open_archive, verify_audit
from services.clock import starting_at
from services.operator import backup_key
from tests.conftest import held_mid_copy, seed, table_digests, write_config
from tests.standin_operator import StandinOperator
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UID = "5e1f0000-0000-4000-8000-0000000000aa"
NS, STAGING = "shop", "pgdeck-staging"


def backup_at(hours_ago: float) -> str:
    return (
        f"spilo/{backup_key('acid-shop', UID, int((NOW - timedelta(hours=hours_ago)).timestamp()))}"
    )


def setup(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    endpoint: str,
    target_pg: Any,
    address: str | None = None,
    **extra: Any,
) -> Path:
    kube.add(
        ko.postgresql("acid-shop", NS, created=NOW - timedelta(days=90), uid=UID, version="16")
    )
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": endpoint}],
            "staging": {
                "namespace": STAGING,
                "address": address or f"127.0.0.1:{target_pg.port}",
                "ready_timeout_seconds": 30,
            },
            "restore_tests": {"rto_minutes": 60},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
            **extra,
        },
    )


def audit_actions(tmp_path: Path) -> list[str]:
    archive = open_archive(tmp_path / "archive")
    assert verify_audit(archive).ok
    return [json.loads(e)["action"] for _, e in archive.store.audit_entries()]


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = main(argv, clock=starting_at(NOW))
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_a_test_that_passes_restores_validates_archives_and_deletes_its_cluster(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(
        bucket,
        {backup_at(30): gzip.compress(b"-- old\n"), backup_at(1): gzip.compress(source_dump)},
    )
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    with StandinOperator(kube, username="postgres") as op:
        code, out, err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert code == 0, err
    [doc] = out
    assert doc["result"] == "passed", doc["reasons"]
    assert doc["status"] == "succeeded" and doc["validation"]["completeness"]["passed"]
    assert doc["source"] == {
        "cluster": "acid-shop",
        "namespace": NS,
        "uid": UID,
        "context": "test",
        "version": "16",
    }
    assert doc["backup_object"]["url"].endswith(backup_at(1))  # the newest
    assert doc["backup_object"]["sse"] == "AES256"
    assert doc["staging"]["name"] == op.seen[0]
    assert doc["staging"]["name"].startswith("pgdeck-restore-test-acid-shop-")
    assert doc["staging"]["version"] == "16" and doc["staging"]["connect"] == "service"
    assert doc["teardown"] == {"status": "deleted", "error": None}
    assert doc["objective"]["rto_seconds"] == 3600 and doc["objective"]["met"] is True
    total = doc["time_to_restore"]["total_seconds"]
    assert total == pytest.approx(
        doc["time_to_restore"]["staging_seconds"] + doc["ttr_seconds"], abs=0.01
    )
    assert doc["started_by"]["command"].startswith("pgdeck --config")
    assert doc["started_by"]["in_cluster"] is False
    assert doc["tables"] and not doc["errors"]["unexpected"]
    assert kube.get("postgresql", STAGING, doc["staging"]["name"]) is None
    # The restore really happened, into the server standing in for the staging primary.
    assert table_digests(target_pg, "shop") == table_digests(source_pg, "shop")
    # Archived: JSON and Markdown under restore-tests/, the run audited end to end.
    item = open_archive(tmp_path / "archive").list("restore-test")[0]
    assert item.document["run_id"] == doc["run_id"]
    md = (tmp_path / "archive" / item.markdown).read_text()
    assert md.startswith("# Restore test passed: acid-shop")
    assert "| staging ready |" in md and "standin-secret-password" not in md
    assert "standin-secret-password" not in json.dumps(doc) + err
    actions = audit_actions(tmp_path)
    assert (
        actions.index("staging-create")
        < actions.index("restore")
        < actions.index("staging-delete")
        < actions.index("restore-test")
    )


def test_a_test_whose_validation_fails_fails_and_still_deletes_the_cluster(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    failing = {"name": "no_orders_at_all", "database": "shop", "sql": "SELECT 1"}
    cfg = setup(
        tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg, validation={"checks": [failing]}
    )
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert code == 1
    assert doc["result"] == "failed"
    assert any("validation failed" in r for r in doc["reasons"]), doc["reasons"]
    assert doc["teardown"]["status"] == "deleted"
    assert kube.get("postgresql", STAGING, doc["staging"]["name"]) is None
    assert "pgdeck: acid-shop: restore failed: validation failed" in err


def test_a_cluster_that_never_runs_times_out_is_deleted_and_none_ran(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {backup_at(1): gzip.compress(b"-- a dump\n")})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    cfg.write_text(cfg.read_text().replace("ready_timeout_seconds: 30", "ready_timeout_seconds: 1"))
    with StandinOperator(kube, never_running=True) as op:
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert code == 2  # none could run
    assert doc["result"] == "error" and doc["status"] == "not-run"
    [reason] = doc["reasons"]
    assert "not ready within 1 s (operator status Creating, master pod missing)" in reason
    assert doc["teardown"]["status"] == "deleted"
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    assert "Traceback" not in err
    assert audit_actions(tmp_path) == ["staging-create", "staging-delete", "restore-test"]


def test_random_within_a_window_is_reproducible_with_its_seed(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dump = gzip.compress(source_dump)
    hours = [1, 5, 30, 200, 700, 1000]  # 1000 h ago lies outside a 30-day window
    seed(bucket, {backup_at(h): dump for h in hours})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    argv = ["--config", str(cfg), "restore-test", "acid-shop", "--backup", "random:30d"]
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json([*argv, "--seed", "7", "--json"], capsys)
    assert code == 0, err
    # Uniform among the five within the window, oldest first, drawn with Random(seed).
    window = sorted(backup_at(h) for h in hours if h <= 30 * 24)
    expected = random.Random(7).choice(window)
    assert doc["backup_object"]["url"].endswith(expected)
    assert (doc["backup_object"]["choice"], doc["backup_object"]["seed"]) == ("random:30d", 7)
    assert doc["backup_object"]["among"] == 5
    assert doc["backup_object"]["window_end"].startswith(NOW.strftime("%Y-%m-%dT%H:%M"))


def test_unknown_clusters_and_no_choice_are_usage_errors(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    assert main(["--config", str(cfg), "restore-test"], clock=starting_at(NOW)) == 2
    assert capsys.readouterr().err.strip().endswith("name the clusters to test, or pass --all")
    with StandinOperator(kube) as op:
        assert (
            main(["--config", str(cfg), "restore-test", "acid-nope"], clock=starting_at(NOW)) == 2
        )
    err = capsys.readouterr().err
    assert "acid-nope" in err and "Traceback" not in err
    assert op.seen == []  # nothing was created


def test_ctrl_c_mid_restore_cancels_deletes_the_cluster_and_archives_the_report(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    stalling_s3: Any,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    obj, stall = held_mid_copy(source_dump)
    key = backup_at(1)
    seed(bucket, {key: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{key}".encode())
    cfg = setup(tmp_path, kube, kubeconfig, bucket, stalling_s3.url, target_pg)
    with StandinOperator(kube, username="postgres") as op:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tui.cli",
                "--config",
                str(cfg),
                "restore-test",
                "acid-shop",
                "--json",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PGDECK_NOW": NOW.isoformat()},
        )
        try:
            assert wait_for_copy(target_pg, proc), "the restore never reached a COPY"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    [doc] = json.loads(out)
    assert doc["result"] == "cancelled" and doc["status"] == "cancelled"
    assert doc["teardown"]["status"] == "deleted"
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    assert audit_actions(tmp_path)[-1] == "restore-test"


def wait_for_copy(pg: Any, proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    """The restore is inside a COPY on the staging primary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            if conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid()"
            ).fetchall():
                return True
        time.sleep(0.05)
    return False


def test_a_killed_test_is_completed_interrupted_and_its_cluster_left_for_cleanup(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    stalling_s3: Any,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    obj, stall = held_mid_copy(source_dump)
    key = backup_at(1)
    seed(bucket, {key: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{key}".encode())
    cfg = setup(tmp_path, kube, kubeconfig, bucket, stalling_s3.url, target_pg)
    with StandinOperator(kube, username="postgres") as op:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "--config", str(cfg), "restore-test", "acid-shop"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PGDECK_NOW": NOW.isoformat()},
        )
        try:
            assert wait_for_copy(target_pg, proc), "the restore never reached a COPY"
        finally:
            proc.kill()
            proc.wait(timeout=30)
    archive = open_archive(tmp_path / "archive")
    assert archive.list("restore-test") == []
    [found] = [r for r in archive.recover_interrupted() if r.kind == "restore-test"]
    [item] = archive.list("restore-test")
    assert item.document["result"] == "interrupted"
    assert item.document["source"]["cluster"] == "acid-shop"
    assert "is gone" in item.document["reasons"][0]
    # Nothing was there to delete it: `--cleanup` finds it by its labels.
    left = kube.get("postgresql", STAGING, op.seen[0])
    assert (
        left is not None and left["metadata"]["labels"]["pgdeck.io/source-cluster"] == "acid-shop"
    )


def test_a_cancel_while_waiting_for_the_staging_cluster_deletes_it(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
) -> None:
    import threading

    from services.backup_choice import parse_choice
    from services.catalog import Catalog
    from services.config import load_config
    from services.restore_test import TestRequest, TestsCancel, run_restore_tests

    seed(bucket, {backup_at(1): gzip.compress(b"-- a dump\n")})
    cfg = load_config(str(setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)))
    clock = starting_at(NOW)
    catalog = Catalog(cfg, clock=clock)
    catalog.refresh()
    cancel = TestsCancel()
    lines: list[str] = []

    def on_event(cluster: str, event: Any) -> None:
        lines.append(f"{cluster}: {getattr(event, 'text', event)}")
        if "waiting until it is ready" in lines[-1]:
            threading.Timer(0.2, cancel.cancel).start()

    with StandinOperator(kube, never_running=True) as op:
        [outcome] = run_restore_tests(
            [TestRequest("acid-shop", choice=parse_choice("latest"))],
            config=cfg,
            catalog=catalog,
            run_id="20261120t120000-abcdef",
            on_event=on_event,
            cancel=cancel,
            clock=clock,
            poll_seconds=0.05,
        )
    assert outcome.result == "cancelled"
    assert outcome.document["teardown"]["status"] == "deleted"
    assert outcome.document["run_id"] == "20261120t120000-abcdef"
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    assert lines[-1].endswith("deleted")


def test_from_a_workstation_the_primary_is_reached_through_a_port_forward(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    # The Service's address does not resolve from here: only the forward can reach the pod.
    cfg = setup(
        tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg, address="{cluster}.invalid:5432"
    )
    primary = ("127.0.0.1", target_pg.port)
    with StandinOperator(kube, username="postgres", primary=primary):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--port-forward", "--json"], capsys
        )
    assert code == 0, err
    assert doc["result"] == "passed" and doc["staging"]["connect"] == "port-forward"
    assert doc["staging"]["address"].startswith("127.0.0.1:")
    assert doc["staging"]["address"] != f"127.0.0.1:{target_pg.port}"  # a local port of its own
    assert "port-forward 127.0.0.1:" in err
    assert table_digests(target_pg, "shop") == table_digests(source_pg, "shop")


def test_the_backups_postgres_database_is_restored_and_validated_too(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Some teams keep their tables in postgres: a test that left them out would pass on
    a backup whose data never came back."""
    from sandbox import localpg

    src = localpg.create(tmp_path / "src")
    src.start()
    try:
        with psycopg.connect(src.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
            conn.execute("INSERT INTO orders SELECT generate_series(1, 1000)")
        dump = subprocess.run(
            [str(src.bindir / "pg_dumpall")],
            env={**os.environ, **src.env()},
            check=True,
            capture_output=True,
        ).stdout
    finally:
        src.destroy()
    seed(bucket, {backup_at(1): gzip.compress(dump)})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert code == 0, err
    assert doc["tables"] == [
        {
            "database": "pgdeck_postgres",
            "table": "public.orders",
            "expected": 1000,
            "restored": 1000,
        }
    ]
    with psycopg.connect(target_pg.dsn("pgdeck_postgres")) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1000,)


def test_a_staging_cluster_made_by_a_create_that_raised_is_still_deleted(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The POST succeeded, then its audit entry could not be written (a full disk, an S3
    blip): the cluster exists though ``create`` raised, and must not be left behind."""
    from services.archive import Archive
    from services.errors import ArchiveError

    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    real = Archive.note

    def note(self: Archive, fields: dict[str, Any]) -> int:
        if fields.get("action") == "staging-create":
            raise ArchiveError("archive: disk full")
        return real(self, fields)

    monkeypatch.setattr(Archive, "note", note)
    with StandinOperator(kube, username="postgres") as op:
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert op.seen, "the staging cluster was created"
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    assert doc["teardown"]["status"] == "deleted" and doc["staging"]["name"] == op.seen[0]
    assert doc["result"] == "error" and "disk full" in doc["reasons"][0]
    assert code == 2


def test_a_pass_whose_report_is_not_archived_does_not_exit_0(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.archive import Archive
    from services.errors import ArchiveError

    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    real = Archive.complete

    def complete(self: Archive, pending: Any, kind: str, *a: Any, **k: Any) -> Any:
        if kind == "restore-test":
            raise ArchiveError("archive: write refused")
        return real(self, pending, kind, *a, **k)

    monkeypatch.setattr(Archive, "complete", complete)
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert doc["archived"] == {} and doc["cluster"] == "acid-shop"
    assert code == 1
    assert "pgdeck: acid-shop: archive: write refused" in err


def test_keep_leaves_the_staging_cluster_labelled_as_kept(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    cfg = setup(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    with StandinOperator(kube, username="postgres") as op:
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--keep", "--json"], capsys
        )
    assert code == 0, err
    assert doc["teardown"]["status"] == "kept" and doc["staging"]["kept"] is True
    left = kube.get("postgresql", STAGING, op.seen[0])
    assert left is not None and left["metadata"]["labels"]["pgdeck.io/keep"] == "true"
    assert "kept (--keep)" in err


def test_without_a_kubernetes_api_it_says_so_and_archives_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's sandbox reads Kubernetes from manifests: no staging cluster can be made."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    cfg = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"manifests": str(manifests)},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )
    assert main(["--config", str(cfg), "restore-test", "--all"], clock=starting_at(NOW)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pgdeck: restore tests create staging clusters through a Kubernetes API")
    assert "kubernetes.manifests" in err and "\n" not in err
    assert not (tmp_path / "archive" / "restore-tests").exists()
