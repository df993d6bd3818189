"""A restore test run from the console's restore tests screen, end to end: the fake
Kubernetes API with the stand-in operator, the backup in moto, a real PostgreSQL standing in
for the staging primary; the live log, the new row, and a cancel that deletes the cluster."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Log

from sandbox import kube as ko
from services.archive import open_archive
from services.catalog import Catalog
from services.config import load_config
from services.operator import backup_key
from tests.conftest import seed, write_config
from tests.standin_operator import StandinOperator
from tui.app import PgdeckApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.restore_tests import RestoreTestsScreen
from widgets.cluster_table import ClusterTable
from widgets.fitting_table import FittingTable

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
UID = "5e1f0000-0000-4000-8000-0000000000bb"
NS, STAGING = "shop", "pgdeck-staging"
KEY = "test/shop/acid-shop"


async def until(pilot: Any, condition: Callable[[], object], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def app_for(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    endpoint: str,
    target_pg: Any,
    **extra: Any,
) -> PgdeckApp:
    kube.add(
        ko.postgresql("acid-shop", NS, created=NOW - timedelta(days=90), uid=UID, version="16")
    )
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "storage": [{"url": f"s3://{bucket}/spilo", "endpoint_url": endpoint}],
            "staging": {
                "namespace": STAGING,
                "address": f"127.0.0.1:{target_pg.port}",
                "ready_timeout_seconds": 60,
            },
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
            **extra,
        },
    )
    return PgdeckApp(Catalog(load_config(config), clock=lambda: NOW))


async def start_test(pilot: Any) -> RestoreTestsScreen:
    app = pilot.app
    await until(pilot, lambda: app.screen.query_one(ClusterTable).row_count == 1)
    await app.workers.wait_for_complete()
    await pilot.press("t")
    await until(pilot, lambda: isinstance(app.screen, RestoreTestsScreen) and app.screen.rows)
    screen = app.screen
    assert isinstance(screen, RestoreTestsScreen)
    assert screen.query_one("#tests", FittingTable).selected_key() == KEY
    await pilot.press("r")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")
    await until(pilot, lambda: screen.running == "acid-shop")
    return screen


@pytest.mark.asyncio
async def test_r_runs_a_test_with_its_live_log_and_the_row_shows_it(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    at = int((NOW - timedelta(hours=1)).timestamp())
    seed(bucket, {f"spilo/{backup_key('acid-shop', UID, at)}": gzip.compress(source_dump)})
    app = app_for(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    with StandinOperator(kube, username="postgres") as op:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await start_test(pilot)
            await until(pilot, lambda: screen.last_outcome is not None)
            assert screen.last_outcome == "passed"
            log = "\n".join(screen.query_one("#run-log", Log).lines)
            assert "loaded shop." in log and "restore test of acid-shop: passed" in log
            table = screen.query_one("#tests", FittingTable)
            await until(pilot, lambda: str(table.get_cell(KEY, "mark")) == "✓ ok")
            assert str(table.get_cell(KEY, "last")).startswith("✓ passed")
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    [item] = open_archive(tmp_path / "archive").list("restore-test")
    assert item.document["result"] == "passed"


@pytest.mark.asyncio
async def test_a_test_from_the_console_restores_on_the_configured_sessions(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    at = int((NOW - timedelta(hours=1)).timestamp())
    seed(bucket, {f"spilo/{backup_key('acid-shop', UID, at)}": gzip.compress(source_dump)})
    app = app_for(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg, restore={"jobs": 2})
    with StandinOperator(kube, username="postgres"):
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await start_test(pilot)
            await until(pilot, lambda: screen.last_outcome is not None)
            assert screen.last_outcome == "passed"
            log = "\n".join(screen.query_one("#run-log", Log).lines)
            assert "acid-shop starting (table data on 2 sessions, restore.jobs)" in log
            assert " of 2 data sessions" in log, log
    [item] = open_archive(tmp_path / "archive").list("restore-test")
    assert item.document["time_to_restore"]["data_sessions"] == 2


@pytest.mark.asyncio
async def test_escape_or_ctrl_c_cancels_a_running_test_and_its_staging_cluster_is_deleted(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
) -> None:
    at = int((NOW - timedelta(hours=1)).timestamp())
    seed(bucket, {f"spilo/{backup_key('acid-shop', UID, at)}": gzip.compress(b"-- empty\n")})
    app = app_for(tmp_path, kube, kubeconfig, bucket, s3_endpoint, target_pg)
    with StandinOperator(kube, never_running=True) as op:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await start_test(pilot)
            await until(pilot, lambda: op.seen)  # its staging cluster exists, never Running
            await pilot.press("ctrl+c")  # asks, as escape does; "n" keeps the test running
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await until(pilot, lambda: app.screen is screen)
            assert screen.running == "acid-shop"
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: screen.last_outcome is not None)
            assert screen.last_outcome == "cancelled"
            assert app.screen is screen  # escape cancelled the test, it did not leave
    assert kube.get("postgresql", STAGING, op.seen[0]) is None
    [item] = open_archive(tmp_path / "archive").list("restore-test")
    assert item.document["result"] == "cancelled"
    assert item.document["teardown"]["status"] == "deleted"
