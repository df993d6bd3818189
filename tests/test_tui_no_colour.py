"""Without colour (``NO_COLOR``) every state reads from a sign, a word or a text style.

Each test reads what the screen shows (its text, or a text style such as reverse video,
never a colour) and tells a state from its opposite; the snapshots at 80x24 are the
wizard's steps and a review dialog as a monochrome terminal shows them. The world is the
snapshot tests' own (fixed manifests, a file:// store, a pinned clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.app import App, ComposeResult
from textual.widgets import Button, DataTable, Input, OptionList, Static, Tab

from tests.conftest import write_config
from tests.test_tui_snapshots import app_for, run, settle
from tests.test_tui_snapshots import world as world  # the snapshot tests' fixture, shared
from tui.app import PgdeckApp
from widgets.marked_options import MarkedOptionList
from widgets.size_sparkline import SizeSparkline


@pytest.fixture
def scene(world: Path) -> Path:
    """The snapshot tests' world: its config file."""
    return world


@pytest.fixture(autouse=True)
def no_colour(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("NO_COLOR", "1")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def screen_text(app: App[Any]) -> str:
    """The screen as a terminal shows it, without any style."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def line_with(app: App[Any], text: str) -> str:
    return next(line for line in screen_text(app).splitlines() if text in line)


ATTRIBUTES = ("bold", "italic", "reverse", "underline")


def styles_of(app: App[Any], text: str) -> set[str]:
    """The text styles (bold, reverse, ...) the screen draws the first cell of ``text`` with."""
    for strip in app.screen._compositor.render_strips():
        at = strip.text.find(text)
        if at < 0:
            continue
        for segment in strip:
            if at < len(segment.text):
                style = segment.style
                return {a for a in ATTRIBUTES if style is not None and getattr(style, a)}
            at -= len(segment.text)
    raise AssertionError(f"{text!r} is not on the screen:\n{screen_text(app)}")


async def wizard_at_target(app: PgdeckApp, pilot: Any) -> None:
    await run("r", "ctrl+n")(pilot)
    assert app.no_color


# --- widgets -------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_the_size_sparkline_draws_without_colour_before_it_has_values() -> None:
    """Textual's NO_COLOR filter failed on the empty sparkline's unstyled line, so the
    timeline crashed on opening before its backups were read."""

    class Spark(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("sizes")
            yield SizeSparkline(id="spark")

    app = Spark()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        assert app.no_color and app.return_code is None
        assert screen_text(app).splitlines()[:4] == ["sizes".ljust(40), *[" " * 40] * 3]


@pytest.mark.asyncio
async def test_the_highlighted_option_is_marked_by_a_sign() -> None:
    class Options(App[None]):
        def compose(self) -> ComposeResult:
            yield MarkedOptionList("staging", "demo-local", "a DSN typed in below", id="opts")

    app = Options()
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.pause()
        assert "▸ staging" in line_with(app, "staging")
        assert "▸" not in line_with(app, "demo-local")
        await pilot.press("down")
        assert "▸" not in line_with(app, "staging")
        assert "▸ demo-local" in line_with(app, "demo-local")
        assert app.query_one(OptionList).highlighted_option.prompt == "demo-local"  # type: ignore[union-attr]


# --- the console ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_the_wizard_marks_its_steps_done_here_and_to_come(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await run("r")(pilot)
        assert "▸ 1 Backup  ›    2 Target" in line_with(app, "1 Backup")
        await pilot.press("ctrl+n")
        await settle(pilot)
        steps = line_with(app, "1 Backup")
        assert "✓ 1 Backup  ›  ▸ 2 Target  ›    3 Scope" in steps
        assert "▸ 1" not in steps


@pytest.mark.asyncio
async def test_a_focused_field_draws_a_heavy_border(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await wizard_at_target(app, pilot)
        assert isinstance(app.focused, OptionList)
        assert line_with(app, "staging").lstrip().startswith("┃ ▸ staging")
        assert "━━━" not in line_with(app, "Next").replace(" ", "")  # the button's own line
        app.set_focus(app.screen.query_one("#next", Button))
        await pilot.pause()
        assert line_with(app, "staging").lstrip().startswith("▊ ▸ staging")
        nav = screen_text(app).splitlines()
        at = next(i for i, line in enumerate(nav) if "Next" in line and "^n" not in line)
        assert "━━━━" in nav[at - 1] and "━━━━" in nav[at + 1]


@pytest.mark.asyncio
async def test_a_placeholder_does_not_read_as_typed_text(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await wizard_at_target(app, pilot)
        await pilot.press("down", "enter")  # a DSN typed in below
        await settle(pilot)
        dsn = app.screen.query_one("#dsn", Input)
        assert dsn.display and dsn.value == ""
        assert "italic" in styles_of(app, "host=... port=5432")
        dsn.value = "host=db.example port=5432"  # a password field: drawn as dots
        await pilot.pause()
        assert "host=..." not in screen_text(app)
        assert "italic" not in styles_of(app, "•••")


@pytest.mark.asyncio
async def test_a_disabled_field_draws_a_dashed_border(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await _at_step(2)(pilot)
        databases = app.screen.query_one("#databases", Input)
        assert databases.disabled
        lines = screen_text(app).splitlines()
        at = next(i for i, line in enumerate(lines) if "databases: orders" in line)
        assert "╍╍╍" in lines[at - 1] and "╏" in lines[at]
        await pilot.click("#chosen")
        await settle(pilot)
        assert not databases.disabled
        lines = screen_text(app).splitlines()
        at = next(i for i, line in enumerate(lines) if "databases: orders" in line)
        assert "╍" not in lines[at - 1] and "╏" not in lines[at]


@pytest.mark.asyncio
async def test_the_table_cursor_and_the_active_tab_are_in_reverse_video(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await run()(pilot)
        table = app.screen.query_one(DataTable)
        assert table.cursor_row == 0
        assert "reverse" in styles_of(app, "acid-orders")
        assert "reverse" not in styles_of(app, "acid-billing")
        await pilot.press("down")
        assert "reverse" in styles_of(app, "acid-billing")
        assert "reverse" not in styles_of(app, "acid-orders")
        await run("enter")(pilot)  # the timeline: the Backups tab is the active one
        assert app.screen.query_one("Tab.-active", Tab).label_text == "Backups"
        assert "reverse" in styles_of(app, "Backups")
        assert "reverse" not in styles_of(app, "Coverage")


@pytest.mark.asyncio
async def test_the_focused_table_is_told_from_the_others_by_its_cursor(scene: Path) -> None:
    """The review's checklist and findings both have a cursor row: the focused table's is
    in reverse video, the other's underlined."""
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await run("v")(pilot)
        checklist = app.screen.query_one("#checklist", DataTable)
        findings = app.screen.query_one("#findings", DataTable)
        assert app.focused is checklist
        first = str(checklist.get_row_at(0)[0])
        finding = str(findings.get_row_at(0)[1])
        assert {"reverse"} <= styles_of(app, first) and "underline" not in styles_of(app, first)
        assert {"underline"} <= styles_of(app, finding) and "reverse" not in styles_of(app, finding)
        app.set_focus(findings)
        await pilot.pause()
        assert {"underline"} <= styles_of(app, first) and "reverse" not in styles_of(app, first)
        assert {"reverse"} <= styles_of(app, finding)


@pytest.mark.asyncio
async def test_a_notification_says_its_severity_in_words(scene: Path) -> None:
    """A toast's severity was its colour alone: an error's and a warning's title say it."""
    app = app_for(scene)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await run()(pilot)
        app.notify("storage answered 403 for acid-orders", severity="error")
        app.notify("acid-legacy has no backup to restore", severity="warning")
        app.notify("restore succeeded in 12.0 s")
        app.notify("the refresh failed", title="catalog", severity="error")
        await pilot.pause()
        text = screen_text(app)
        assert "✗ error" in text and "! warning" in text and "✗ error: catalog" in text
        assert "restore succeeded" in text
        toasts = text[text.index("✗ error") :]
        assert toasts.count("✗ error") == 2 and toasts.count("! warning") == 1


# --- snapshots at 80x24 --------------------------------------------------------------------
def _at_step(step: int) -> Any:
    async def before(pilot: Any) -> None:
        await run("r")(pilot)
        screen = pilot.app.screen
        screen.step = step  # as the step looks once a target passed its checks
        screen._show_step()
        await settle(pilot)

    return before


# The steps that show no path of the test's own (the backup and confirm steps show the
# store's, which moves with pytest's temporary directory).
@pytest.mark.parametrize("step", [1, 2], ids=["target", "scope"])
def test_restore_wizard_without_colour(scene: Path, snap_compare: Any, step: int) -> None:
    app = app_for(scene)
    assert app.no_color
    before = run("r", "ctrl+n") if step == 1 else _at_step(2)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_review_sign_off_without_colour(
    scene: Path, snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dialog names the archive: a fixed path, never written (the dialog stays open),
    so that the snapshot does not move with pytest's temporary directory; and the reviewer,
    whoever runs the tests."""
    monkeypatch.setenv("PGDECK_USER", "oncall")
    config = yaml.safe_load(scene.read_text())
    config["archive"] = "/srv/pgdeck/archive"
    fixed = write_config(tmp_path / "config.yaml", config)

    async def before(pilot: Any) -> None:
        await run("v", "s")(pilot)
        # A blinking cursor would be caught shown or hidden as the machine is loaded.
        pilot.app.screen.query_one("#reviewer", Input).cursor_blink = False
        await settle(pilot)

    assert snap_compare(app_for(fixed), terminal_size=(80, 24), run_before=before)
    assert not Path(config["archive"]).exists()


def test_red_text_keeps_its_contrast_without_colour() -> None:
    """Textual's grey of red is a shade from the dark background: a failure's sign and word
    are lifted to the text grey; muted text and the lines that blend in keep theirs."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.color import Color
    from textual.filter import Monochrome

    from tui.monochrome import ReadableMonochrome

    dark = Color(30, 30, 30)

    def greys(f: Monochrome, text: str, style: str) -> int:
        (segment,) = f.apply([Segment(text, Style.parse(style))], dark)
        assert segment.style is not None and segment.style.color is not None
        return Color.from_rich_color(segment.style.color).r

    assert greys(Monochrome(), "✗ failed", "bold red") - dark.r < 64  # Textual's own
    assert greys(ReadableMonochrome(), "✗ failed", "bold red") - dark.r >= 64
    assert greys(ReadableMonochrome(), "4 critical", "#ff0000 on #1e1e1e") - dark.r >= 64
    muted = greys(Monochrome(), "24 Nov 07:23", "#909090")
    assert greys(ReadableMonochrome(), "24 Nov 07:23", "#909090") == muted
    assert greys(ReadableMonochrome(), "▐▌━━", "red") == greys(Monochrome(), "▐▌━━", "red")


@pytest.mark.asyncio
async def test_a_failing_check_reads_without_colour(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await wizard_at_target(app, pilot)
        assert line_with(app, "cannot connect").startswith(" ✗ target")
        for strip in app.screen._compositor.render_strips():
            if "cannot connect" in strip.text:
                (fg,) = {s.style.color for s in strip if s.text.strip() and s.style}
                (bg,) = {s.style.bgcolor for s in strip if s.text.strip() and s.style}
                assert abs(fg.get_truecolor().red - bg.get_truecolor().red) >= 64


@pytest.mark.asyncio
async def test_the_command_palette_underlines_its_highlighted_command(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await run()(pilot)
        await pilot.press("ctrl+p")
        await run()(pilot)
        palette = app.screen.query_one("CommandList", OptionList)
        for _ in range(50):  # the commands are gathered in the palette's own worker
            if palette.option_count >= 2:
                break
            await pilot.pause(0.05)
        first, second = (str(palette.get_option_at_index(i).prompt) for i in (0, 1))
        first, second = first.splitlines()[0].strip(), second.splitlines()[0].strip()
        assert palette.highlighted == 0
        assert "underline" in styles_of(app, first)
        assert "underline" not in styles_of(app, second)
        await pilot.press("down")
        await run()(pilot)
        assert "underline" in styles_of(app, second)
        assert "underline" not in styles_of(app, first)


def contrast_of(app: App[Any], text: str) -> int:
    """How far apart, on the 0-255 grey scale, the letters of ``text``'s line are from
    their background (one colour each, as a line of the console has)."""
    for strip in app.screen._compositor.render_strips():
        if text in strip.text:
            cells = [s for s in strip if text in s.text and s.style]
            (fg,) = {s.style.color for s in cells}
            bg = {s.style.bgcolor for s in cells}.pop()
            return abs(fg.get_truecolor().red - bg.get_truecolor().red)
    raise AssertionError(f"{text!r} is not on the screen:\n{screen_text(app)}")


@pytest.mark.asyncio
async def test_a_bad_number_of_sessions_reads_without_colour(scene: Path) -> None:
    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await _at_step(2)(pilot)
        assert "Data sessions:" in line_with(app, "one session loads everything")
        app.screen.query_one("#jobs", Input).value = "0"
        await settle(pilot)
        line = line_with(app, "expected a whole number")
        assert "Data sessions:" in line and "✗ expected a whole number from 1 to 64" in line
        assert contrast_of(app, "✗ expected a whole number") >= 64


@pytest.mark.asyncio
async def test_the_data_sessions_of_a_run_read_without_colour(scene: Path) -> None:
    from services.restore_events import RestoreProgress, SessionProgress
    from tui.messages import RestoreProgressed

    app = app_for(scene)
    async with app.run_test(size=(80, 24)) as pilot:
        await _at_step(4)(pilot)
        screen = app.screen
        screen.jobs = 3  # as the scope step left it; the events as a --jobs 3 run sends
        sessions = (SessionProgress(1, "public.orders", 450, 1000),)
        screen.post_message(
            RestoreProgressed(
                [RestoreProgress(5 << 20, 50 << 20, 0, 1e6, 40.0, "app", "x.y", 1, sessions)]
            )
        )
        await settle(pilot)
        assert line_with(app, "public.orders").startswith(" ▸ session 1  public.orders 45%")
        assert line_with(app, "idle").startswith(" · 2 of 3 sessions idle")
        assert contrast_of(app, "session 1") >= 64
