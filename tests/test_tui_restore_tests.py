"""The restore tests in the console: the screen opened with ``t`` (rows, the quarters'
sparkline, the latest report) and the clusters screen's mark, read from a real archive."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Markdown, Static

from sandbox import kube as ko
from services.archive import open_archive
from services.catalog import Catalog
from services.config import load_config
from tests.conftest import write_config
from tests.restore_test_docs import archive_test, document
from tui.app import PgdeckApp
from tui.screens.clusters import ClustersScreen
from tui.screens.restore_tests import RestoreTestsScreen
from widgets.cluster_table import ClusterTable
from widgets.fitting_table import FittingTable

NOW = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = ("acid-main", "acid-shop", "acid-old", "acid-new", "acid-off")


async def until(pilot: Any, condition: Callable[[], object], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.02)


def world(tmp_path: Path, *, tests: bool = True) -> Path:
    """Five clusters in manifests, each but acid-off with a backup in a file:// store; the
    archive holds tests of three of them (acid-new never tested) unless ``tests`` is False."""
    manifests, store = tmp_path / "manifests", tmp_path / "store" / "spilo"
    manifests.mkdir()
    docs = []
    for i, name in enumerate(NAMES):
        uid = f"0e500000-0000-4000-8000-00000000000{i}"
        docs.append(ko.postgresql(name, "shop", uid=uid, created=NOW - 400 * DAY))
        if name != "acid-off":
            folder = store / name / uid / "logical_backups"
            folder.mkdir(parents=True)
            (folder / f"{int((NOW - DAY).timestamp())}.sql.gz").write_bytes(b"\0" * 100)
    (manifests / "world.yaml").write_text(yaml.safe_dump_all(docs))
    if tests:
        archive = open_archive(tmp_path / "archive", lambda: NOW)
        for finished, name, result, ttr in (
            (NOW - 200 * DAY, "acid-main", "passed", 1200.0),
            (NOW - 10 * DAY, "acid-main", "passed", 2400.0),
            (NOW - 3 * DAY, "acid-shop", "failed", 4000.0),
            (NOW - 100 * DAY, "acid-old", "passed", 600.0),
        ):
            # Written from elsewhere (another context's name): the uid finds the cluster.
            uid = f"0e500000-0000-4000-8000-00000000000{NAMES.index(name)}"
            doc = document(name, finished, result, ttr=ttr, context="in-cluster", uid=uid)
            archive_test(archive, doc, f"# Restore test {result}: {name} at {finished:%F}\n")
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"manifests": str(manifests)},
            "storage": [{"url": f"file://{store}"}],
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )


def app_for(config: Path) -> PgdeckApp:
    return PgdeckApp(Catalog(load_config(config), clock=lambda: NOW))


def marks(table: ClusterTable) -> dict[str, str]:
    """Each cluster's name and mark, read by column key: at 80 columns some columns fold."""
    return {
        str(table.cells_of(str(key.value))["name"]): str(table.get_cell(key, "test"))
        for key in table.rows
    }


