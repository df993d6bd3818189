"""``pgdeck restore-test --cleanup`` against the fake Kubernetes API, audited in a real archive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.archive import open_archive, verify_audit
from services.staging_spec import labels
from tests.conftest import write_config
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NS = "pgdeck-staging"


def config(tmp_path: Path, kubeconfig: Path) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "staging": {"namespace": NS},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )


def staging_pg(name: str, age: timedelta) -> dict:
    return ko.postgresql(
        name,
        NS,
        created=NOW - age,
        team="pgdeck",
        instances=1,
        labels=labels("20261101t000000-abcdef", "acid-main", "shop"),
    )


def test_cleanup_deletes_old_staging_clusters_and_audits_each(
    tmp_path: Path, kube: Any, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.add(
        staging_pg("pgdeck-restore-test-acid-main-aaaaaa", timedelta(days=3)),
        staging_pg("pgdeck-restore-test-acid-main-bbbbbb", timedelta(hours=2)),
    )
    path = config(tmp_path, kubeconfig)
    argv = ["--config", str(path), "restore-test", "--cleanup", "--older-than", "6h", "--json"]
    assert main(argv, clock=lambda: NOW) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out] == ["pgdeck-restore-test-acid-main-aaaaaa"]
    assert out[0]["source"] == "acid-main"
    assert kube.get("postgresql", NS, "pgdeck-restore-test-acid-main-aaaaaa") is None
    assert kube.get("postgresql", NS, "pgdeck-restore-test-acid-main-bbbbbb") is not None
    archive = open_archive(tmp_path / "archive")
    assert verify_audit(archive).ok
    entries = [json.loads(e) for _, e in archive.store.audit_entries()]
    assert [(e["action"], e["staging_cluster"]) for e in entries] == [
        ("staging-delete", "pgdeck-restore-test-acid-main-aaaaaa")
    ]

    assert main(argv[:-1], clock=lambda: NOW) == 0  # nothing old is left: said on stderr
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"pgdeck: no staging clusters older than 6h in test/{NS}"


def test_restore_test_needs_clusters_all_or_cleanup(
    tmp_path: Path, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, kubeconfig)
    assert main(["--config", str(path), "restore-test"], clock=lambda: NOW) == 2
    assert capsys.readouterr().err.strip() == "pgdeck: name the clusters to test, or pass --all"
    with pytest.raises(SystemExit) as exc:
        main(["restore-test", "--all", "--cleanup"])
    assert exc.value.code == 2


def test_cleanup_deletes_restore_test_jobs_a_killed_launcher_left(
    tmp_path: Path, kube: Any, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.config import RestoreTestsConfig
    from services.restore_test_jobs import job_manifest

    cfg = RestoreTestsConfig(image="registry.example.com/pgdeck:1")
    names = []
    for run, age in (
        ("20261101t000000-aaaaaa", timedelta(days=2)),
        ("20261120t110000-bbbbbb", timedelta(hours=1)),
    ):
        job = job_manifest(cfg, NS, source="acid-main", run_id=run, backup="latest")
        job["metadata"]["creationTimestamp"] = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
        kube.add(job)
        names.append(job["metadata"]["name"])
    path = config(tmp_path, kubeconfig)
    assert main(["--config", str(path), "restore-test", "--cleanup"], clock=lambda: NOW) == 0
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "Job" in x]
    assert "aaaaaa" in line and "left behind" in line
    assert kube.get("Job", NS, names[0]) is None and kube.get("Job", NS, names[1]) is not None
    archive = open_archive(tmp_path / "archive")
    entries = [json.loads(e) for _, e in archive.store.audit_entries()]
    assert [(e["action"], e["source_cluster"]) for e in entries] == [
        ("restore-test-job-delete", "acid-main")
    ]


def test_cleanup_leaves_a_staging_cluster_kept_on_purpose(
    tmp_path: Path, kube: Any, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = staging_pg("pgdeck-restore-test-acid-main-cccccc", timedelta(days=3))
    kept["metadata"]["labels"]["pgdeck.io/keep"] = "true"  # restore-test --keep
    kube.add(kept, staging_pg("pgdeck-restore-test-acid-main-dddddd", timedelta(days=3)))
    path = config(tmp_path, kubeconfig)
    argv = ["--config", str(path), "restore-test", "--cleanup", "--json"]
    assert main(argv, clock=lambda: NOW) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out] == ["pgdeck-restore-test-acid-main-dddddd"]
    assert kube.get("postgresql", NS, "pgdeck-restore-test-acid-main-cccccc") is not None
