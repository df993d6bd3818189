"""``pgdeck clusters`` and ``pgdeck backups`` as a user runs them, against the test servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from tests.conftest import seed, write_config
from tui.cli import main

NOW = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
T0 = int((NOW - timedelta(hours=24)).timestamp())
UID = "0d000000-0000-4000-8000-000000000001"
UID_OLD = "0d000000-0000-4000-8000-000000000000"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def configured(tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str) -> Path:
    pg = ko.postgresql(
        "acid-shop", "shop", uid=UID, created=NOW - timedelta(days=3), schedule="0 * * * *"
    )
    kube.add(pg, ko.cronjob(pg, last_schedule=NOW, last_successful=NOW))
    seed(
        bucket,
        {
            f"spilo/acid-shop/{UID}/logical_backups/{T0 + h * 3600}.sql.gz": 2048 + h
            for h in range(24)
        },
    )
    seed(bucket, {f"spilo/acid-shop/{UID_OLD}/logical_backups/{T0 - 9 * 86400}.sql.gz": 99})
    seed(bucket, {f"spilo/acid-deleted/{UID_OLD}/logical_backups/{T0 - 86400}.sql.gz": 512})
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache"),
        },
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), clock=lambda: NOW)
    out, err = capsys.readouterr()
    return code, out, err


def test_clusters_json_has_the_promised_fields(
    configured: Path, capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    code, out, err = run(capsys, "--config", str(configured), "clusters", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    shop = rows["acid-shop"]
    assert shop["namespace"] == "shop" and shop["uid"] == UID and shop["status"] == "Running"
    assert shop["backups"] == 25
    assert shop["last_backup"] == datetime.fromtimestamp(T0 + 23 * 3600, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert shop["last_backup_size"] == 2048 + 23
    assert shop["schedule"] == "0 * * * *" and shop["cronjob"]["name"] == "logical-backup-acid-shop"
    gone = rows["acid-deleted"]
    assert gone["namespace"] is None and gone["status"] == "storage-only" and gone["backups"] == 1
    assert gone["uid"] == UID_OLD and gone["last_backup_size"] == 512


def test_clusters_human_table(configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(configured), "clusters")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "STATUS"]
    shop = next(line for line in lines if "acid-shop" in line)
    assert "Running" in shop and "25" in shop and "2.0 KiB" in shop
    assert "storage-only" in next(line for line in lines if "acid-deleted" in line)


def test_backups_json_newest_first(
    configured: Path, capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    code, out, err = run(
        capsys, "--config", str(configured), "backups", "acid-shop", "-n", "shop", "--json"
    )
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 25
    assert (
        rows[0]["url"]
        == f"s3://{bucket}/spilo/acid-shop/{UID}/logical_backups/{T0 + 23 * 3600}.sql.gz"
    )
    assert rows[0]["size"] == 2071 and rows[0]["cluster"] == "acid-shop" and rows[0]["uid"] == UID
    assert rows[-1]["uid"] == UID_OLD
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)


def test_backups_with_sse_and_limit(configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--config",
        str(configured),
        "backups",
        "acid-shop",
        "--sse",
        "--limit",
        "2",
        "--json",
    )
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 2 and {r["sse"] for r in rows} == {"AES256"}


def test_cached_answers_without_network(
    configured: Path, capsys: pytest.CaptureFixture[str], kube: Any
) -> None:
    assert run(capsys, "--config", str(configured), "clusters", "--json")[0] == 0
    kube.requests.clear()
    code, out, _ = run(capsys, "--config", str(configured), "clusters", "--json", "--cached")
    assert code == 0 and {r["name"] for r in json.loads(out)} == {"acid-shop", "acid-deleted"}
    assert kube.requests == []


def test_unknown_cluster_is_a_usage_error(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--config", str(configured), "backups", "acid-nope")
    assert code == 2 and out == ""
    assert (
        err.strip()
        == "pgdeck: no cluster named 'acid-nope'; run `pgdeck clusters` to see the names"
    )


def test_missing_bucket_exits_1_with_one_clear_line(
    tmp_path: Path, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "kubernetes": {"enabled": False},
            "storage": [{"url": "s3://missing-bucket/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache"),
        },
    )
    code, out, err = run(capsys, "--config", str(cfg), "clusters", "--json")
    assert code == 1
    assert json.loads(out) == []
    assert err.count("\n") == 1 and "bucket 'missing-bucket' does not exist" in err


def test_unreachable_kubernetes_still_lists_storage(
    tmp_path: Path, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakekube import FakeKube, write_kubeconfig

    dead = FakeKube().start()
    kc = write_kubeconfig(tmp_path / "kc", {"prod": dead})
    dead.stop()
    seed(bucket, {f"spilo/acid-x/{UID}/logical_backups/{T0}.sql.gz": 5})
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "kubernetes": {"kubeconfig": str(kc)},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache"),
        },
    )
    code, out, err = run(capsys, "--config", str(cfg), "clusters", "--json")
    assert code == 1
    assert [r["name"] for r in json.loads(out)] == ["acid-x"]
    assert "API server unreachable" in err and "Traceback" not in err


def test_jobs_and_logs_commands(
    configured: Path, kube: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pg = ko.postgresql("acid-shop", "shop", uid=UID, created=NOW - timedelta(days=3))
    cj = ko.cronjob(pg)
    job = ko.job(cj, started=NOW - timedelta(hours=1), succeeded=False)
    pod = ko.pod(
        job, started=NOW - timedelta(hours=1), finished=NOW - timedelta(minutes=58), exit_code=1
    )
    kube.add(job, pod)
    kube.set_log(
        "shop", pod["metadata"]["name"], "pg_dumpall: error: server closed the connection\n"
    )
    code, out, _ = run(capsys, "--config", str(configured), "jobs", "acid-shop", "--json")
    assert code == 0
    data = json.loads(out)
    assert (
        data["jobs"][0]["status"] == "failed"
        and data["jobs"][0]["reason"] == "BackoffLimitExceeded"
    )
    code, out, _ = run(capsys, "--config", str(configured), "logs", "acid-shop")
    assert code == 0 and out == "pg_dumpall: error: server closed the connection\n"


def test_nothing_to_read_is_a_config_error(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "clusters"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().startswith("pgdeck: nothing to read")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backups"])
    assert exc.value.code == 2