@pytest.mark.asyncio
async def test_the_clusters_screen_marks_failed_stale_and_never_tested_clusters(
    tmp_path: Path,
) -> None:
    app = app_for(world(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(ClusterTable)
        await until(pilot, lambda: "test" in table.column_keys and table.row_count == 5)
        keys = table.column_keys  # the mark beside the health, whatever folded before it
        assert keys[keys.index("health") + 1] == "test"
        expected = {
            "acid-main": "✓ ok",
            "acid-shop": "✗ failed",
            "acid-old": "! stale",
            "acid-new": "? never",
            "acid-off": "",  # no backups: nothing to test
        }
        assert marks(table) == expected
        await pilot.press("ctrl+r")  # a refresh of the catalog keeps them
        await until(pilot, lambda: not app.refreshing)
        await pilot.pause()
        assert marks(table) == expected


@pytest.mark.asyncio
async def test_no_restore_test_in_the_archive_no_column(tmp_path: Path) -> None:
    app = app_for(world(tmp_path, tests=False))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ClustersScreen)
        table = screen.query_one(ClusterTable)
        await until(pilot, lambda: table.row_count == 5 and screen.test_histories == [])
        await pilot.pause()
        assert "test" not in table.column_keys


@pytest.mark.asyncio
async def test_t_opens_the_restore_tests_with_the_quarters_and_the_latest_report(
    tmp_path: Path,
) -> None:
    app = app_for(world(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.query_one(ClusterTable).row_count == 5)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, RestoreTestsScreen) and app.screen.rows)
        screen = app.screen
        assert isinstance(screen, RestoreTestsScreen)
        table = screen.query_one("#tests", FittingTable)
        rows = {
            str(table.get_row_at(r)[0]): [str(c) for c in table.get_row_at(r)[1:]]
            for r in range(table.row_count)
        }
        assert set(rows) == {"shop/acid-main", "shop/acid-new", "shop/acid-old", "shop/acid-shop"}
        assert rows["shop/acid-shop"][:2] == ["✗ failed", "✗ failed 3 days ago"]
        assert rows["shop/acid-old"][:2] == ["! stale", "✓ passed 3 months ago"]
        assert rows["shop/acid-new"] == ["? never", "-", "", "-"]
        # Eight quarters, 2025-Q1 to 2026-Q4, scaled to the objective (an hour): acid-main
        # 20 min in 2026-Q2, 40 min in 2026-Q4; acid-shop over it (▲) this quarter.
        assert rows["shop/acid-main"][2:] == ["·····▃·▆", "40m00s / 1h00m"]
        assert rows["shop/acid-shop"][2] == "·······▲"
        table.move_cursor(row=list(rows).index("shop/acid-shop"))
        await pilot.pause()
        detail = str(screen.query_one("#detail", Static).render())
        assert "shop/acid-shop: ✗ failed 2026-11-28 04:30 UTC (3 days ago)" in detail
        assert "why: the test failed" in detail and "(objective 1h00m):  2026-Q4 1h06m▲" in detail
        await pilot.press("enter")
        await until(pilot, lambda: screen.shown is not None)
        shown = screen.query_one("#report", Markdown)
        assert "Restore test failed: acid-shop at 2026-11-28" in shown.source
        await pilot.press("escape")
        assert not isinstance(app.screen, RestoreTestsScreen)


@pytest.mark.asyncio
async def test_a_hostile_report_hides_no_mark_and_no_row(tmp_path: Path) -> None:
    config = world(tmp_path)
    deep = b"[" * 100_000
    (tmp_path / "archive" / "restore-tests" / "20261130T000000Z-x-deadbeef.json").write_bytes(deep)
    (tmp_path / "archive" / "running").mkdir(exist_ok=True)
    (tmp_path / "archive" / "running" / "20261130T000000Z-x-deadbeef.json").write_bytes(deep)
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    evil = document("acid-new", NOW - DAY, uid="0e500000-0000-4000-8000-000000000003")
    evil["test_finished_at"] = "0001-01-01T00:00:00+01:00"
    evil["time_to_restore"]["total_seconds"] = 10**400
    archive_test(archive, evil)
    app = app_for(config)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(ClusterTable)
        await until(pilot, lambda: "test" in table.column_keys and table.row_count == 5)
        got = marks(table)
        assert (got["acid-main"], got["acid-shop"], got["acid-new"]) == (
            "✓ ok",
            "✗ failed",
            "✓ ok",
        )
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, RestoreTestsScreen) and app.screen.rows)
        screen = app.screen
        assert isinstance(screen, RestoreTestsScreen)
        status = str(screen.query_one("#status", Static).render())
        assert status.startswith("4 cluster(s) tested: 1 failed, 1 stale")


@pytest.mark.asyncio
async def test_an_archive_that_cannot_be_read_is_one_line_in_each_status(tmp_path: Path) -> None:
    config = world(tmp_path, tests=False)
    folder = tmp_path / "archive" / "restore-tests"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(folder)  # listing it loops
    app = app_for(config)
    async with app.run_test(size=(160, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, ClustersScreen)
        status = screen.query_one("#status", Static)
        await until(pilot, lambda: "restore tests not read: cannot read" in str(status.render()))
        assert "5 clusters" in str(status.render())
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, RestoreTestsScreen))
        tests_status = app.screen.query_one("#status", Static)
        await until(pilot, lambda: str(tests_status.render()).startswith("✗ cannot read"))
