"""``restore-test --in-cluster``: Jobs against the fake Kubernetes API with a stand-in Job
controller beside it, reports in a real archive, the command line end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient, BatchV1Api

from sandbox import kube as ko
from services import restore_test as rt
from services.archive import open_archive
from services.config import KubernetesConfig, parse_config
from services.errors import ConfigError, KubeError
from services.kube import LiveSource
from services.restore_test_jobs import job_manifest, job_name, yaml_stream
from services.restore_test_launcher import JobLauncher
from services.staging_spec import RUN_ID_LABEL, SOURCE_LABEL
from tests.conftest import write_config
from tests.standin_jobs import PodRun, StandinJobs
from tests.test_deploy import SECRETISH_VALUE, _diff
from tui.cli import main
from tui.cli.parser import build_parser

NS = "pgdeck-staging"
RUN = "20261201t043000-a1b2c3"
IMAGE = "registry.example.com/pgdeck:0.1.0"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def config_data(tmp_path: Path, kubeconfig: Path, **tests: Any) -> dict[str, Any]:
    return {
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "archive": str(tmp_path / "archive"),
        "cache": str(tmp_path / "cache"),
        "staging": {"namespace": NS, "team": "acid", "max_parallel": 2},
        "restore_tests": {"image": IMAGE, **tests},
    }


CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def add_sources(kube: Any, *names: str, namespace: str = "db") -> None:
    """Source clusters in Kubernetes, as the command line finds them."""
    kube.add(*(ko.postgresql(n, namespace, created=CREATED) for n in names))


@pytest.fixture
def config_path(tmp_path: Path, kubeconfig: Path) -> Path:
    return write_config(tmp_path / "config.yaml", config_data(tmp_path, kubeconfig))


@pytest.fixture
def archive(tmp_path: Path) -> Any:
    return open_archive(tmp_path / "archive")


@pytest.fixture
def config(config_path: Path) -> Any:
    return parse_config(config_path.read_text(), config_path)


def launcher(config: Any, archive: Any) -> JobLauncher:
    return JobLauncher(config, archive=archive, poll_seconds=0.2)


def jobs_of(kube: Any) -> list[dict[str, Any]]:
    with kube._lock:
        return [o for k, o in kube._objects.items() if k[1] == "jobs"]


def as_v1_job(doc: dict[str, Any]) -> Any:
    """The Job through the client's own model: unknown fields and wrong types show."""
    api = ApiClient()
    obj = api._ApiClient__deserialize(doc, "V1Job")  # type: ignore[attr-defined]
    assert api.sanitize_for_serialization(obj) == doc, _diff(
        doc, api.sanitize_for_serialization(obj)
    )
    return obj


# -- the Job and --dry-run ---------------------------------------------------------------


