"""Restore tests restore on the data sessions asked for (issue 16): ``restore.jobs`` or
``restore-test --jobs N``, recorded in the test's report; an in-cluster Job's command
carries the number. A real run (moto, a real PostgreSQL as the staging primary, the fake
Kubernetes API with the stand-in operator), the Jobs through the fake API with the stand-in
Job controller, as the other restore-test tests."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import restore_test as rt
from services.archive import open_archive
from services.config import parse_config
from services.staging_spec import SOURCE_LABEL
from tests.conftest import seed, table_digests, write_config
from tests.standin_jobs import PodRun, StandinJobs
from tests.standin_operator import StandinOperator
from tests.test_restore_test import backup_at, run_json, setup
from tests.test_restore_test_jobs import RUN, add_sources, config_data, jobs_of, launcher
from tui.cli import main
from tui.cli.parser import build_parser


@pytest.mark.parametrize(
    ("configured", "flag", "sessions"),
    [(2, [], 2), (1, ["--jobs", "2"], 2)],
    ids=["restore.jobs", "--jobs"],
)
def test_a_restore_test_restores_on_the_sessions_asked_for_and_reports_them(
    configured: int,
    flag: list[str],
    sessions: int,
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
    cfg = setup(
        tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg, restore={"jobs": configured}
    )
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json", *flag], capsys
        )
    assert code == 0, err
    assert doc["result"] == "passed", doc["reasons"]
    assert doc["time_to_restore"]["data_sessions"] == sessions
    # The engine's own closing line: the table data went through that many sessions.
    assert "acid-shop: pgdeck: info: table data loaded on up to " in err
    assert f" of {sessions} data sessions" in err, err
    for db in ("shop", "Ünïcode db"):
        assert table_digests(target_pg, db) == table_digests(source_pg, db)
    item = open_archive(tmp_path / "archive").list("restore-test")[0]
    md = (tmp_path / "archive" / item.markdown).read_text()
    assert f"table data on {sessions} sessions" in md


def test_one_session_is_reported_as_one(
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
    with StandinOperator(kube, username="postgres"):
        code, [doc], err = run_json(
            ["--config", str(cfg), "restore-test", "acid-shop", "--json"], capsys
        )
    assert code == 0, err
    assert doc["time_to_restore"]["data_sessions"] == 1
    assert "data sessions" not in err  # the one-session path: no lanes at all


def job_args(doc: dict[str, Any]) -> list[str]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


@pytest.mark.parametrize(
    ("flag", "expected"), [([], 3), (["--jobs", "5"], 5)], ids=["restore.jobs", "--jobs"]
)
def test_the_dry_runs_jobs_carry_the_sessions_in_their_command(
    flag: list[str],
    expected: int,
    tmp_path: Path,
    kubeconfig: Path,
    kube: Any,
    capsys: Any,
) -> None:
    data = {**config_data(tmp_path, kubeconfig), "restore": {"jobs": 3}}
    path = write_config(tmp_path / "config.yaml", data)
    add_sources(kube, "acid-main")
    argv = ["restore-test", "acid-main", "--in-cluster", "--dry-run", "--run-id", RUN]
    assert main([*argv, "--config", str(path), *flag]) == 0
    [doc] = list(yaml.safe_load_all(capsys.readouterr().out))
    args = build_parser().parse_args(job_args(doc))
    assert args.command == "restore-test" and args.jobs == expected


def test_the_launchers_jobs_carry_each_tests_sessions_through_the_api(
    tmp_path: Path, kubeconfig: Path, kube: Any
) -> None:
    data = {**config_data(tmp_path, kubeconfig), "restore": {"jobs": 2}}
    path = write_config(tmp_path / "config.yaml", data)
    config = parse_config(path.read_text(), path)
    archive = open_archive(tmp_path / "archive")
    created: dict[str, list[str]] = {}

    def plan(job: dict[str, Any]) -> PodRun:
        # What the fake API server received and stored: the Job as the controller sees it.
        created[job["metadata"]["labels"][SOURCE_LABEL]] = job_args(job)
        return PodRun(["done\n"])

    tests = [rt.TestRequest("acid-default"), rt.TestRequest("acid-four", jobs=4)]
    with StandinJobs(kube, archive=archive, plan=plan):
        outcomes = launcher(config, archive).run(
            tests, run_id=RUN, on_line=lambda c, line: None, cancel=rt.TestsCancel()
        )
    assert [o.result for o in outcomes] == ["passed", "passed"]
    assert jobs_of(kube) == []
    for source, sessions in (("acid-default", 2), ("acid-four", 4)):
        args = build_parser().parse_args(created[source])
        assert args.clusters == [source] and args.jobs == sessions


@pytest.mark.parametrize("bad", ["0", "65", "two"])
def test_a_bad_number_of_sessions_for_restore_tests_is_a_usage_error_in_one_line(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["restore-test", "--jobs", bad, "acid-shop"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --jobs: expected a whole number from 1 to 64" in err
    assert "Traceback" not in err
