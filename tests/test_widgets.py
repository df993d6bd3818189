"""The reusable widgets, fed plain data in a bare app."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from services.marks import HealthMark
from tui import glyphs
from widgets.cluster_table import COLUMNS, ClusterRow, ClusterTable
from widgets.coverage_grid import CoverageGrid, GridDay
from widgets.size_sparkline import SizeSparkline
from widgets.sparkline_text import sparkline_against


def row(i: int, **kw: object) -> ClusterRow:
    base: dict = dict(
        key=f"ctx/ns/acid-{i:04d}",
        namespace="ns",
        name=f"acid-{i:04d}",
        team="acid",
        version="15",
        status="Running",
        backups="on 0 * * * *",
        count=i,
        age="an hour ago",
        size="1.0 MiB",
        health=glyphs.HEALTH[HealthMark.OK],
    )
    base.update(kw)
    return ClusterRow(**base)


class Host(App[None]):
    def __init__(self, widget: object) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget  # type: ignore[misc]


@pytest.mark.asyncio
async def test_many_rows_arrive_in_steps_and_end_sorted_and_merged() -> None:
    table = ClusterTable()
    async with Host(table).run_test(size=(120, 40)) as pilot:
        table.sort_by([c.key for c in COLUMNS].index("count"))
        table.set_rows([row(i) for i in range(1000, 0, -1)])
        assert table.row_count == ClusterTable.FIRST_ROWS and not table.complete
        for _ in range(50):
            if table.complete:
                break
            await pilot.pause()
        assert table.complete and table.row_count == 1000
        assert [str(table.get_row_at(i)[1]) for i in range(3)] == [
            "acid-0001",
            "acid-0002",
            "acid-0003",
        ]
        # A second merge: one row gone, one changed in place, none re-added.
        late, ok = glyphs.HEALTH[HealthMark.LATE], glyphs.HEALTH[HealthMark.OK]
        table.set_rows([row(i, health=late if i == 2 else ok) for i in range(2, 1001)])
        await pilot.pause()
        assert table.row_count == 999 and table.complete
        assert str(table.get_cell("ctx/ns/acid-0002", "health")) == "! late"


@pytest.mark.asyncio
async def test_a_narrower_table_folds_columns_keeping_cursor_sort_and_marks() -> None:
    from services.marks import RestoreTestMark

    table = ClusterTable()
    async with Host(table).run_test(size=(120, 20)) as pilot:
        table.set_rows([row(i) for i in range(5, 0, -1)])
        await pilot.pause()
        assert [c.key for c in table.shown] == [c.key for c in COLUMNS]  # all fit at 120
        table.sort_by(table.column_keys.index("name"))
        table.set_marks({"ctx/ns/acid-0003": glyphs.restore_test(RestoreTestMark.FAILED)})
        table.move_cursor(row=table.get_row_index("ctx/ns/acid-0003"))
        await pilot.resize_terminal(64, 20)
        await pilot.pause()
        keys = table.column_keys
        assert {"name", "health", "test", "age", "size", "trend"} <= set(keys)
        assert not {"namespace", "team", "version", "status", "backups"} & set(keys)
        assert table.selected_key() == "ctx/ns/acid-0003"
        assert str(table.get_cell("ctx/ns/acid-0003", "name")) == "ns/acid-0003"
        assert str(table.get_cell("ctx/ns/acid-0003", "test")) == "✗ failed"
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["ns/acid-0001", "ns/acid-0002"]
        table.sort_by(len(COLUMNS))  # an index of the wide layout: no column, nothing done
        table.resort()
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["ns/acid-0001", "ns/acid-0002"]
        sample = row(3, sizes=tuple(range(20)), health=glyphs.HEALTH[HealthMark.LATE])
        assert sample.widths() == {k: v.cell_len for k, v in sample.cells().items()}
        line = table.folded_line("ctx/ns/acid-0003", sep=", ").plain
        assert line == "team acid, PG 15, Running, backups on 0 * * * *, 3 stored"
        await pilot.resize_terminal(120, 20)
        await pilot.pause()
        assert table.column_keys[:4] == ("namespace", "name", "health", "test")
        assert table.selected_key() == "ctx/ns/acid-0003" and not table.folded


@pytest.mark.asyncio
async def test_the_sparkline_cursor_and_its_scaling() -> None:
    spark = SizeSparkline()
    async with Host(spark).run_test(size=(40, 5)) as pilot:
        values = [1000 + i for i in range(100)] + [10]  # growth, then a near-empty backup
        spark.set_values(values, cursor=len(values) - 1)
        await pilot.pause()
        lines = [spark.render_line(y).text for y in range(3)]
        assert lines[2][-1] == "▁"  # the dip is the lowest eighth, alone
        assert "█" in lines[0]  # the largest reach the top
        cols, cursor = spark._columns(40)
        assert len(cols) == 40 and cursor == 39


@pytest.mark.asyncio
async def test_the_coverage_grid_counts_and_draws_each_state() -> None:
    grid = CoverageGrid(glyphs.COVERAGE, glyphs.COVERAGE_LEGEND)
    async with Host(grid).run_test(size=(80, 10)) as pilot:
        cells = ("present",) * 20 + ("missing", "unusual", "pending", "none")
        grid.set_days([GridDay("Fri 20 Nov", cells)], caption="UTC hours")
        await pilot.pause()
        assert grid.counts() == {"present": 20, "missing": 1, "unusual": 1, "pending": 1, "none": 1}
        text = grid.render().plain
        assert "✗" in text and "▲" in text and "…" in text and "missing 1" in text


@pytest.mark.asyncio
async def test_the_footer_rebuilds_only_when_its_keys_change() -> None:
    from textual.binding import Binding
    from textual.widgets import Input

    from widgets.key_footer import KeyFooter

    class Keys(App[None]):
        BINDINGS = [Binding("x", "extra", "Extra"), Binding("z", "zap", "Zap")]
        allow_zap = True

        def compose(self) -> ComposeResult:
            yield ClusterTable(id="t")
            yield Input(id="i")
            yield KeyFooter()

        def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
            if action == "zap" and not self.allow_zap:
                return None  # shown, but disabled
            return True

        def action_extra(self) -> None:
            pass

        def action_zap(self) -> None:
            pass

    app = Keys()
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        footer = app.query_one(KeyFooter)
        shown = [k.description for k in footer.query("FooterKey")]
        assert "Extra" in shown and "Zap" in shown
        built = footer.rebuilds
        app.refresh_bindings()  # the same keys again: nothing rebuilt
        app.query_one("#t").focus()
        await pilot.pause()
        assert footer.rebuilds == built
        app.allow_zap = False  # a key's state changes: rebuilt, and shown disabled
        app.refresh_bindings()
        await pilot.pause()
        assert footer.rebuilds == built + 1
        zap = next(k for k in footer.query("FooterKey") if k.description == "Zap")
        assert zap.has_class("-disabled")


def test_every_mark_of_services_is_drawn_by_one_glyph() -> None:
    from services.marks import CheckMark, CoverageCell, Severity

    assert set(glyphs.CHECK) == set(CheckMark)
    assert set(glyphs.HEALTH) == set(HealthMark)
    assert set(glyphs.COVERAGE) == set(CoverageCell)
    assert all(glyphs.severity(s).word == s for s in Severity)
    assert all(
        g.word == m
        for table in (glyphs.CHECK, glyphs.HEALTH, glyphs.COVERAGE)
        for m, g in table.items()
    )


def test_a_sparkline_against_an_objective_reads_without_colour() -> None:
    text = sparkline_against([None, 0.0, 1800.0, 3600.0, 3601.0], 3600.0)
    assert text.plain == "·▁▅█▲"  # none, nothing, half, the objective, over it
    assert [span.style for span in text.spans if span.start == 4] == ["bold red"]
    assert sparkline_against([1.0, 2.0], None).plain == "▅█"  # no objective: the largest tops
    assert sparkline_against([None, None], None).plain == "··"


@pytest.mark.asyncio
async def test_check_boxes_and_radio_buttons_read_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under NO_COLOR a state is its glyph alone: on and off never look the same."""
    from textual.widgets import RadioSet

    from widgets.toggles import Check, Radio

    monkeypatch.setenv("NO_COLOR", "1")

    class Toggles(App[None]):
        def compose(self) -> ComposeResult:
            yield Check("drop databases that already exist on the target", id="drop")
            yield Check("thorough validation", value=True, id="thorough")
            with RadioSet(id="scope"):
                yield Radio("the whole cluster", value=True, id="whole")
                yield Radio("chosen databases", id="chosen")

    def plain(app: App[None], selector: str) -> str:
        return app.query_one(selector).render().plain  # type: ignore[union-attr]

    app = Toggles()
    async with app.run_test() as pilot:
        assert app.no_color
        assert plain(app, "#drop").startswith("▐ ▌") and plain(app, "#thorough").startswith("▐X▌")
        assert plain(app, "#whole").startswith("▐●▌") and plain(app, "#chosen").startswith("▐ ▌")
        app.query_one("#drop", Check).toggle()
        app.query_one("#chosen", Radio).toggle()
        await pilot.pause()
        assert plain(app, "#drop").startswith("▐X▌")
        assert plain(app, "#chosen").startswith("▐●▌") and plain(app, "#whole").startswith("▐ ▌")
