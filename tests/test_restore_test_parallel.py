"""Restore tests side by side: ``pgdeck restore-test --all`` over three clusters with
``staging.max_parallel`` 2. The stand-in operator gives each staging cluster its own real
PostgreSQL (a whole-cluster restore cannot share a server), reached through
``staging.address`` as a unix socket directory named after the cluster. Checked: every
test passed into its own server (each cluster's backup carries its own name in a row),
never more than two staging clusters at once and two at once indeed, every staging
cluster deleted, each report archived under its own cluster's name."""

from __future__ import annotations

import gc
import gzip
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sandbox import kube as ko
from services import restore_test as rt  # its Test* classes are no pytest tests
from services.archive import open_archive
from services.catalog import Catalog
from services.clock import starting_at
from services.config import load_config
from services.operator import backup_key
from services.restore import RestoreEngine
from tests.conftest import seed, table_digests, write_config
from tests.staging_servers import StagingServers
from tests.standin_operator import StandinOperator
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NS, STAGING = "shop", "pgdeck-staging"
CLUSTERS = ["acid-alpha", "acid-beta", "acid-gamma"]
FIRST_CUSTOMER = "\tKundin 1 – ü\t"  # a row of the source dump's customers table


def uid(i: int) -> str:
    return f"5e1f0000-0000-4000-8000-0000000000{i:02x}"


def own_dump(source_dump: bytes, cluster: str) -> bytes:
    """The source dump with the first customer renamed after ``cluster``."""
    text = source_dump.decode()
    assert text.count(FIRST_CUSTOMER) == 1
    return text.replace(FIRST_CUSTOMER, f"\tKundin 1 – {cluster}\t").encode()


@pytest.fixture
def servers() -> Iterator[StagingServers]:
    made = StagingServers(Path(tempfile.mkdtemp(prefix="rtp-", dir="/tmp")))
    yield made
    made.close()


def world(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    endpoint: str,
    source_dump: bytes,
    servers: StagingServers,
    clusters: list[str],
    max_parallel: int,
) -> Path:
    """The source clusters in Kubernetes, a backup of each (its own) in the bucket; the config."""
    when = int((NOW - timedelta(hours=1)).timestamp())
    for i, name in enumerate(clusters):
        kube.add(ko.postgresql(name, NS, created=NOW - timedelta(days=9), uid=uid(i), version="16"))
    seed(
        bucket,
        {
            f"spilo/{backup_key(name, uid(i), when)}": gzip.compress(own_dump(source_dump, name))
            for i, name in enumerate(clusters)
        },
    )
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": endpoint}],
            "staging": {
                "namespace": STAGING,
                "address": servers.address,
                "ready_timeout_seconds": 60,
                "max_parallel": max_parallel,
            },
            "restore_tests": {"rto_minutes": 60},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )


def test_tests_run_side_by_side_each_in_its_own_staging_server(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_pg: Any,
    source_dump: bytes,
    servers: StagingServers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = world(tmp_path, kube, kubeconfig, bucket, s3_endpoint, source_dump, servers, CLUSTERS, 2)
    found: dict[str, tuple[str, dict[str, tuple[int, str]]]] = {}

    def read_before_release(name: str, pg: Any) -> None:
        with psycopg.connect(pg.dsn("shop"), autocommit=True) as conn:
            row = conn.execute("SELECT name FROM customers WHERE id = 1").fetchone()
        found[name] = (row[0] if row else "", table_digests(pg, "shop"))

    servers.before_release = read_before_release
    first = [True]

    def start_when_two_exist(name: str) -> tuple[str, int]:
        # The first staging primary waits for a second staging cluster to exist: a serial
        # run never makes one, so peak_alive stays 1 (and the test fails on it, not on time).
        if first[0]:
            first[0] = False
            deadline = time.monotonic() + 20
            while len(op.alive) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        return servers.start(name)

    op = StandinOperator(kube, primary_factory=start_when_two_exist, release=servers.release)
    with op:
        code = main(
            ["--config", str(cfg), "restore-test", "--all", "--json"], clock=starting_at(NOW)
        )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    docs = json.loads(captured.out)
    assert sorted(d["source"]["cluster"] for d in docs) == CLUSTERS
    assert all(d["result"] == "passed" for d in docs), [d["reasons"] for d in docs]
    assert len({d["run_id"] for d in docs}) == 1

    # Side by side, never more than max_parallel; each cluster its own server, deleted.
    assert op.peak_alive == 2
    assert servers.started == 3 and servers.servers == {} and op.alive == set()
    staging = {d["staging"]["name"]: d["source"]["cluster"] for d in docs}
    assert len(staging) == 3 and set(staging) == set(op.seen)
    expected = table_digests(source_pg, "shop")
    for name, source in staging.items():
        assert kube.get("postgresql", STAGING, name) is None
        first_customer, digests = found[name]
        assert first_customer == f"Kundin 1 – {source}"
        assert {t: rows for t, (rows, _) in digests.items()} == {
            t: rows for t, (rows, _) in expected.items()
        }
    for d in docs:
        assert d["teardown"] == {"status": "deleted", "error": None}
        assert d["staging"]["address"] == f"{servers.sockets}/{d['staging']['name']}:5432"

    # Each report archived under its own cluster's name.
    items = open_archive(tmp_path / "archive").list("restore-test")
    assert sorted(i.document["source"]["cluster"] for i in items) == CLUSTERS
    for item in items:
        cluster = item.document["source"]["cluster"]
        assert f"-{cluster}-" in item.location
        assert item.document["run_id"] == docs[0]["run_id"]


def test_a_run_holds_no_finished_restore(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    servers: StagingServers,
) -> None:
    """A finished test's restore engine (its S3 client, its test: ~13 MB) is let go while
    the run goes on: a run of hundreds of clusters stays as small as one of four."""
    clusters = CLUSTERS[:2]
    cfg = world(tmp_path, kube, kubeconfig, bucket, s3_endpoint, source_dump, servers, clusters, 1)
    config = load_config(cfg)
    clock = starting_at(NOW)
    catalog = Catalog(config, clock=clock)
    catalog.refresh()
    cancel = rt.TestsCancel()  # alive as long as the run (a signal may come at any time)
    with StandinOperator(kube, primary_factory=servers.start, release=servers.release):
        outcomes = rt.run_restore_tests(
            [rt.TestRequest(name, NS) for name in clusters],
            config=config,
            catalog=catalog,
            run_id="20261120t120000-abc123",
            on_event=lambda _cluster, _event: None,
            cancel=cancel,
            clock=clock,
            started_by={"command": "pytest"},
        )
    assert [o.result for o in outcomes] == ["passed", "passed"], [o.error for o in outcomes]
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, RestoreEngine)] == []
