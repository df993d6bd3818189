"""The timeline screen driven by Textual's pilot, against moto's S3 server and the fake API."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Log, Static

from sandbox import kube as ko
from services.catalog import Catalog
from services.config import load_config
from tests.conftest import seed, storage_config
from tui.app import PgdeckApp
from tui.screens.timeline import TimelineScreen
from widgets.cluster_table import ClusterTable
from widgets.coverage_grid import CoverageGrid
from widgets.size_sparkline import SizeSparkline

UID = "0b200000-0000-4000-8000-000000000002"
NOW = datetime.now(UTC)
TOP = NOW.replace(minute=0, second=0, microsecond=0)


def key(t: datetime, name: str = "acid-orders") -> str:
    return f"spilo/{name}/{UID}/logical_backups/{int(t.timestamp())}.sql.gz"


def world(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, endpoint: str, dump: bytes
) -> Catalog:
    """acid-orders: 72 hourly objects with two planted problems, and a failed job with its log."""
    pg = ko.postgresql(
        "acid-orders", "shop", uid=UID, created=TOP - timedelta(hours=72, minutes=30)
    )
    cj = ko.cronjob(pg, last_schedule=TOP, last_successful=TOP - timedelta(hours=1))
    bad = ko.job(
        cj, started=TOP - timedelta(hours=5), succeeded=False, reason="BackoffLimitExceeded"
    )
    good = ko.job(cj, started=TOP - timedelta(hours=1), finished=TOP - timedelta(minutes=58))
    bad_pod = ko.pod(
        bad,
        started=TOP - timedelta(hours=5),
        finished=TOP - timedelta(hours=5) + timedelta(minutes=1),
        exit_code=1,
    )
    good_pod = ko.pod(good, started=TOP - timedelta(hours=1), finished=TOP - timedelta(minutes=58))
    kube.add(pg, cj, bad, good, bad_pod, good_pod)
    kube.set_log(
        "shop", bad_pod["metadata"]["name"], "pg_dumpall: error: connection to server failed\n"
    )
    kube.set_log("shop", good_pod["metadata"]["name"], "uploaded\n")
    real = gzip.compress(dump)
    objects: dict[str, bytes | int] = {}
    for h in range(1, 73):
        if h == 5:
            continue  # the failed job's hour: no object
        objects[key(TOP - timedelta(hours=h) + timedelta(minutes=2))] = len(real) + 10 * (72 - h)
    objects[key(TOP - timedelta(hours=9) + timedelta(minutes=2))] = 500  # near-empty
    objects[key(TOP - timedelta(hours=1) + timedelta(minutes=2))] = real
    seed(bucket, {k: v for k, v in objects.items() if "hours=3" not in k})
    unencrypted = key(TOP - timedelta(hours=3) + timedelta(minutes=2))
    seed(bucket, {unencrypted: objects[unencrypted]}, sse=None)
    config = storage_config(tmp_path, bucket, endpoint, kubernetes={"kubeconfig": str(kubeconfig)})
    # The clock is pinned at NOW: the run at TOP has no object, so a wall clock past
    # TOP + 1 h (the grace) would make it the latest missing run.
    return Catalog(load_config(config), clock=lambda: NOW)


async def open_timeline(pilot: Any) -> TimelineScreen:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    table = app.screen.query_one(ClusterTable)
    # The failed job was followed by a success; its hour stays missing.
    assert str(table.get_cell("test/shop/acid-orders", "health")) == "! missing 1"
    await pilot.press("enter")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, TimelineScreen)
    await app.workers.wait_for_complete()
    await pilot.pause()
    return screen


@pytest.mark.asyncio
async def test_timeline_shows_backups_sizes_coverage_and_encryption(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, source_dump: bytes
) -> None:
    app = PgdeckApp(world(tmp_path, kubeconfig, kube, bucket, s3_endpoint, source_dump))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_timeline(pilot)
        table = screen.query_one("#backups", DataTable)
        assert table.row_count == 71
        spark = screen.query_one(SizeSparkline)
        assert spark.cursor == 70  # the newest backup, at the right end
        await pilot.press("down", "down")
        assert spark.cursor == 68
        # The near-empty object is flagged in its row and shows as unusual in the grid.
        notes = [str(table.get_cell_at((r, 7))) for r in range(table.row_count)]
        assert sum("near-empty" in n for n in notes) == 1
        grid = screen.query_one(CoverageGrid).counts()
        assert grid["missing"] == 1 and grid["unusual"] == 1
        assert grid["present"] == 71 - 1  # 71 objects, one of them unusual
        # Encryption comes from the cache (the app HEADs new objects behind its refresh), else
        # from HEADs in a worker: the unencrypted object is marked.
        sse = [str(table.get_cell_at((r, 6))) for r in range(table.row_count)]
        assert sse.count("✗ none") == 1 and sse.count("AES256") == 70


@pytest.mark.asyncio
async def test_jobs_panel_shows_the_failed_job_and_its_log(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, source_dump: bytes
) -> None:
    app = PgdeckApp(world(tmp_path, kubeconfig, kube, bucket, s3_endpoint, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        await pilot.press("j")
        await pilot.pause()
        jobs = screen.query_one("#jobs", DataTable)
        assert jobs.row_count == 2
        assert [str(jobs.get_cell_at((r, 1))) for r in range(2)] == ["succeeded", "failed"]
        jobs.focus()
        await pilot.press("down")  # the failed job: its log is read in a worker of its own
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        log = screen.query_one("#log", Log)
        assert any("end of log" in line for line in log.lines)
        assert any("connection to server failed" in line for line in log.lines)
        # At 80 columns the reason is cut in the table and said whole under it.
        assert str(jobs.get_cell_at((1, 4))).endswith("…")
        assert "BackoffLimitExceeded" in str(screen.query_one("#job-folded", Static).render())


@pytest.mark.asyncio
async def test_verify_marks_the_backup_intact_or_damaged(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, source_dump: bytes
) -> None:
    app = PgdeckApp(world(tmp_path, kubeconfig, kube, bucket, s3_endpoint, source_dump))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_timeline(pilot)
        table = screen.query_one("#backups", DataTable)
        await pilot.press("i")  # the newest: a real pg_dumpall
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(table.get_cell_at((0, 7))) == "✓ intact"
        await pilot.press("down", "i")  # zeros, not gzip
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(table.get_cell_at((1, 7))) == "✗ DAMAGED"
        assert "DAMAGED" not in str(table.get_cell_at((0, 7)))


@pytest.mark.asyncio
async def test_escape_goes_back_to_the_clusters(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, source_dump: bytes
) -> None:
    app = PgdeckApp(world(tmp_path, kubeconfig, kube, bucket, s3_endpoint, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_timeline(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query(ClusterTable)


@pytest.mark.asyncio
async def test_the_cronjob_line_says_the_next_run_beside_the_last(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, source_dump: bytes
) -> None:
    app = PgdeckApp(world(tmp_path, kubeconfig, kube, bucket, s3_endpoint, source_dump))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_timeline(pilot)
        await pilot.press("j")
        await pilot.pause()
        line = str(screen.query_one("#cronjob").render())
        # Hourly, on the catalog's pinned clock: the run after NOW is the next full hour.
        last, _, after = line.partition("last success")
        assert "last scheduled" in last
        assert "; next run " in after
        at = TOP + timedelta(hours=1)
        local = at.astimezone()
        shown = f"{local:%H:%M}" + (f" = {at:%H:%MZ}" if local.utcoffset() else "")
        assert f"{shown} (in " in after
