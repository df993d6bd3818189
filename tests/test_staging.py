"""Staging clusters against the fake Kubernetes API with a stand-in operator beside it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.archive import open_archive, verify_audit
from services.config import KubernetesConfig, StagingConfig
from services.errors import KubeError
from services.operator import credentials_secret_name
from services.staging import StagingClusters, StagingError
from services.staging_spec import COMPONENT, COMPONENT_VALUE, MANAGED_BY, labels
from tests.standin_operator import StandinOperator

NS = "pgdeck-staging"
RUN = "20261120t120000-a1b2c3"


class SteppedClock:
    """A clock that moves on by each sleep, so a timeout comes after so many polls,
    whatever the machine's speed (each sleep still lets real time pass for the operator)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        time.sleep(0.01)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock(datetime.now(UTC))


@pytest.fixture
def archive(tmp_path: Path) -> Any:
    return open_archive(tmp_path / "archive")


@pytest.fixture
def staging(kubeconfig: Path, clock: SteppedClock, archive: Any) -> StagingClusters:
    return StagingClusters(
        KubernetesConfig(kubeconfig=kubeconfig),
        StagingConfig(namespace=NS, team="pgdeck", ready_timeout_seconds=30),
        clock=clock,
        sleep=clock.sleep,
        poll_seconds=0.5,
        audit=archive.note,
    )


@pytest.fixture
def operator(kube: Any) -> Iterator[StandinOperator]:
    with StandinOperator(kube) as op:
        yield op


def create(staging: StagingClusters, source: str = "acid-main", run_id: str = RUN) -> Any:
    return staging.create(
        source=source, version="15", dump_size=300 * 2**20, run_id=run_id, source_namespace="shop"
    )


def test_a_staging_cluster_is_created_waited_for_read_and_deleted(
    kube: Any, staging: StagingClusters, operator: StandinOperator, archive: Any
) -> None:
    cluster = create(staging)
    assert cluster.name == staging.name_for("acid-main", RUN, "shop")
    assert re.fullmatch(r"pgdeck-restore-test-acid-main-[0-9a-f]{4}-a1b2c3", cluster.name)
    assert cluster.uid and cluster.created is not None
    stored = kube.get("postgresql", NS, cluster.name)
    assert stored["spec"] == {
        "teamId": "pgdeck",
        "numberOfInstances": 1,
        "postgresql": {"version": "15"},
        "volume": {"size": "3Gi"},  # 300 MiB x 8, rounded up
        "enableLogicalBackup": False,
    }
    assert stored["metadata"]["labels"][MANAGED_BY] == "pgdeck"
    assert operator.seen == [cluster.name]

    ready = staging.wait_ready(cluster)
    assert ready.status == "Running"
    assert staging.master_pod_state(cluster.name) == "ready"

    creds = staging.credentials(cluster)
    assert (creds.username, creds.password) == ("postgres", operator.password)
    assert operator.password not in repr(creds)
    assert staging.address(cluster) == f"{cluster.name}.{NS}.svc.cluster.local:5432"

    assert staging.delete(cluster) is True
    assert kube.get("postgresql", NS, cluster.name) is None
    assert kube.get("Secret", NS, credentials_secret_name(cluster.name)) is None
    assert staging.delete(cluster) is False  # gone already: said, not an error

    check = verify_audit(archive)
    assert check.ok
    entries = [e for _, e in archive.store.audit_entries()]
    assert [b'"action":"staging-create"' in e for e in entries] == [True, False, False]
    assert b'"action":"staging-delete"' in entries[1]
    assert all(operator.password.encode() not in e for e in entries)


def test_running_is_not_enough_the_master_pod_must_be_ready(
    kube: Any, staging: StagingClusters
) -> None:
    with StandinOperator(kube, ready_after=None):
        cluster = create(staging)
        with pytest.raises(StagingError) as exc:
            staging.wait_ready(cluster, timeout=5)
    message = str(exc.value)
    assert "\n" not in message
    assert f"staging cluster {NS}/{cluster.name} not ready within 5 s" in message
    assert "operator status Running, master pod not ready" in message
    assert staging.delete(cluster) is True


def test_a_cluster_that_never_runs_times_out_clearly_and_is_still_deleted(
    kube: Any, staging: StagingClusters, archive: Any
) -> None:
    with StandinOperator(kube, never_running=True):
        cluster = create(staging)
        try:
            with pytest.raises(StagingError) as exc:
                staging.wait_ready(cluster, timeout=3)
        finally:
            assert staging.delete(cluster) is True
    assert "operator status Creating, master pod missing" in str(exc.value)
    assert "staging.ready_timeout_seconds" in str(exc.value)
    assert kube.get("postgresql", NS, cluster.name) is None
    assert verify_audit(archive).ok


def test_create_failed_ends_the_wait_at_once(kube: Any, staging: StagingClusters) -> None:
    with StandinOperator(kube, fail_with="CreateFailed"):
        cluster = create(staging)
        with pytest.raises(StagingError, match="the operator reports CreateFailed"):
            staging.wait_ready(cluster)
    staging.delete(cluster)


def test_a_second_create_of_one_run_is_refused(
    staging: StagingClusters, operator: StandinOperator
) -> None:
    cluster = create(staging)
    with pytest.raises(StagingError, match="exists already"):
        create(staging)
    staging.delete(cluster)


def test_a_forbidden_create_is_one_line(kube: Any, staging: StagingClusters) -> None:
    kube.forbid(r"/postgresqls")
    with pytest.raises(KubeError) as exc:
        create(staging)
    assert "forbidden (403)" in str(exc.value)
    assert "cannot create resource" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_cleanup_deletes_only_old_clusters_pgdeck_made(
    kube: Any, staging: StagingClusters, clock: SteppedClock
) -> None:
    now = clock()
    ours = labels("20261101t000000-abcdef", "acid-main", "shop")

    def pg(name: str, age: timedelta, lbls: dict[str, str] | None) -> dict:
        return ko.postgresql(
            name, NS, created=now - age, team="pgdeck", instances=1, labels=lbls, status="Running"
        )

    kube.add(
        pg("pgdeck-restore-test-old-abcdef", timedelta(days=2), ours),
        pg("pgdeck-restore-test-new-abcdef", timedelta(minutes=10), ours),
        pg("pgdeck-someone-elses", timedelta(days=30), None),
        pg(
            "pgdeck-other-tool",
            timedelta(days=30),
            {MANAGED_BY: "helm", COMPONENT: COMPONENT_VALUE},
        ),
        ko.postgresql("acid-main", "shop", created=now - timedelta(days=90), labels=ours),
    )
    deleted = staging.cleanup(older_than=timedelta(hours=6))
    assert [c.name for c in deleted] == ["pgdeck-restore-test-old-abcdef"]
    assert deleted[0].source == "acid-main"
    left = {c.name for c in staging.managed()}
    assert left == {"pgdeck-restore-test-new-abcdef"}
    assert kube.get("postgresql", NS, "pgdeck-someone-elses") is not None
    assert kube.get("postgresql", "shop", "acid-main") is not None
