"""A table that chooses its columns by its width: the ones that matter stay, the others fold.

Each column is declared once with how it folds (``Column``): never, or in an order (the
lowest ``fold`` first); a folded column may live on as a prefix of another's cells
("shop/acid-orders") until even that is too wide, and one column may be squeezed, its
cells cut (an ellipsis at the end, or the start dropped: a sparkline keeps its newest
values) before anything folds. ``choose`` picks the columns from the widest cell of each; the
table re-chooses when it is resized or its cells widen, keeping its cursor on its row.
What a row's folded columns hold is asked with ``folded_cells``, for a line under the
table: nothing is lost, only moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.message import Message

from widgets.fitting_table import FittingTable

Cell = Text | str


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    fold: int = 0  # 0: always shown; else folded, the lowest first, when the table is narrow
    into: str = ""  # folded, its value prefixes this column's cells, joined by "/"
    squeeze: int = 0  # > 0: cut (down to this width) before anything folds
    keep_end: bool = False  # cut from the start, no ellipsis, once all else folded (sparkline)
    detail: str = ""  # how a folded value reads in a line: "{} backups"; "Label {}" if empty

    def describe(self, value: str) -> str:
        return (self.detail or f"{self.label} {{}}").format(value)


@dataclass(frozen=True, slots=True)
class Layout:
    shown: tuple[str, ...]
    squeezed: int = 0  # the squeezed column's width, 0 when it is not cut
    prefixed: bool = True  # folded columns with ``into`` still prefix their column's cells


def width_of(cell: Cell | None) -> int:
    if cell is None:
        return 0
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def choose(
    columns: Sequence[Column], widest: Mapping[str, int], room: int, padding: int = 2
) -> Layout:
    """The columns that fit ``room`` cells: every one if they fit; else the squeezed one cut
    to its least and the foldable ones folded, lowest ``fold`` first, until the rest fit (a
    ``keep_end`` one is cut only once all have folded, and prefixes are dropped last); the
    squeezed one then takes what room is left (all of it it needs, if it can)."""

    def need(keys: Iterable[str], early: bool, late: bool = False, prefixed: bool = True) -> int:
        keys = set(keys)
        total = 0
        for c in columns:
            if c.key not in keys:
                continue
            w = max(cell_len(c.label), widest.get(c.key, 0))
            if c.squeeze and (late if c.keep_end else early):
                w = min(w, c.squeeze)
            for f in columns:  # folded into this one: its prefix widens the cells
                if prefixed and f.into == c.key and f.key not in keys:
                    w += widest.get(f.key, 0) + 1
            total += w + padding
        return total

    shown = [c.key for c in columns]
    if need(shown, False) <= room:
        return Layout(tuple(shown))
    for c in sorted((c for c in columns if c.fold), key=lambda c: c.fold):
        if need(shown, True) <= room:
            break
        shown.remove(c.key)
    prefixed = need(shown, True, True) <= room  # else the prefixes go to the line as well
    squeeze = next((c for c in columns if c.squeeze and c.key in shown), None)
    if squeeze is None:
        return Layout(tuple(shown), 0, prefixed)
    natural = max(cell_len(squeeze.label), widest.get(squeeze.key, 0))
    cut = max(squeeze.squeeze, natural - (need(shown, False, False, prefixed) - room))
    return Layout(tuple(shown), cut if cut < natural else 0, prefixed)


class FoldingTable(FittingTable):
    """A DataTable of declared columns that shows the ones its width allows.

    Rows are given whole (``add_cells``: every column's cell, shown or not) and kept, so
    that a resize can lay the table out again from them.
    """

    class Refolded(Message):
        """The columns shown changed: a line that says the folded ones must say them again."""

    def __init__(self, columns: Sequence[Column] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._declared: tuple[Column, ...] = tuple(columns)
        self._layout: Layout | None = None  # None: no column added yet
        self._cells: dict[str, dict[str, Cell]] = {}
        self._widest: dict[str, int] = {}
        self._refit_due = False

    # --- columns -------------------------------------------------------------------------
    @property
    def declared(self) -> tuple[Column, ...]:
        return self._declared

    @property
    def shown(self) -> tuple[Column, ...]:
        keys = self._layout.shown if self._layout else ()
        return tuple(c for c in self._declared if c.key in keys)

    @property
    def folded(self) -> tuple[Column, ...]:
        """Columns not shown, nor shown as another's prefix."""
        keys = self._layout.shown if self._layout else ()
        prefixed = self._layout.prefixed if self._layout else True
        return tuple(
            c
            for c in self._declared
            if c.key not in keys and not (prefixed and c.into and c.into in keys)
        )

    @property
    def squeezed(self) -> int:
        """The squeezed column's width when it is cut, else 0."""
        return self._layout.squeezed if self._layout else 0

    def declare(self, columns: Sequence[Column]) -> None:
        """Declare the columns again (one more, say): the table is laid out anew."""
        self._declared = tuple(columns)
        self._layout = None
        self.refit()

    def room(self) -> int:
        """The cells the columns may take: the width, less a scroll bar if rows overflow."""
        width = self.size.width
        if self.row_count + (1 if self.show_header else 0) > self.size.height:
            width -= self.styles.scrollbar_size_vertical
        return width

    def refit(self) -> None:
        """Choose the columns again; lay the table out again only if the choice changed."""
        self._refit_due = False
        if not self._declared:
            return
        if not self.size.width:  # not laid out yet: all columns, until the first resize
            layout = Layout(tuple(c.key for c in self._declared))
        else:
            layout = choose(self._declared, self._widest, self.room(), 2 * self.cell_padding)
        if layout == self._layout:
            return
        self._layout = layout
        self.relayout()
        self.post_message(self.Refolded())

    def relayout(self) -> None:
        """Lay the columns out again and add the rows again, the cursor kept on its row."""
        selected = self.selected_key()
        self.clear(columns=True)
        self.add_shown_columns()
        for key, cells in self._cells.items():
            self.add_row(*self.shown_cells(cells), key=key)
        if selected is not None and selected in self._cells:
            self.move_cursor(row=self.get_row_index(selected))

    def add_shown_columns(self) -> None:
        squeezed = self._layout.squeezed if self._layout else 0
        for c in self.shown:
            width = squeezed if c.squeeze and squeezed else None
            self.add_column(c.label, key=c.key, width=width)

    def on_mount(self) -> None:
        self.refit()

    def on_resize(self, event: events.Resize) -> None:
        self.refit()

    def _later_refit(self) -> None:
        """One refit after this frame, for all the cells measured in it."""
        if not self._refit_due:
            self._refit_due = True
            self.call_after_refresh(self._refit_if_due)

    def _refit_if_due(self) -> None:
        if self._refit_due:
            self.refit()

    # --- cells ---------------------------------------------------------------------------
    def measure(self, cells: Mapping[str, Cell]) -> None:
        """Widen the columns' known widths to these cells'; re-choose after this frame."""
        self.measure_widths({key: width_of(cell) for key, cell in cells.items()})

    def measure_widths(self, widths: Mapping[str, int]) -> None:
        """As ``measure``, given the cells' widths (cheaper than drawing the cells)."""
        widened = False
        for key, w in widths.items():
            if w > self._widest.get(key, 0):
                self._widest[key] = w
                widened = True
        if widened:
            self._later_refit()

    def shown_cells(self, cells: Mapping[str, Cell]) -> list[Cell]:
        """The cells of the shown columns, folded prefixes joined on and squeezed ones cut."""
        layout = self._layout
        keys = layout.shown if layout else ()
        out: list[Cell] = []
        for c in self.shown:
            cell = cells.get(c.key, "")
            for f in self._declared:
                if layout and layout.prefixed and f.into == c.key and f.key not in keys:
                    prefix = _text(cells.get(f.key, ""))
                    if prefix.plain not in ("", "-"):  # "-": no namespace to name
                        style = _text(cell).style
                        cell = Text.assemble(prefix, ("/", style), _text(cell))
            if c.squeeze and layout and layout.squeezed and width_of(cell) > layout.squeezed:
                cut = _text(cell)
                if c.keep_end:
                    cut = cut[len(cut) - layout.squeezed :]  # one cell a character
                else:
                    cut = cut.copy()
                    cut.truncate(layout.squeezed, overflow="ellipsis")
                cell = cut
            out.append(cell)
        return out

    def add_cells(self, key: str, cells: Mapping[str, Cell]) -> None:
        """Add a row given every column's cell (the folded ones are kept for later)."""
        if self._layout is None:
            self.refit()
        self._cells[key] = dict(cells)
        self.measure(cells)
        self.add_row(*self.shown_cells(cells), key=key)

    def set_cell(self, key: str, column: str, value: Cell) -> None:
        """Change one cell, shown or folded."""
        cells = self._cells.get(key)
        if cells is None:
            return
        before = self.shown_cells(cells)
        cells[column] = value
        self.measure({column: value})
        for c, was, cell in zip(self.shown, before, self.shown_cells(cells), strict=True):
            if c.key == column or any(f.key == column and f.into == c.key for f in self._declared):
                # Measuring a column again costs a pass over its rows: asked only when the
                # cell grows past the column, or was its widest and shrinks.
                width = self.columns[c.key].content_width  # type: ignore[index]
                grows, shrinks = width_of(cell) > width, width_of(was) >= width > width_of(cell)
                self.update_cell(key, c.key, cell, update_width=grows or shrinks)

    def remove_cells(self, key: str) -> None:
        if self._cells.pop(key, None) is not None:
            self.remove_row(key)

    def clear_cells(self) -> None:
        """Every row gone; the widths are measured anew from the next rows."""
        self._cells.clear()
        self._widest.clear()
        self.clear()

    def cells_of(self, key: str) -> Mapping[str, Cell]:
        return self._cells.get(key, {})

    def folded_cells(self, key: str | None) -> list[tuple[Column, Cell]]:
        """The cells of a row the table does not show whole: its folded columns', and the
        squeezed column's when it is cut (a sparkline's oldest values are let go); for a
        line that shows them."""
        cells = self._cells.get(key or "", None)
        if cells is None:
            return []
        cut = self.squeezed
        return [
            (c, cells[c.key])
            for c in self._declared
            if c.key in cells
            and (
                c in self.folded
                or (c.squeeze and not c.keep_end and cut and width_of(cells[c.key]) > cut)
            )
        ]

    def folded_line(self, key: str | None, sep: str = "  ") -> Text:
        """A row's folded cells as one line, each as its column describes it, styles kept."""
        line = Text()
        for c, cell in self.folded_cells(key):
            if _text(cell).plain in ("", "-"):  # nothing to say
                continue
            if line:
                line.append(sep)
            before, _, after = c.describe("\0").partition("\0")
            line.append(before)
            line.append_text(_text(cell))
            line.append(after)
        return line


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)
