"""The clusters table: one row per cluster, fed plain ``ClusterRow`` values.

Refreshes update cells in place (``update_cell``) and add or remove only the rows
that changed, so the cursor and scroll stay where the user left them. The health cell
arrives drawn (a ``Glyph``): the table shows a status column without knowing what
statuses there are.

A second mark per row (restore tests) comes apart from the rows, when it is known, as a
``Glyph`` per row key (``set_marks``): its column appears beside the health the first time,
and the marks outlive every ``set_rows`` of a refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rich.text import Text

from widgets.fitting_table import FittingTable
from widgets.glyph import Glyph
from widgets.sparkline_text import sparkline

COLUMNS = (
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("health", "Health"),
    ("team", "Team"),
    ("version", "PG"),
    ("status", "Status"),
    ("backups", "Backups"),
    ("count", "#"),
    ("age", "Last"),
    ("size", "Size"),
    ("trend", "Sizes"),
)
MARK_COLUMN = ("test", "Test")
NO_MARK = Glyph("", "")


@dataclass(frozen=True, slots=True)
class ClusterRow:
    key: str
    namespace: str
    name: str
    team: str
    version: str
    status: str
    backups: str  # "on 0 * * * *", "off"
    count: int
    age: str
    size: str
    sizes: tuple[int, ...] = ()
    dimmed: bool = False  # known only to storage
    health: Glyph = Glyph("?", "")  # "✓ ok", "! missing 3": drawn as the app says
    health_detail: str = ""
    context: str = ""

    def cells(self) -> dict[str, Text]:
        style = "dim" if self.dimmed else ""
        return {
            "namespace": Text(self.namespace, style=style),
            "name": Text(self.name, style=style),
            "health": self.health.text(),
            "team": Text(self.team, style=style),
            "version": Text(self.version, style=style),
            "status": Text(self.status, style=style),
            "backups": Text(self.backups, style=style),
            "count": Text(str(self.count), style=style, justify="right"),
            "age": Text(self.age, style=style),
            "size": Text(self.size, style=style),
            "trend": Text(sparkline(self.sizes), style=style),
        }


class ClusterTable(FittingTable):
    """A DataTable that knows how to merge a new list of rows into itself."""

    FIRST_ROWS = 80  # added at once: a screenful and more
    ROWS_PER_STEP = 200  # the rest, a step per frame, so the first frame comes early

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._columns: tuple[tuple[str, str], ...] = COLUMNS
        for key, label in self._columns:
            self.add_column(label, key=key)
        self._rows_by_key: dict[str, ClusterRow] = {}  # what the table shows
        self._pending: list[ClusterRow] = []  # rows still to add
        self._sorted_by: str | None = None  # a column's key
        self._marks: dict[str, Glyph] | None = None  # None: no mark column

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self._columns)

    def set_marks(self, marks: Mapping[str, Glyph]) -> None:
        """The mark of each row key (a row not named has none). The first call adds the
        column after the health: a DataTable cannot insert one, so the columns are laid out
        again and the rows added again, the cursor kept on its row."""
        if self._marks is None:
            self._marks = dict(marks)
            self._relayout()
            return
        changed = [k for k in self._rows_by_key if self._marks.get(k) != marks.get(k)]
        self._marks = dict(marks)
        for key in changed:
            self.update_cell(key, MARK_COLUMN[0], self._mark(key), update_width=True)

    def _mark(self, key: str) -> Text:
        return (self._marks or {}).get(key, NO_MARK).text()

    def _relayout(self) -> None:
        selected = self.selected_key()
        rows = [*self._rows_by_key.values(), *self._pending]
        self.clear(columns=True)
        at = self.column_keys.index("health") + 1
        self._columns = (*COLUMNS[:at], MARK_COLUMN, *COLUMNS[at:])
        for key, label in self._columns:
            self.add_column(label, key=key)
        self._rows_by_key, self._pending = {}, []
        self.set_rows(rows)
        if selected in self._rows_by_key:
            self.move_cursor(row=self.get_row_index(selected))

    def set_rows(self, rows: Iterable[ClusterRow]) -> None:
        """Merge ``rows`` in: new rows added, changed cells updated, missing rows removed.

        A thousand new rows cost Textual a second of measuring; the first ones are added
        at once and the rest in steps after each frame, so the screen shows rows at once
        and stays responsive while the others arrive.
        """
        new = {r.key: r for r in rows}
        for key in [k for k in self._rows_by_key if k not in new]:
            self.remove_row(key)
            del self._rows_by_key[key]
        pending = []
        for key, row in new.items():
            old = self._rows_by_key.get(key)
            if old is None:
                pending.append(row)
            elif old != row:
                self._update_row(key, old, row)
                self._rows_by_key[key] = row
        was_pending = bool(self._pending)
        self._pending = pending
        room = max(0, self.FIRST_ROWS - self.row_count)
        self._add_some(room)
        if self._pending and not was_pending:
            self.call_after_refresh(self._add_rest)

    def _update_row(self, key: str, old: ClusterRow, row: ClusterRow) -> None:
        """Only the cells that changed. A cell updated with ``update_width`` that is not
        its column's widest makes the DataTable measure the whole column again (a
        thousand rows, for each such cell): asked only when the column may change width,
        because the cell grows past it or was the widest and shrinks."""
        before = old.cells()
        for column, value in row.cells().items():
            was = before[column]
            if value.plain == was.plain and value.style == was.style and value.spans == was.spans:
                continue
            width = self.columns[column].content_width  # type: ignore[index]
            resize = value.cell_len > width or (was.cell_len >= width > value.cell_len)
            self.update_cell(key, column, value, update_width=resize)

    @property
    def complete(self) -> bool:
        """Whether every row given is in the table (none waiting for a later frame)."""
        return not self._pending

    def _add_some(self, n: int) -> None:
        step, self._pending = self._pending[:n], self._pending[n:]
        for row in step:
            cells = row.cells()
            if self._marks is not None:
                cells[MARK_COLUMN[0]] = self._mark(row.key)
            self.add_row(*(cells[c] for c, _ in self._columns), key=row.key)
            self._rows_by_key[row.key] = row
        if step and self._sorted_by is not None:
            self._sort(self._sorted_by)

    def _add_rest(self) -> None:
        self._add_some(self.ROWS_PER_STEP)
        if self._pending:
            self.call_after_refresh(self._add_rest)

    def sort_by(self, column_index: int) -> None:
        """Sort by one column: counts as numbers, everything else as text."""
        self._sort(self._columns[column_index][0])

    def _sort(self, column: str) -> None:
        self._sorted_by = column

        def key(cell: object) -> tuple[int, object]:
            text = str(cell)
            if column == "count":
                return (0, int(text or 0))
            return (1, text.lower())

        self.sort(column, key=key)
