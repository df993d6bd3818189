"""SVG snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

The world is fixed: manifests and a file:// store written here, a clock pinned at NOW and
TZ=UTC, so that a screen only changes when the code does. After a deliberate change of a
screen, look at the report pytest prints, then accept with ``pytest --snapshot-update``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import kube as ko
from services.catalog import Catalog
from services.config import load_config
from tests.conftest import write_config
from tui.app import PgdeckApp

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
TOP = NOW.replace(minute=0)
H = timedelta(hours=1)
UIDS = {
    "acid-orders": "0d400000-0000-4000-8000-000000000001",
    "acid-billing": "0d400000-0000-4000-8000-000000000002",
    "acid-reports": "0d400000-0000-4000-8000-000000000003",
    "acid-legacy": "0d400000-0000-4000-8000-000000000004",
}


@pytest.fixture(autouse=True)
def utc_and_colour(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("NO_COLOR", raising=False)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four clusters: hourly and healthy, daily with a failed job, one with gaps and a tiny
    backup, one known only to storage; each object's content is just its size in bytes."""
    root = tmp_path_factory.mktemp("snapshots")
    manifests, store = root / "manifests", root / "store" / "spilo"
    docs: list[dict[str, Any]] = []

    def objects(name: str, times: list[datetime], size: Any) -> None:
        folder = store / name / UIDS[name] / "logical_backups"
        folder.mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(times):
            (folder / f"{int(t.timestamp())}.sql.gz").write_bytes(b"\0" * size(i))

    def cluster(name: str, namespace: str, schedule: str) -> dict[str, Any]:
        pg = ko.postgresql(
            name, namespace, uid=UIDS[name], created=NOW - timedelta(days=40), schedule=schedule
        )
        cj = ko.cronjob(pg, schedule=schedule, last_schedule=TOP, last_successful=TOP - H)
        docs.extend([pg, cj])
        return cj

    cj = cluster("acid-orders", "shop", "0 * * * *")
    hours = [TOP - k * H + timedelta(minutes=3) for k in range(24 * 15, 0, -1)]
    objects(
        "acid-orders",
        [t for k, t in enumerate(hours) if k not in (300, 301, 340)],
        lambda i: 500_000 + 90 * i if i != 330 else 700,
    )
    for k in (1, 2):
        job = ko.job(cj, started=TOP - k * H, finished=TOP - k * H + timedelta(seconds=41))
        docs.extend(
            [job, ko.pod(job, started=TOP - k * H, finished=TOP - k * H + timedelta(seconds=41))]
        )
    cj = cluster("acid-billing", "finance", "30 1 * * *")
    days = [(TOP - timedelta(days=d)).replace(hour=1, minute=31) for d in range(20, 0, -1)]
    objects("acid-billing", days, lambda i: 2_000_000 + 4_000 * i)
    failed = ko.job(
        cj, started=TOP.replace(hour=1, minute=30), succeeded=False, reason="BackoffLimitExceeded"
    )
    pod = ko.pod(
        failed,
        started=TOP.replace(hour=1, minute=30),
        finished=TOP.replace(hour=1, minute=31),
        exit_code=1,
    )
    docs.extend([failed, pod])
    cluster("acid-reports", "shop", "0 * * * *")
    objects(
        "acid-legacy",
        [TOP - timedelta(days=12) - k * H for k in range(48, 0, -1)],
        lambda i: 120_000,
    )
    manifests.mkdir(parents=True)
    (manifests / "world.yaml").write_text(yaml.safe_dump_all(docs))
    (manifests / "finance").mkdir()
    (manifests / "finance" / f"{pod['metadata']['name']}.log").write_text(
        "pg_dumpall: error: connection to server failed: FATAL:  the database system is shutting down\n"
    )
    write_config(
        root / "config.yaml",
        {
            "kubernetes": {"manifests": str(manifests)},
            "storage": [{"url": f"file://{store}"}],
            "cache": str(root / "cache"),
            "archive": str(root / "archive"),
            "targets": {"staging": {"dsn": "host=127.0.0.1 port=1 user=postgres"}},
        },
    )
    return root / "config.yaml"


def app_for(world: Path) -> PgdeckApp:
    return PgdeckApp(Catalog(load_config(world), clock=lambda: NOW))


async def settle(pilot: Any) -> None:
    await pilot.pause()  # the first screen mounts and starts its workers
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def run(*keys: str) -> Any:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return before


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_clusters_screen(world: Path, snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(world), terminal_size=size, run_before=run())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_timeline_backups(world: Path, snap_compare: Any, size: tuple[int, int]) -> None:
    # The clusters are in manifest order: acid-orders first.
    assert snap_compare(app_for(world), terminal_size=size, run_before=run("enter", "down"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_timeline_coverage(world: Path, snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(world), terminal_size=size, run_before=run("enter", "g"))


def test_timeline_jobs_with_a_failed_job(world: Path, snap_compare: Any) -> None:
    assert snap_compare(
        app_for(world), terminal_size=(120, 40), run_before=run("down", "enter", "j")
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_restore_wizard_target_that_fails_its_checks(
    world: Path, snap_compare: Any, size: tuple[int, int]
) -> None:
    # "staging" is configured but nothing listens there: its findings say so.
    assert snap_compare(app_for(world), terminal_size=size, run_before=run("r", "ctrl+n"))


def test_restore_wizard_scope(world: Path, snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await run("r")(pilot)
        screen = pilot.app.screen
        screen.step = 2  # the scope step as it looks once a target passed its checks
        screen._show_step()
        await settle(pilot)
        await pilot.click("#chosen")
        await settle(pilot)

    assert snap_compare(app_for(world), terminal_size=(80, 24), run_before=before)


def test_help_panel(world: Path, snap_compare: Any) -> None:
    assert snap_compare(
        app_for(world), terminal_size=(120, 40), run_before=run("enter", "question_mark")
    )


def test_coverage_without_colour(
    world: Path, snap_compare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR: the grid's states still differ by glyph, the marks by their words."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(world)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=run("enter", "g"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_review_screen(world: Path, snap_compare: Any, size: tuple[int, int]) -> None:
    # acid-orders has gaps, a tiny backup; acid-billing a failed job with its log line.
    assert snap_compare(app_for(world), terminal_size=size, run_before=run("v"))


NARROW = {  # each screen at 80x24, as reached from the clusters screen
    "clusters": (),
    "timeline": ("enter",),
    "review": ("v",),
}


@pytest.mark.parametrize("screen", list(NARROW))
def test_80_columns_without_colour(
    world: Path, snap_compare: Any, monkeypatch: pytest.MonkeyPatch, screen: str
) -> None:
    """NO_COLOR at 80 columns: the columns that stay read as words and glyphs alone, the
    folded ones on the line under the table."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(world)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=run(*NARROW[screen]))
