"""The review screen driven by Textual's pilot, against moto's S3 server and the fake API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from sandbox import kube as ko
from services.archive import os_user
from services.catalog import Catalog
from services.config import load_config
from tests.conftest import seed, storage_config
from tui.app import PgdeckApp
from tui.screens.review import ReviewScreen
from tui.screens.review_dialogs import EarlierReviewsScreen, SignOffScreen
from tui.screens.timeline import TimelineScreen
from widgets.cluster_table import ClusterTable

UID = "0b700000-0000-4000-8000-000000000007"
NOW = datetime.now(UTC)
TOP = NOW.replace(minute=0, second=0, microsecond=0)
ROW = "test/shop/acid-orders"
COLUMNS = ("cluster", "missing_backup", "job_failed", "size_anomaly", "unencrypted")


def key(t: datetime) -> str:
    return f"spilo/acid-orders/{UID}/logical_backups/{int(t.timestamp())}.sql.gz"


class World:
    """acid-orders: 48 hourly objects; hour 5 missing (its job failed, a later one
    succeeded), hour 3's object stored without encryption."""

    def __init__(self, tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, endpoint: str):
        pg = ko.postgresql(
            "acid-orders", "shop", uid=UID, created=TOP - timedelta(hours=48, minutes=30)
        )
        cj = ko.cronjob(pg, last_schedule=TOP, last_successful=TOP - timedelta(hours=1))
        bad = ko.job(
            cj, started=TOP - timedelta(hours=5), succeeded=False, reason="BackoffLimitExceeded"
        )
        good = ko.job(cj, started=TOP - timedelta(hours=1), finished=TOP - timedelta(minutes=58))
        self.bad_job = bad["metadata"]["name"]
        bad_pod = ko.pod(
            bad,
            started=TOP - timedelta(hours=5),
            finished=TOP - timedelta(hours=5, minutes=-1),
            exit_code=1,
        )
        good_pod = ko.pod(
            good, started=TOP - timedelta(hours=1), finished=TOP - timedelta(minutes=58)
        )
        kube.add(pg, cj, bad, good, bad_pod, good_pod)
        kube.set_log("shop", bad_pod["metadata"]["name"], "pg_dumpall: error: connection failed\n")
        kube.set_log("shop", good_pod["metadata"]["name"], "uploaded\n")
        at = {h: TOP - timedelta(hours=h) + timedelta(minutes=2) for h in range(1, 49)}
        seed(bucket, {key(t): 100_000 + h for h, t in at.items() if h not in (3, 5)})
        seed(bucket, {key(at[3]): 100_003}, sse=None)
        self.unencrypted = f"s3://{bucket}/{key(at[3])}"
        self.archive = tmp_path / "archive"
        self.config = storage_config(
            tmp_path, bucket, endpoint, kubernetes={"kubeconfig": str(kubeconfig)}
        )

    def app(self) -> PgdeckApp:
        # The clock is pinned at NOW: the world leaves the run at TOP without an object, so
        # a wall clock past TOP + 1 h (the grace) would make it the latest missing run.
        return PgdeckApp(Catalog(load_config(self.config), clock=lambda: NOW))


@pytest.fixture
def world(tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str) -> World:
    return World(tmp_path, kubeconfig, kube, bucket, s3_endpoint)


