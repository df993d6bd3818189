"""The archive screen and the review screen's earlier reviews, read through the Archive
from a local directory and from moto's S3 server alike."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Markdown, OptionList

from services.archive import Archive, open_archive, process_identity
from services.catalog import Catalog
from services.config import Config, KubernetesConfig, StorageLocation
from services.review import Review
from tui.app import PgdeckApp
from tui.screens.archive import ArchiveScreen
from tui.screens.review import ReviewScreen
from tui.screens.review_dialogs import EarlierReviewsScreen

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)


def clock() -> datetime:
    return NOW


async def until(pilot: Any, condition: Callable[[], object], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.02)


@pytest.fixture(params=["local", "s3"])
def where(request: Any, tmp_path: Path) -> Path | StorageLocation:
    if request.param == "local":
        return tmp_path / "archive"
    bucket, endpoint = request.getfixturevalue("bucket"), request.getfixturevalue("s3_endpoint")
    return StorageLocation(url=f"s3://{bucket}/pgdeck", endpoint_url=endpoint)


def app_for(tmp_path: Path, where: Path | StorageLocation) -> PgdeckApp:
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    config = Config(
        path=None,
        kubernetes=KubernetesConfig(enabled=False),
        storage=(StorageLocation(url=f"file://{store}"),),
        cache=tmp_path / "cache",
        archive=where,
    )
    return PgdeckApp(Catalog(config, clock=clock))


def review_doc(reviewer: str) -> dict[str, Any]:
    review = Review(
        window_start=NOW, window_end=NOW, verify=False, reviewer=reviewer, signed_at=NOW
    )
    return review.to_dict()


def seed_archive(archive: Archive) -> None:
    archive.complete(
        None, "review", "review", review_doc("Ada"), "# review by Ada\n", {"reviewer": "Ada"}
    )
    doc = {
        "status": "failed",
        "started_at": "2026-11-20T12:30:00Z",
        "backup": "s3://b/spilo/acid-orders/0f/logical_backups/1763640000.sql.gz",
        "target": "postgres@staging:5432/postgres",
        "target_name": "staging",
    }
    archive.complete(
        None, "restore", "acid-orders-to-staging", doc, "# Restore failed: acid-orders\n", {}
    )


@pytest.mark.asyncio
async def test_the_archive_screen_lists_reviews_and_restores_and_opens_one(
    tmp_path: Path, where: Path | StorageLocation
) -> None:
    archive = open_archive(where, clock)
    seed_archive(archive)
    # A restore whose process is gone: completed as interrupted when the archive is read.
    archive.store.put_new(
        "running/20261120T110000Z-acid-gone-to-staging-0000.json",
        json.dumps(
            {
                "kind": "restore",
                "label": "acid-gone-to-staging",
                "started_at": "2026-11-20T11:00:00Z",
                "stale_after": "2026-11-22T11:00:00Z",
                **{**process_identity(), "pid": 999_999_999, "proc_start": 1},
                "document": {"status": "running", "backup": "s3://b/acid-gone/k"},
            }
        ).encode(),
    )
    app = app_for(tmp_path, where)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.items)
        screen = app.screen
        assert isinstance(screen, ArchiveScreen)
        table = screen.query_one("#items", DataTable)
        rows = [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]
        assert [(r[1], r[2]) for r in rows] == [
            ("restore", "failed"),  # 12:30
            ("review", "✗ 0 ! 0 i 0"),  # 12:20
            ("restore", "interrupted"),  # 11:00
        ]
        await pilot.press("enter")
        await until(pilot, lambda: screen.shown is not None)
        assert screen.shown is not None and screen.shown.startswith("restores/")
        shown = screen.query_one("#report", Markdown)
        assert "Restore failed: acid-orders" in shown.source
        table.move_cursor(row=2)
        await pilot.press("enter")
        await until(pilot, lambda: "interrupted" in shown.source)
    assert [json.loads(raw).get("outcome") for _, raw in archive.store.audit_entries()][-1] == (
        "interrupted"
    )


@pytest.mark.asyncio
async def test_earlier_reviews_open_from_an_s3_archive_too(
    tmp_path: Path, where: Path | StorageLocation
) -> None:
    archive = open_archive(where, clock)
    seed_archive(archive)
    app = app_for(tmp_path, where)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen) and not app.screen.running)
        review_screen = app.screen
        assert isinstance(review_screen, ReviewScreen)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, EarlierReviewsScreen))
        options = app.screen.query_one("#reviews", OptionList)
        assert options.option_count == 1 and "Ada" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await until(pilot, lambda: review_screen.archived)
        assert "signed off by Ada" in review_screen.sub_title


@pytest.mark.asyncio
async def test_names_with_markup_and_escape_sequences_are_shown_as_written_and_escaped(
    tmp_path: Path,
) -> None:
    archive = open_archive(tmp_path / "archive", clock)
    odd = "ada[/b][@click=app.quit]\x1b]0;owned\x07"
    archive.complete(None, "review", "review", review_doc(odd), "# review\n", {"reviewer": "ada"})
    app = app_for(tmp_path, tmp_path / "archive")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.items)
        screen = app.screen
        assert isinstance(screen, ArchiveScreen) and app.is_running
        table = screen.query_one("#items", DataTable)
        what = str(table.get_row_at(0)[3])
        assert "ada[/b][@click=app.quit]" in what  # a "[" stays a "["
        assert "\x1b" not in what and "\\x1b]0;owned\\x07" in what


@pytest.mark.asyncio
async def test_hostile_files_in_the_archive_hide_no_other_report(
    tmp_path: Path, where: Path | StorageLocation
) -> None:
    archive = open_archive(where, clock)
    seed_archive(archive)
    deep = b"[" * 100_000
    archive.store.put_new("restores/20261120T130000Z-x-deadbeef.json", deep)
    archive.store.put_new("running/20261120T130000Z-x-deadbeef.json", deep)
    # JSON that parses, but whose row cannot be drawn (its counts nest past any repr).
    nested = b"[" * 990 + b"]" * 990
    archive.store.put_new(
        "reviews/20261120T140000Z-review-deadbeef.json",
        b'{"signed_off": {"at": "2026-11-20T14:00:00Z"}, "summary": {"error": ' + nested + b"}}",
    )
    app = app_for(tmp_path, where)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ArchiveScreen) and app.screen.items)
        screen = app.screen
        assert isinstance(screen, ArchiveScreen)
        table = screen.query_one("#items", DataTable)
        rows = [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]
        assert [(r[1], r[2]) for r in rows] == [("restore", "failed"), ("review", "✗ 0 ! 0 i 0")]
        status = str(screen.query_one("#status").render())
        assert status.startswith("1 reviews and 1 restore reports in")
