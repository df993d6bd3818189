"""The wizard's data sessions (``--jobs N``, issue 16): the scope step's field, the summary,
the run on that many sessions and each session's progress while it runs. Real S3 (moto),
real PostgreSQL targets, as the other wizard tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from services.catalog import Catalog
from services.config import load_config
from services.restore_events import RestoreProgress, SessionProgress
from tests.conftest import held_mid_copy, seed, storage_config, table_digests
from tests.test_tui_restore import KEY, choose_target, open_wizard
from tui.app import PgdeckApp
from tui.restore_view import session_lines, sessions_text
from tui.screens.restore import RestoreScreen


def catalog(
    tmp_path: Path, bucket: str, endpoint: str, target: Any, obj: bytes, jobs: int
) -> Catalog:
    seed(bucket, {KEY: obj})
    config = storage_config(
        tmp_path,
        bucket,
        endpoint,
        targets={"staging": {"dsn": target.dsn()}},
        restore={"jobs": jobs},
    )
    return Catalog(load_config(config))


async def at_scope(pilot: Any) -> RestoreScreen:
    screen = await open_wizard(pilot)
    await pilot.press("ctrl+n")
    await choose_target(pilot, screen, "staging")
    await pilot.press("ctrl+n")
    assert screen.step == 2
    return screen


def note(screen: RestoreScreen) -> str:
    return str(screen.query_one("#jobs-note", Static).render())


def reports(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (tmp_path / "archive" / "restores").glob("*.json")]


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["0", "65", "", "100"])
async def test_a_bad_number_of_sessions_is_said_on_the_field_and_refused(
    bad: str,
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    source_dump: bytes,
) -> None:
    app = PgdeckApp(
        catalog(tmp_path, bucket, s3_endpoint, target_pg, gzip.compress(source_dump), 1)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_scope(pilot)
        field = screen.query_one("#jobs", Input)
        field.value = bad
        await pilot.pause()
        assert "✗ expected a whole number from 1 to 64" in note(screen)
        assert field.has_class("-invalid")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert screen.step == 2 and not screen.running  # refused, nothing started
        assert screen.focused is field  # the field to mend, in view
        assert field.region.height and field.region.y < 24
        shown = [str(n.message) for n in app._notifications]
        assert any("data sessions: expected a whole number from 1 to 64" in m for m in shown)
        field.value = "2"
        await pilot.pause()
        assert "✗" not in note(screen) and not field.has_class("-invalid")
        await pilot.press("ctrl+n")
        assert screen.step == 3
    assert not (tmp_path / "archive" / "restores").exists()


@pytest.mark.asyncio
async def test_the_field_only_takes_digits(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, source_dump: bytes
) -> None:
    app = PgdeckApp(
        catalog(tmp_path, bucket, s3_endpoint, target_pg, gzip.compress(source_dump), 1)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_scope(pilot)
        field = screen.query_one("#jobs", Input)
        field.focus()
        field.value = ""
        await pilot.press("x", "-", "3", ".", "2")
        assert field.value == "32"
        assert "32 sessions load table data at once" in note(screen)


@pytest.mark.asyncio
async def test_the_sessions_default_to_the_config_show_in_the_summary_and_run(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    target_pg: Any,
    source_pg: Any,
    source_dump: bytes,
) -> None:
    app = PgdeckApp(
        catalog(tmp_path, bucket, s3_endpoint, target_pg, gzip.compress(source_dump), 3)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_scope(pilot)
        field = screen.query_one("#jobs", Input)
        assert field.value == "3"  # restore.jobs
        assert "3 sessions load table data at once" in note(screen)
        field.value = "2"
        await pilot.press("ctrl+n")
        assert screen.step == 3
        summary = str(screen.query_one("#summary", Static).render())
        assert "sessions 2 loading table data at once" in summary
        await pilot.press("ctrl+n")  # Restore
        assert screen.step == 4
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "restore succeeded" in str(screen.query_one("#result", Static).render())
        log = list(screen.query_one("#run-log").lines)  # type: ignore[attr-defined]
        assert any("of 2 data sessions" in line for line in log), log
        assert not screen.query_one("#sessions").display  # the run is over
    assert [r["status"] for r in reports(tmp_path)] == ["succeeded"]
    for db in ("shop", "Ünïcode db"):
        assert table_digests(target_pg, db) == table_digests(source_pg, db)


@pytest.mark.asyncio
async def test_one_session_shows_no_session_lines(
    tmp_path: Path, bucket: str, s3_endpoint: str, target_pg: Any, source_dump: bytes
) -> None:
    app = PgdeckApp(
        catalog(tmp_path, bucket, s3_endpoint, target_pg, gzip.compress(source_dump), 2)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_scope(pilot)
        screen.query_one("#jobs", Input).value = "1"
        await pilot.press("ctrl+n")
        assert "1 (everything on one session)" in str(screen.query_one("#summary").render())
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        log = list(screen.query_one("#run-log").lines)  # type: ignore[attr-defined]
        assert not any("data sessions" in line for line in log), log
        assert not screen.query_one("#sessions").display


@pytest.mark.asyncio
async def test_each_data_session_shows_its_table_while_a_two_session_restore_runs(
    tmp_path: Path,
    bucket: str,
    stalling_s3: Any,
    target_pg: Any,
    source_dump: bytes,
) -> None:
    # The download stalls inside the orders rows: a data session is held in that COPY.
    obj, stall = held_mid_copy(source_dump)
    app = PgdeckApp(catalog(tmp_path, bucket, stalling_s3.url, target_pg, obj, 2))
    stalling_s3.stall_after(stall, match=f"GET /{bucket}/{KEY}".encode())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await at_scope(pilot)
        await pilot.press("ctrl+n", "ctrl+n")
        assert screen.step == 4 and screen.running
        panel = screen.query_one("#sessions", Static)
        for _ in range(1200):
            if "public.orders" in str(panel.render()):
                break
            assert screen.running, "the restore ended before the orders rows"
            await pilot.pause(0.05)
        shown = str(panel.render())
        assert panel.display and panel.region.height >= 1
        assert "▸ session" in shown and "public.orders" in shown, shown
        # The status line names the table being read, not the sessions again.
        assert "session" not in str(screen.query_one("#run-status", Static).render())
        assert screen.query_one("#run-log").region.height >= 7  # 5 lines of log at 80x24
        screen.cancel_now()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not panel.display
    assert [r["status"] for r in reports(tmp_path)] == ["cancelled"]


def test_sixty_four_sessions_fold_into_the_lines_there_are() -> None:
    busy = tuple(SessionProgress(i, f"public.t{i}", i * 1024, None) for i in range(1, 7))
    lines = session_lines(busy, 64, 4)
    assert len(lines) == 4 and all(loading for _, loading in lines)
    assert lines[0][0] == "session 1  public.t1 1.0 KiB"
    assert lines[3][0].startswith("+ 3 more loading: public.t4 ")
    some = session_lines(busy[:2], 64, 4)
    assert some[-1] == ("62 of 64 sessions idle", False) and len(some) == 3


def test_the_command_line_and_the_wizard_say_a_session_the_same_way() -> None:
    s = SessionProgress(2, "public.orders", 45, 100)
    p = RestoreProgress(1, 2, 3, 0.0, None, "shop", "public.orders", 7, (s,))
    assert sessions_text(p) == "1 session: public.orders 45%"
    assert session_lines((s,), 2, 4) == [
        ("session 2  public.orders 45%", True),
        ("1 of 2 sessions idle", False),
    ]
    # A table named as the idle line ends is still a session loading.
    named = SessionProgress(1, "public.idle", 0, None)
    assert session_lines((named,), 1, 4) == [("session 1  public.idle", True)]
