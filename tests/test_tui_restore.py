"""The restore wizard driven by Textual's pilot: real S3 (moto), real PostgreSQL targets."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from textual.widgets import Input, OptionList, Static

from services.catalog import Catalog
from services.config import load_config
from tests.conftest import held_mid_copy, seed, storage_config, table_digests
from tui.app import PgdeckApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.restore import RestoreScreen

UID = "0c300000-0000-4000-8000-000000000003"
T = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
KEY = f"spilo/acid-shop/{UID}/logical_backups/{T}.sql.gz"


def catalog(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    target: Any,
    dump: bytes,
    *,
    prod: str = "host=127.0.0.1 port=9 user=postgres connect_timeout=2",
) -> Catalog:
    """``staging`` is the test server; ``prod`` another server (by default one that does
    not answer): a production target is known by its server, not by its name."""
    seed(bucket, {KEY: gzip.compress(dump)})
    config = storage_config(
        tmp_path,
        bucket,
        endpoint,
        targets={
            "staging": {"dsn": target.dsn()},
            "prod": {"dsn": prod, "production": True},
        },
    )
    return Catalog(load_config(config))


def databases(pg: Any) -> set[str]:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


async def open_wizard(pilot: Any) -> RestoreScreen:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("r")  # the cluster's latest backup
    await pilot.pause()
    assert isinstance(app.screen, RestoreScreen)
    return app.screen


async def choose_target(pilot: Any, screen: RestoreScreen, name: str) -> str:
    targets = screen.query_one("#targets", OptionList)
    targets.focus()
    targets.highlighted = targets.get_option_index(name)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return str(screen.query_one("#preflight", Static).render())


@pytest.mark.asyncio
async def test_whole_cluster_restore_through_the_wizard(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    source_pg: Any,
    source_dump: bytes,
) -> None:
    app = PgdeckApp(catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("enter")  # Next, focused: the backup is the one we want
        assert screen.step == 1
        findings = await choose_target(pilot, screen, "staging")
        assert "✓ target answers" in findings and "✓ superuser" in findings
        await pilot.press("ctrl+n")
        assert screen.step == 2
        await pilot.press("ctrl+n")  # the whole cluster, roles without passwords
        assert screen.step == 3
        summary = str(screen.query_one("#summary", Static).render())
        assert "the whole cluster" in summary and "no-passwords" in summary
        await pilot.press("ctrl+n")  # Restore
        assert screen.step == 4
        await app.workers.wait_for_complete()
        await pilot.pause()
        result = str(screen.query_one("#result", Static).render())
        assert "restore succeeded" in result, result
        assert "completeness passed" in result and "integrity passed" in result
        assert "report:" in result
        log = screen.query_one("#run-log")
        assert any("loaded shop." in line for line in log.lines)  # type: ignore[attr-defined]
        assert not screen.running
    for db in ("shop", "Ünïcode db"):
        assert table_digests(target_pg, db) == table_digests(source_pg, db)
    reports = list((tmp_path / "archive" / "restores").glob("*.md"))
    assert len(reports) == 1
    assert (
        "password" not in reports[0].read_text().lower()
        or target_pg.dsn() not in reports[0].read_text()
    )


@pytest.mark.asyncio
async def test_production_needs_its_name_typed_and_a_rename_restores_beside(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    source_pg: Any,
    source_dump: bytes,
) -> None:
    app = PgdeckApp(
        catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump, prod=target_pg.dsn())
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("ctrl+n")
        await choose_target(pilot, screen, "prod")
        await pilot.press("ctrl+n")
        await pilot.click("#chosen")
        box = screen.query_one("#databases", Input)
        assert not box.disabled
        box.value = "shop:shop_copy"
        await pilot.press("ctrl+n")
        assert screen.step == 3
        assert screen.query_one("#confirm-name", Input).display
        await pilot.press("ctrl+n")  # not typed: refused
        assert screen.step == 3 and not screen.running
        screen.query_one("#confirm-name", Input).value = "prod"
        await pilot.press("ctrl+n")
        assert screen.step == 4
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "restore succeeded" in str(screen.query_one("#result", Static).render())
    assert "shop_copy" in databases(target_pg) and "shop" not in databases(target_pg)
    assert table_digests(target_pg, "shop_copy") == table_digests(source_pg, "shop")


@pytest.mark.asyncio
async def test_escape_leaves_without_touching_anything_and_back_goes_back(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, source_dump: bytes
) -> None:
    before = databases(target_pg)
    app = PgdeckApp(catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("ctrl+n")
        await choose_target(pilot, screen, "staging")
        await pilot.press("ctrl+n", "ctrl+n")
        assert screen.step == 3
        await pilot.press("ctrl+b", "ctrl+b")
        assert screen.step == 1
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RestoreScreen)
        # A second leave queued before the first pop (a double Enter on Close, a key
        # repeat) must not pop the clusters screen, the app's first and only one left.
        again = await open_wizard(pilot)
        again.action_leave()
        again.action_leave()
        await pilot.pause()
        assert app.screen.query("#clusters") and len(app.screen_stack) == 1
    assert databases(target_pg) == before
    assert not (tmp_path / "archive" / "restores").exists()


@pytest.mark.asyncio
async def test_an_unreachable_target_is_shown_and_cannot_be_chosen(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, source_dump: bytes
) -> None:
    app = PgdeckApp(catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("ctrl+n")
        targets = screen.query_one("#targets", OptionList)
        targets.focus()
        targets.highlighted = targets.option_count - 1  # a DSN typed in
        await pilot.pause()
        dsn = screen.query_one("#dsn", Input)
        assert dsn.display
        dsn.value = "host=127.0.0.1 port=1 user=postgres password=sekrit-pw"
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        findings = str(screen.query_one("#preflight", Static).render())
        assert "cannot connect" in findings and "sekrit-pw" not in findings
        await pilot.press("ctrl+n")
        assert screen.step == 1  # refused: it did not pass its checks


@pytest.mark.asyncio
async def test_quitting_during_a_restore_asks_first(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, source_dump: bytes
) -> None:
    app = PgdeckApp(catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        screen.running = True  # as while the engine's worker runs
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and app.is_running
        screen.running = False
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
async def test_a_signal_during_a_wizard_restore_cancels_it_archives_the_report_and_exits(
    sig: signal.Signals,
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    target_pg: Any,
    source_dump: bytes,
) -> None:
    # The download stalls inside the orders rows: the restore waits there, mid-COPY.
    obj, stall = held_mid_copy(source_dump)
    app = PgdeckApp(catalog(tmp_path, bucket, stalling_s3.url, target_pg, source_dump))
    seed(bucket, {KEY: obj})
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{KEY}".encode())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("ctrl+n")
        await choose_target(pilot, screen, "staging")
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")
        assert screen.step == 4 and screen.running
        for _ in range(1200):
            if "public.orders" in str(screen.query_one("#run-status", Static).render()):
                break
            assert screen.running, "the restore ended before the signal could land mid-COPY"
            await pilot.pause(0.05)
        os.kill(os.getpid(), sig)  # a real signal, to this process: the app's handler takes it
        for _ in range(600):  # the app exits by itself once the report is archived
            if not app.is_running:
                break
            await asyncio.sleep(0.05)
        assert not app.is_running
    assert app.return_code == 128 + sig.value
    [report] = [
        json.loads(p.read_text()) for p in (tmp_path / "archive" / "restores").glob("*.json")
    ]
    assert report["status"] == "cancelled" and report["databases_incomplete"] == ["shop"]
    with psycopg.connect(target_pg.dsn("shop"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.orders").fetchone() == (0,)


@pytest.mark.asyncio
async def test_a_burst_of_restore_events_arrives_merged_each_event_once_in_order() -> None:
    import threading

    from textual.app import App, ComposeResult
    from textual.widget import Widget

    from services.restore_events import RestoreLog
    from tui.messages import RestoreProgressed

    class Sink(Widget):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[Any]] = []

        def on_restore_progressed(self, message: RestoreProgressed) -> None:
            self.batches.append(list(message.events))

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Sink()

    events = [RestoreLog("info", f"line {i}", "server") for i in range(500)]
    app = Host()
    async with app.run_test() as pilot:
        sink = app.query_one(Sink)

        def burst() -> None:  # as the restore worker posts them, one by one
            for event in events:
                sink.post_message(RestoreProgressed([event]))

        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        await pilot.pause()
        assert [e for batch in sink.batches for e in batch] == events
        assert len(sink.batches) < len(events)


@pytest.mark.asyncio
async def test_at_80x24_the_live_log_keeps_a_readable_height_after_the_run(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    source_dump: bytes,
) -> None:
    app = PgdeckApp(catalog(tmp_path, bucket, s3_endpoint, target_pg, source_dump))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_wizard(pilot)
        await pilot.press("enter")
        await choose_target(pilot, screen, "staging")
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+n")  # Restore
        assert screen.step == 4
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "restore succeeded" in str(screen.query_one("#result", Static).render())
        log = screen.query_one("#run-log")
        assert log.region.height >= 7  # 5 lines inside its border
        assert screen.query_one("#result").region.height >= 1  # and the result is on screen