def test_dry_run_prints_valid_jobs_that_hold_no_secret_and_creates_nothing(
    tmp_path: Path, kubeconfig: Path, kube: Any, capsys: Any
) -> None:
    path = write_config(
        tmp_path / "config.yaml", config_data(tmp_path, kubeconfig, secret="pgdeck-aws")
    )
    add_sources(kube, "acid-main", "acid-" + "x" * 53)
    argv = ["restore-test", "acid-main", "acid-" + "x" * 53, "--in-cluster", "--dry-run"]
    argv += ["--backup", "random:30d", "--seed", "42", "--run-id", RUN, "--config", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\n") and out.count("\n---\n") == 1
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 2
    for doc in docs:
        job = as_v1_job(doc)
        assert job.kind == "Job" and job.metadata.namespace == NS
        name = job.metadata.name
        assert len(name) <= 63 and DNS_1123.match(name)
        assert job.spec.backoff_limit == 0 and job.spec.active_deadline_seconds == 43200
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "pgdeck"
        assert labels["app.kubernetes.io/component"] == "restore-test"
        assert labels[RUN_ID_LABEL] == RUN
        assert doc["spec"]["template"]["metadata"]["labels"] == labels
        pod = doc["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "pgdeck" and pod["restartPolicy"] == "Never"
        assert pod["securityContext"]["runAsNonRoot"] is True
        (c,) = pod["containers"]
        assert c["image"] == IMAGE
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        # the container's arguments are pgdeck's own
        args = build_parser().parse_args(c["args"])
        assert args.command == "restore-test" and args.run_id == RUN
        assert args.clusters == [labels[SOURCE_LABEL]]  # the whole name, though the Job's is cut
        assert (args.backup, args.seed, args.keep) == ("random:30d", 42, False)
        assert args.namespace == "db" == labels["pgdeck.io/source-namespace"]
        # credentials: a Secret's name, never a value
        assert c["envFrom"] == [{"secretRef": {"name": "pgdeck-aws", "optional": True}}]
        for env in c["env"]:
            assert set(env) == {"name", "value"}
            assert not SECRETISH_VALUE.search(env["value"])
        assert {v["name"]: v for v in pod["volumes"]}["config"]["configMap"] == {
            "name": "pgdeck-config"
        }
        assert {"name": "PGDECK_CONFIG", "value": "/etc/pgdeck/restore-test.yaml"} in c["env"]
    assert docs[0]["metadata"]["name"] != docs[1]["metadata"]["name"]
    assert not any(method == "POST" for method, _ in kube.requests)
    assert jobs_of(kube) == []


def test_job_names_stay_apart_and_within_63() -> None:
    long = "x" * 80
    names = {job_name(long, RUN, "a"), job_name(long, RUN, "b"), job_name("acid-main", RUN)}
    assert len(names) == 3
    assert all(len(n) <= 63 and DNS_1123.match(n) for n in names)
    assert job_name("acid-main", RUN).startswith("pgdeck-restore-test-acid-main-a1b2c3-")


def test_the_yaml_stream_holds_each_object_once(config: Any) -> None:
    jobs = [
        job_manifest(config.restore_tests, NS, source=s, run_id=RUN, backup="latest")
        for s in ("acid-main", "acid-shop")
    ]
    assert list(yaml.safe_load_all(yaml_stream(jobs))) == jobs


def test_in_cluster_without_an_image_is_one_line_and_exit_2(
    tmp_path: Path, kubeconfig: Path, kube: Any, capsys: Any
) -> None:
    data = config_data(tmp_path, kubeconfig)
    del data["restore_tests"]["image"]
    path = write_config(tmp_path / "config.yaml", data)
    for extra in ([], ["--dry-run"]):
        argv = ["restore-test", "acid-main", "--in-cluster", *extra, "--config", str(path)]
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "restore_tests.image is not set" in lines[0]
    assert jobs_of(kube) == []


def test_the_config_keys_are_checked(tmp_path: Path, kubeconfig: Path) -> None:
    for key, value in (
        ("image", "pgdeck image"),
        ("secret", "Not_A_Name"),
        ("job_deadline_seconds", 5),
    ):
        data = config_data(tmp_path, kubeconfig, **{key: value})
        with pytest.raises(ConfigError) as exc:
            parse_config(yaml.safe_dump(data), tmp_path / "c.yaml")
        assert f"restore_tests.{key}" in str(exc.value)


# -- the launcher ------------------------------------------------------------------------


@pytest.fixture
def standin(kube: Any, archive: Any) -> Iterator[StandinJobs]:
    with StandinJobs(kube, archive=archive) as jobs:
        yield jobs


def test_jobs_run_at_most_max_parallel_at_once_and_every_report_is_collected(
    kube: Any, config: Any, archive: Any, standin: StandinJobs
) -> None:
    standin.plan = lambda job: PodRun(["restoring\n", "done\n"], delay=0.05)
    tests = [rt.TestRequest(f"acid-db{i}") for i in range(5)]
    lines: list[tuple[str, str]] = []
    outcomes = launcher(config, archive).run(
        tests, run_id=RUN, on_line=lambda c, line: lines.append((c, line)), cancel=rt.TestsCancel()
    )
    assert [o.result for o in outcomes] == ["passed"] * 5
    assert [o.cluster for o in outcomes] == [t.cluster for t in tests]
    assert len(standin.seen) == 5 and standin.peak == 2  # staging.max_parallel
    for o in outcomes:
        assert o.document["run_id"] == RUN and o.document["source"]["cluster"] == o.cluster
        assert o.archived["json"].endswith(".json") and o.archived["markdown"].endswith(".md")
        assert (o.cluster, "done") in lines
    assert jobs_of(kube) == []  # deleted when done
    entries = [e for _, e in archive.store.audit_entries()]
    assert sum(b'"action":"restore-test-job-create"' in e for e in entries) == 5
    assert sum(b'"action":"restore-test-job-delete"' in e for e in entries) == 5


def test_a_pending_pods_log_is_a_400_until_its_container_starts(
    kube: Any, kubeconfig: Path, config: Any, standin: StandinJobs
) -> None:
    standin.pending_for = 30.0
    body = job_manifest(config.restore_tests, NS, source="acid-main", run_id=RUN, backup="latest")
    kube_source = LiveSource(KubernetesConfig(kubeconfig=kubeconfig), "test")
    BatchV1Api(kube_source.api()).create_namespaced_job(NS, body)
    for _ in range(200):
        pods = [o for k, o in list(kube._objects.items()) if k[1] == "pods"]
        if pods:
            break
        time.sleep(0.01)
    (pod,) = pods
    assert pod["status"]["phase"] == "Pending"
    with pytest.raises(KubeError) as exc:
        list(kube_source.read_log(NS, pod["metadata"]["name"], follow=True))
    assert "HTTP 400" in str(exc.value) and "is waiting to start: ContainerCreating" in str(
        exc.value
    )


def test_log_lines_reach_the_callback_while_the_job_still_runs(
    kube: Any, config: Any, archive: Any, standin: StandinJobs
) -> None:
    hold = threading.Event()
    standin.plan = lambda job: PodRun(["phase 1: staging ready\n", "phase 2: restoring"], hold=hold)
    seen: list[tuple[str, bool]] = []

    def on_line(cluster: str, line: str) -> None:
        (job,) = jobs_of(kube)
        seen.append((line, "conditions" in job.get("status", {})))
        if len(seen) == 2:
            hold.set()

    (outcome,) = launcher(config, archive).run(
        [rt.TestRequest("acid-main")], run_id=RUN, on_line=on_line, cancel=rt.TestsCancel()
    )
    assert seen == [("phase 1: staging ready", False), ("phase 2: restoring", False)]
    assert outcome.result == "passed"


def test_a_job_that_fails_is_a_failed_test_naming_its_last_log_line(
    config_path: Path, kube: Any, archive: Any, standin: StandinJobs, capsys: Any
) -> None:
    def plan(job: dict[str, Any]) -> PodRun:
        if "acid-bad" in job["metadata"]["name"]:
            return PodRun(
                ["starting\n", "pgdeck: s3://backups/acid-bad: AccessDenied\n"],
                exit_code=1,
                report=None,
            )
        return PodRun(["fine\n"])

    standin.plan = plan
    add_sources(kube, "acid-main", "acid-bad")
    argv = ["restore-test", "acid-main", "acid-bad", "--in-cluster", "--config", str(config_path)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "acid-bad  | pgdeck: s3://backups/acid-bad: AccessDenied" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("acid-")}
    assert rows["acid-main"][1] == "passed" and rows["acid-bad"][1] == "error"
    (line,) = [x for x in err.splitlines() if "acid-bad:" in x]
    assert "failed (BackoffLimitExceeded" in line and "and archived no report" in line
    assert line.endswith("pgdeck: s3://backups/acid-bad: AccessDenied")
    assert jobs_of(kube) == []


def test_a_job_that_succeeds_without_a_report_is_not_a_pass(
    kube: Any, config: Any, archive: Any, standin: StandinJobs
) -> None:
    standin.plan = lambda job: PodRun(["wrote it elsewhere\n"], report=None)
    (outcome,) = launcher(config, archive).run(
        [rt.TestRequest("acid-main")],
        run_id=RUN,
        on_line=lambda c, line: None,
        cancel=rt.TestsCancel(),
    )
    assert outcome.result == "error" and outcome.document == {}
    assert (
        outcome.error is not None
        and "succeeded but archived no restore-test report" in outcome.error
    )
    assert outcome.error.endswith("wrote it elsewhere")


def test_a_failed_report_is_the_tests_result(
    kube: Any, config: Any, archive: Any, standin: StandinJobs
) -> None:
    standin.plan = lambda job: PodRun(["validation failed\n"], exit_code=1, report="failed")
    (outcome,) = launcher(config, archive).run(
        [rt.TestRequest("acid-main")],
        run_id=RUN,
        on_line=lambda c, line: None,
        cancel=rt.TestsCancel(),
    )
    assert outcome.result == "failed" and outcome.document["reasons"]
    assert outcome.error is None and outcome.archived


def test_a_cancel_deletes_the_running_jobs_and_starts_no_more(
    kube: Any, config: Any, archive: Any, standin: StandinJobs
) -> None:
    never = threading.Event()
    standin.plan = lambda job: PodRun(["restoring\n"], hold=never)
    cancel = rt.TestsCancel()

    def on_line(cluster: str, line: str) -> None:
        if len(jobs_of(kube)) == 2:
            threading.Timer(0.05, cancel.cancel).start()  # as a signal handler would

    outcomes = launcher(config, archive).run(
        [rt.TestRequest(f"acid-db{i}") for i in range(3)],
        run_id=RUN,
        on_line=on_line,
        cancel=cancel,
    )
    assert [o.result for o in outcomes] == ["cancelled"] * 3
    assert sorted(standin.deleted) == sorted(standin.seen) and len(standin.seen) == 2
    assert jobs_of(kube) == []
    assert outcomes[2].error == "cancelled before it started"
    entries = [e for _, e in archive.store.audit_entries()]
    assert sum(b'"action":"restore-test-job-delete"' in e for e in entries) == 2


# -- the command line --------------------------------------------------------------------


def test_all_makes_one_job_per_cluster_but_the_staging_ones(
    config_path: Path, kube: Any, capsys: Any
) -> None:
    add_sources(kube, "acid-main")
    add_sources(kube, "acid-shop", namespace="shop")
    kube.add(
        ko.postgresql(
            "acid-restore-test-acid-main-a1b2c3",
            NS,
            created=CREATED,
            labels={
                "app.kubernetes.io/managed-by": "pgdeck",
                "app.kubernetes.io/component": "restore-test",
            },
        ),
    )
    argv = ["restore-test", "--all", "--in-cluster", "--dry-run", "--config", str(config_path)]
    assert main(argv) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    sources = [
        (
            d["metadata"]["labels"][SOURCE_LABEL],
            d["metadata"]["labels"].get("pgdeck.io/source-namespace"),
        )
        for d in docs
    ]
    assert sources == [("acid-main", "db"), ("acid-shop", "shop")]
    assert jobs_of(kube) == []


def test_json_prints_the_outcomes_alone_and_keep_keeps_the_jobs(
    config_path: Path, kube: Any, standin: StandinJobs, capsys: Any
) -> None:
    add_sources(kube, "acid-main")
    argv = ["restore-test", "acid-main", "--in-cluster", "--keep", "--json"]
    assert main([*argv, "--config", str(config_path)]) == 0
    out, err = capsys.readouterr()
    (outcome,) = json.loads(out)  # the report, as restore-test without --in-cluster prints it
    assert outcome["source"]["cluster"] == "acid-main" and outcome["result"] == "passed"
    assert outcome["kind"] == "restore-test" and outcome["archived"]["json"]
    assert outcome["cluster"] == "acid-main" and outcome["error"] is None
    assert "acid-main | restore test running" in err  # the log, beside the JSON
    (job,) = jobs_of(kube)
    assert "--keep" in job["spec"]["template"]["spec"]["containers"][0]["args"]


def test_no_job_could_be_created_is_exit_2(
    config_path: Path, kube: Any, standin: StandinJobs, capsys: Any
) -> None:
    add_sources(kube, "acid-main")
    kube.forbid(rf"/apis/batch/v1/namespaces/{NS}/jobs")
    argv = ["restore-test", "acid-main", "--in-cluster", "--config", str(config_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "acid-main:" in x]
    assert "forbidden (403)" in line
    assert standin.seen == []


def test_ctrl_c_deletes_the_running_jobs(
    config_path: Path, kube: Any, standin: StandinJobs
) -> None:
    never = threading.Event()
    standin.plan = lambda job: PodRun(["restoring\n"], hold=never)
    add_sources(kube, "acid-main", "acid-shop")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "restore-test", "acid-main", "acid-shop"]
        + ["--in-cluster", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = set()
        while len(seen) < 2:  # both Jobs' logs are followed
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            seen.add(line.split("|")[0].strip())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "the running Jobs were deleted" in err
    assert sorted(standin.deleted) == sorted(standin.seen) and len(standin.seen) == 2
    assert jobs_of(kube) == []


def test_a_job_whose_pod_cannot_start_fails_before_its_deadline(
    tmp_path: Path, kubeconfig: Path, kube: Any, archive: Any, standin: StandinJobs
) -> None:
    data = config_data(tmp_path, kubeconfig, pod_start_timeout_seconds=1)
    path = write_config(tmp_path / "config.yaml", data)
    config = parse_config(path.read_text(), path)
    standin.plan = lambda job: PodRun(cannot_start="ImagePullBackOff")
    (outcome,) = launcher(config, archive).run(
        [rt.TestRequest("acid-main")],
        run_id=RUN,
        on_line=lambda c, line: None,
        cancel=rt.TestsCancel(),
    )
    assert outcome.result == "error"
    assert outcome.error is not None
    assert "cannot start: ImagePullBackOff: Back-off pulling image" in outcome.error
    assert IMAGE in outcome.error
    assert jobs_of(kube) == []  # deleted, not left to wait out its deadline


def test_when_no_job_reached_its_restore_none_could_run(
    config_path: Path, kube: Any, standin: StandinJobs, capsys: Any
) -> None:
    standin.plan = lambda job: PodRun(["pgdeck: no backup in storage to test\n"], 2, report=None)
    add_sources(kube, "acid-main")
    argv = ["restore-test", "acid-main", "--in-cluster", "--config", str(config_path)]
    assert main(argv) == 2  # as without --in-cluster: no test could run
    assert "no backup in storage to test" in capsys.readouterr().err


def test_an_archive_the_launcher_cannot_list_is_no_report_not_a_crash(
    kube: Any, config: Any, archive: Any, standin: StandinJobs, tmp_path: Path
) -> None:
    folder = tmp_path / "archive" / "restore-tests"
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(folder, folder)  # listing it loops: the archive cannot be read
    standin.plan = lambda job: PodRun(["done\n"], report=None)
    tests = [rt.TestRequest("acid-a"), rt.TestRequest("acid-b")]
    outcomes = launcher(config, archive).run(
        tests, run_id=RUN, on_line=lambda c, line: None, cancel=rt.TestsCancel()
    )
    assert [o.cluster for o in outcomes] == ["acid-a", "acid-b"]
    for o in outcomes:
        assert o.result == "error" and o.error is not None
        assert "the archive's reports could not be read" in o.error