async def settle(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Any, condition: Callable[[], object], seconds: float = 20) -> None:
    """Wait for what a worker started by a callback brings (it may not exist yet)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await settle(pilot)
        await pilot.pause(0.02)


async def open_review(pilot: Any) -> ReviewScreen:
    await settle(pilot)
    assert pilot.app.screen.query(ClusterTable)
    await pilot.press("v")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReviewScreen))
    screen = pilot.app.screen
    await until(pilot, lambda: not screen.running)
    assert screen.review is not None
    return screen


def marks(screen: ReviewScreen) -> dict[str, str]:
    table = screen.query_one("#checklist", DataTable)
    return {c: str(table.get_cell(ROW, c)) for c in COLUMNS}


def findings(screen: ReviewScreen) -> list[tuple[str, str]]:
    table = screen.query_one("#findings", DataTable)
    return [
        (str(table.get_cell_at((r, 0))), str(table.get_cell_at((r, 1))))
        for r in range(table.row_count)
    ]


async def choose_finding(pilot: Any, screen: ReviewScreen, check: str) -> None:
    table = screen.query_one("#findings", DataTable)
    screen.set_focus(table)
    row = [c for _, c in findings(screen)].index(check)
    table.move_cursor(row=row)
    await pilot.pause()


async def sign(pilot: Any, reviewer: str, note: str) -> SignOffScreen:
    screen = pilot.app.screen
    await pilot.press("s")
    await until(pilot, lambda: isinstance(pilot.app.screen, SignOffScreen))
    dialog = pilot.app.screen
    dialog.query_one("#reviewer", Input).value = ""
    await pilot.press(*reviewer, "enter", *note, "ctrl+s")
    if reviewer.strip():
        await until(pilot, lambda: screen.signed)
    await settle(pilot)
    return dialog


@pytest.mark.asyncio
async def test_v_opens_the_review_with_marks_for_a_missing_hour_a_failed_job_and_plain_object(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_review(pilot)
        assert marks(screen) == {
            "cluster": "shop/acid-orders",
            "missing_backup": "!",  # one hour of 47 left no object, not the latest
            "job_failed": "!",  # the failed job was followed by a success
            "size_anomaly": "✓",
            "unencrypted": "!",
        }
        assert set(findings(screen)) == {
            ("! warning", "missing_backup"),
            ("! warning", "job_failed"),
            ("! warning", "unencrypted"),
        }
        title = str(screen.query_one("#title", Static).render())
        assert "1 cluster: 0 critical, 3 warning, 0 info" in title
        assert not screen.query_one("#progress").display
        # The worker's progress reached the screen (its last stage stays behind the table).
        assert str(screen.query_one("#stage", Static).render()) == "reading job logs 2/2"
        # The evidence follows the finding under the cursor.
        await choose_finding(pilot, screen, "job_failed")
        evidence = screen.query_one("#evidence", DataTable)
        kinds = [str(evidence.get_cell_at((r, 0))) for r in range(evidence.row_count)]
        assert kinds[:3] == ["job", "pod", "log"]
        log = evidence.cells_of(list(evidence.rows)[2])["detail"]
        assert "connection failed" in str(log)
        # At 80 columns the log line may be cut in the table (its width depends on the
        # other columns); then it is said whole under the table for the selected row.
        evidence.move_cursor(row=2)
        await pilot.pause()
        folded = screen.query_one("#evidence-folded", Static)
        shown = str(evidence.get_cell_at((2, 2)))
        if "connection failed" not in shown:
            assert folded.display and "connection failed" in str(folded.render())


@pytest.mark.asyncio
async def test_enter_on_an_object_finding_opens_the_timeline_on_that_object(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_review(pilot)
        await choose_finding(pilot, screen, "unencrypted")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen))
        await until(pilot, lambda: app.screen.backups)
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen)
        table = timeline.query_one("#backups", DataTable)
        assert table.row_count == 47
        assert table.cursor_row > 0
        assert timeline.selected_backup().url == world.unencrypted  # type: ignore[union-attr]
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


@pytest.mark.asyncio
async def test_enter_on_a_failed_job_opens_the_jobs_tab_on_that_job(world: World) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_review(pilot)
        await choose_finding(pilot, screen, "job_failed")
        # From the evidence table: the log line's pod leads to its job too.
        evidence = screen.query_one("#evidence", DataTable)
        screen.set_focus(evidence)
        evidence.move_cursor(row=2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen))
        await until(pilot, lambda: app.screen.jobs)
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen)
        from textual.widgets import TabbedContent

        assert timeline.query_one(TabbedContent).active == "jobs-tab"
        jobs = timeline.query_one("#jobs", DataTable)
        assert timeline.focused is jobs
        row_key, _ = jobs.coordinate_to_cell_key(jobs.cursor_coordinate)
        assert row_key.value == world.bad_job


@pytest.mark.asyncio
async def test_sign_off_archives_json_and_markdown_and_appends_to_the_audit_log(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_review(pilot)
        await sign(pilot, "alice", "looked at the gap")
        assert app.screen is screen
        jsons = sorted((world.archive / "reviews").glob("*.json"))
        mds = sorted((world.archive / "reviews").glob("*.md"))
        assert len(jsons) == 1 and len(mds) == 1
        data = json.loads(jsons[0].read_text())
        assert data["signed_off"]["reviewer"] == "alice"
        assert data["signed_off"]["note"] == "looked at the gap"
        assert data["summary"]["warning"] == 3
        assert "Signed off by alice" in mds[0].read_text()
        audit = [
            json.loads(line) for line in (world.archive / "audit.log").read_text().splitlines()
        ]
        assert [(a["reviewer"], a["action"], a["report"]) for a in audit] == [
            ("alice", "review", f"reviews/{jsons[0].name}")
        ]
        assert audit[0]["os_user"] == os_user() and audit[0]["prev"] == "0" * 64
        status = str(screen.query_one("#status", Static).render())
        assert str(jsons[0]) in status.replace("\n", "") or jsons[0].name in status
        # A signed review is not signed twice.
        assert screen.check_action("sign_off", ()) is None
        await pilot.press("s")
        await settle(pilot)
        assert app.screen is screen
        assert len(list((world.archive / "reviews").glob("*.json"))) == 1


@pytest.mark.asyncio
async def test_an_empty_reviewer_is_refused_and_nothing_is_archived(world: World) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_review(pilot)
        dialog = await sign(pilot, "   ", "")
        assert app.screen is dialog  # still asking
        assert "reviewer's name" in str(dialog.query_one("#problem", Static).render())
        assert dialog.focused is dialog.query_one("#reviewer", Input)
        assert not world.archive.exists()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        assert not world.archive.exists()


@pytest.mark.asyncio
async def test_an_archived_review_opens_read_only(world: World) -> None:
    app = world.app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_review(pilot)
        await sign(pilot, "bob", "")
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, EarlierReviewsScreen))
        dialog = app.screen
        assert isinstance(dialog, EarlierReviewsScreen)
        options = dialog.query_one("#reviews", OptionList)
        assert options.option_count == 1
        assert "bob" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await until(pilot, lambda: screen.archived)
        assert app.screen is screen
        assert "ARCHIVED" in str(screen.query_one("#title", Static).render())
        assert "signed off by bob" in screen.sub_title
        assert marks(screen)["unencrypted"] == "!"
        assert screen.check_action("sign_off", ()) is None
        await pilot.press("s")  # refused: read-only
        await settle(pilot)
        assert app.screen is screen
        assert len(list((world.archive / "reviews").glob("*.json"))) == 1
        # ctrl+r reviews now again, with sign-off back.
        await pilot.press("ctrl+r")
        await until(pilot, lambda: not screen.running)
        assert not screen.archived and screen.check_action("sign_off", ()) is True


@pytest.mark.asyncio
async def test_a_failed_source_is_shown_inline_rather_than_a_clean_review(
    world: World, kube: Any
) -> None:
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_review(pilot)
        kube.forbid(r".*")
        await pilot.press("ctrl+r")  # refreshes the catalog, then reviews
        await until(pilot, lambda: not screen.running)
        assert app.screen is screen
        assert screen.review is None
        title = str(screen.query_one("#title", Static).render())
        assert title.startswith("✗ the review could not be made")
        assert screen.query_one("#checklist", DataTable).row_count == 0
        assert screen.check_action("sign_off", ()) is None
        assert any("could not be made" in n.message for n in app._notifications)
