"""Columns chosen by the width: at 80 columns each screen keeps what answers "is my backup
fresh and good" and says the rest on a line; at 120 the folded columns come back.

The world is the snapshots' (four clusters, a frozen clock); the screens are read as text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Static

from tests.test_tui_snapshots import app_for, settle, world
from widgets.cluster_table import ClusterTable
from widgets.fitting_table import FittingTable
from widgets.folding_table import Column, FoldingTable, choose

__all__ = ["world"]  # the snapshots' world, a fixture used here too

ALWAYS = ("name", "health", "age", "size", "trend")


def header(table: FoldingTable) -> str:
    return table.render_line(0).text


def plain(widget: Static) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


def scrolls_sideways(table: FittingTable) -> bool:
    return table.virtual_size.width > table.scrollable_content_region.width


@pytest.mark.asyncio
async def test_at_80_columns_the_clusters_keep_freshness_and_the_line_says_the_rest(
    world: Path,
) -> None:
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ClusterTable)
        assert set(ALWAYS) <= set(table.column_keys)
        assert not {"namespace", "team", "version", "status", "backups"} & set(table.column_keys)
        assert not scrolls_sideways(table)
        assert all(word in header(table) for word in ("Name", "Health", "Last", "Size", "Sizes"))
        key = "manifests:manifests/shop/acid-orders"
        assert str(table.get_cell(key, "name")) == "shop/acid-orders"  # the namespace lives on
        assert table.selected_key() == key
        line = plain(app.screen.query_one("#selected", Static))
        assert "acid-orders: last backup an hour ago" in line and "next run" in line
        for folded in ("team acid", "PG 15", "Running", "backups on 0 * * * *", "357 stored"):
            assert folded in line
        await pilot.press("down")
        await settle(pilot)
        line = plain(app.screen.query_one("#selected", Static))
        assert "acid-billing" in line and "backups on 30 1 * * *" in line and "20 stored" in line

        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        keys = table.column_keys
        assert {"namespace", "team", "version", "status", "count", *ALWAYS} <= set(keys)
        assert str(table.get_cell("manifests:manifests/finance/acid-billing", "name")) == (
            "acid-billing"
        )
        assert table.selected_key() == "manifests:manifests/finance/acid-billing"  # kept
        line = plain(app.screen.query_one("#selected", Static))
        assert "team acid" not in line and "20 stored" not in line

        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert table.selected_key() == "manifests:manifests/finance/acid-billing"
        assert "team acid" in plain(app.screen.query_one("#selected", Static))


@pytest.mark.asyncio
async def test_at_80_columns_the_timeline_keeps_time_age_size_sse_and_note(world: Path) -> None:
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        table = app.screen.query_one("#backups", FoldingTable)
        shown = [c.key for c in table.shown]
        assert {"local", "age", "size", "sse", "note"} <= set(shown)
        assert "uid" not in shown and not scrolls_sideways(table)
        assert all(w in header(table) for w in ("Local time", "Age", "Size", "SSE", "Note"))
        folded = app.screen.query_one("#folded", Static)
        assert folded.display and "uid 0d400000" in plain(folded)

        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert [c.key for c in table.shown] == [c.key for c in table.declared]
        assert not folded.display


@pytest.mark.asyncio
async def test_at_80_columns_the_review_reads_without_scrolling_sideways(world: Path) -> None:
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        checklist = screen.query_one("#checklist", FittingTable)
        findings = screen.query_one("#findings", FoldingTable)
        assert "shop/acid-orders" in checklist.render_line(1).text
        assert not scrolls_sideways(checklist) and not scrolls_sideways(findings)
        first = findings.render_line(1).text
        assert "critical" in first and "near-empty: 700 Bytes" in first and "…" in first
        detail = plain(screen.query_one("#detail", Static))  # the finding's words, whole
        assert detail.startswith("shop/acid-orders near-empty: 700 Bytes")
        assert "median of 516.2 KiB" in detail

        await pilot.resize_terminal(160, 40)
        await settle(pilot)
        assert "…" not in findings.render_line(1).text and not findings.squeezed


def test_columns_fold_lowest_first_and_the_squeezed_one_is_cut_before_any_folds() -> None:
    cols = (
        Column("ns", "NS", fold=2, into="name"),
        Column("name", "Name"),
        Column("team", "Team", fold=1),
        Column("words", "Words", squeeze=5),
    )
    widest = {"ns": 4, "name": 6, "team": 4, "words": 20}
    # Every column: 6 + 8 + 6 + 22 = 42 cells with two of padding each.
    assert choose(cols, widest, 42).shown == ("ns", "name", "team", "words")
    cut = choose(cols, widest, 30)  # the words cut to 8, nothing folds
    assert cut.shown == ("ns", "name", "team", "words") and cut.squeezed == 8
    folded = choose(cols, widest, 24)  # the team folds; the words get what is left
    assert folded.shown == ("ns", "name", "words") and folded.squeezed == 8
    prefixed = choose(cols, widest, 20)  # the namespace becomes the name's prefix
    assert prefixed.shown == ("name", "words") and prefixed.squeezed == 5 and prefixed.prefixed
    bare = choose(cols, widest, 18)  # too narrow even so: the prefix goes to the line
    assert bare.shown == ("name", "words") and not bare.prefixed and bare.squeezed == 8


@pytest.mark.asyncio
async def test_at_80_columns_a_wide_clusters_table_keeps_the_newest_sizes() -> None:
    """The demo's clusters at 80x24: long names, a restore tests' mark, "47 minutes ago";
    the namespace leaves the name for the line, and the sparkline keeps its newest end."""
    from services.marks import RestoreTestMark
    from tests.test_widgets import Host, row
    from tui import glyphs
    from widgets.glyph import Glyph

    table = ClusterTable()
    async with Host(table).run_test(size=(80, 24)) as pilot:
        sizes, ago = tuple(range(1, 17)), "47 minutes ago"
        table.set_rows(
            [
                row(1, namespace="finance", name="acid-billing", sizes=sizes, age=ago),
                row(2, namespace="shop", name="acid-inventory", sizes=sizes, age=ago),
                row(3, health=Glyph("!", "missing 12")),
            ]
        )
        table.set_marks({"ctx/ns/acid-0001": glyphs.restore_test(RestoreTestMark.FAILED)})
        await pilot.pause()
        await pilot.pause()
        assert set(ALWAYS) | {"test"} <= set(table.column_keys)
        assert not scrolls_sideways(table)
        assert str(table.get_cell("ctx/ns/acid-0002", "name")) == "acid-inventory"
        trend = str(table.get_cell("ctx/ns/acid-0002", "trend"))
        assert 8 <= len(trend) < 16 and trend.endswith("█")  # the newest, the largest
        line = table.folded_line("ctx/ns/acid-0002", sep=", ").plain
        assert line.startswith("namespace shop, team acid")


@pytest.mark.asyncio
async def test_at_80_columns_the_jobs_tab_cuts_the_reason_and_says_it_under_the_table(
    world: Path,
) -> None:
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")  # acid-billing: its last job failed
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)
        jobs = app.screen.query_one("#jobs", FoldingTable)
        assert not scrolls_sideways(jobs)
        assert all(w in header(jobs) for w in ("Job", "Status", "Started"))
        row = jobs.render_line(1).text
        assert "failed" in row and "BackoffLimitExceeded" not in row and "…" in row
        line = plain(app.screen.query_one("#job-folded", Static))
        assert "BackoffLimitExceeded" in line

        await pilot.resize_terminal(160, 40)
        await settle(pilot)
        assert "BackoffLimitExceeded" in jobs.render_line(1).text
        assert not app.screen.query_one("#job-folded", Static).display


@pytest.mark.asyncio
async def test_at_80_columns_the_evidence_cuts_its_detail_and_says_it_whole(
    world: Path,
) -> None:
    app = app_for(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        screen = app.screen
        checklist = screen.query_one("#checklist", FittingTable)
        billing = next(k.value for k in checklist.rows if "acid-billing" in str(k.value))
        checklist.move_cursor(row=checklist.get_row_index(billing))
        await settle(pilot)
        findings = screen.query_one("#findings", FoldingTable)
        failed = next(
            n for n, k in enumerate(findings.rows) if "job" in str(findings.get_row(k)).lower()
        )
        findings.move_cursor(row=failed)
        await settle(pilot)
        evidence = screen.query_one("#evidence", FoldingTable)
        assert evidence.row_count and not scrolls_sideways(evidence)
        key = evidence.selected_key()
        whole = evidence.cells_of(key)["detail"]
        assert isinstance(whole, Text) and whole.cell_len > 16  # too wide for 80 columns
        assert whole.plain not in evidence.render_line(1).text
        assert plain(screen.query_one("#evidence-folded", Static)) == whole.plain

        await pilot.resize_terminal(200, 40)
        await settle(pilot)
        assert whole.plain in evidence.render_line(1).text
        # Shown whole, it is not said again (another row, a long log line, may still be cut).
        line = screen.query_one("#evidence-folded", Static)
        assert not line.display or plain(line) == ""
