"""The clusters table: one row per cluster, fed plain ``ClusterRow`` values.

Refreshes update cells in place (``update_cell``) and add or remove only the rows
that changed, so the cursor and scroll stay where the user left them. The health cell
arrives drawn (a ``Glyph``): the table shows a status column without knowing what
statuses there are.

A second mark per row (restore tests) comes apart from the rows, when it is known, as a
``Glyph`` per row key (``set_marks``): its column appears beside the health the first time,
and the marks outlive every ``set_rows`` of a refresh.

Narrow (80 columns), the table keeps what says whether a backup is fresh: the name, the
health, the mark, the last backup's age and size and the sizes (the newest, if not all
fit); the rest folds, the least needed first, the namespace last and into a prefix of the
name ("shop/acid-orders") while that fits: ``folded_line`` says them for the row under the
cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from widgets.folding_table import Column, FoldingTable
from widgets.glyph import Glyph
from widgets.sparkline_text import sparkline

COLUMNS = (
    Column("namespace", "Namespace", fold=6, into="name", detail="namespace {}"),
    Column("name", "Name"),
    Column("health", "Health"),
    Column("team", "Team", fold=4, detail="team {}"),
    Column("version", "PG", fold=2, detail="PG {}"),
    Column("status", "Status", fold=5, detail="{}"),
    Column("backups", "Backups", fold=1, detail="backups {}"),
    Column("count", "#", fold=3, detail="{} stored"),
    Column("age", "Last"),
    Column("size", "Size"),
    Column("trend", "Sizes", squeeze=8, keep_end=True),
)
MARK_COLUMN = Column("test", "Test")
SPARK_WIDTH = 16  # the sizes' sparkline: its last values
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

    def widths(self) -> dict[str, int]:
        """The cells' widths, without drawing them: what the table measures a row by."""
        return {
            "namespace": cell_len(self.namespace),
            "name": cell_len(self.name),
            "health": cell_len(self.health.label),
            "team": cell_len(self.team),
            "version": cell_len(self.version),
            "status": cell_len(self.status),
            "backups": cell_len(self.backups),
            "count": len(str(self.count)),
            "age": cell_len(self.age),
            "size": cell_len(self.size),
            "trend": min(len(self.sizes), SPARK_WIDTH),
        }

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
            "trend": Text(sparkline(self.sizes, SPARK_WIDTH), style=style),
        }


class ClusterTable(FoldingTable):
    """A DataTable that knows how to merge a new list of rows into itself."""

    FIRST_ROWS = 80  # added at once: a screenful and more
    ROWS_PER_STEP = 200  # the rest, a step per frame, so the first frame comes early

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self._rows_by_key: dict[str, ClusterRow] = {}  # what the table shows
        self._pending: list[ClusterRow] = []  # rows still to add
        self._sorted_by: str | None = None  # a column's key
        self._marks: dict[str, Glyph] | None = None  # None: no mark column
        self.declare(COLUMNS)

    @property
    def column_keys(self) -> tuple[str, ...]:
        """The keys of the columns shown, left to right."""
        return tuple(c.key for c in self.shown)

    def set_marks(self, marks: Mapping[str, Glyph]) -> None:
        """The mark of each row key (a row not named has none). The first call adds the
        column after the health: a DataTable cannot insert one, so the columns are laid out
        again and the rows added again, the cursor kept on its row."""
        if self._marks is None:
            self._marks = dict(marks)
            at = [c.key for c in COLUMNS].index("health") + 1
            for mark in marks.values():
                self.measure({MARK_COLUMN.key: mark.text()})
            self.declare((*COLUMNS[:at], MARK_COLUMN, *COLUMNS[at:]))
            return
        changed = [k for k in self._rows_by_key if self._marks.get(k) != marks.get(k)]
        self._marks = dict(marks)
        for key in changed:
            self.set_cell(key, MARK_COLUMN.key, self._mark(key))

    def _mark(self, key: str) -> Text:
        return (self._marks or {}).get(key, NO_MARK).text()

    def relayout(self) -> None:
        if not hasattr(self, "_rows_by_key"):  # before mount
            return
        selected = self.selected_key()
        rows = [*self._rows_by_key.values(), *self._pending]
        self.clear(columns=True)
        self.add_shown_columns()
        self._rows_by_key, self._pending = {}, []
        self._cells.clear()
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
            self.remove_cells(key)
            del self._rows_by_key[key]
        pending = []
        for key, row in new.items():
            old = self._rows_by_key.get(key)
            if old is None:
                pending.append(row)
                self.measure_widths(row.widths())  # all known before the first rows show
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
        """Only the cells that changed (``set_cell`` asks the DataTable to measure a
        column again only when the column may change width)."""
        before = old.cells()
        for column, value in row.cells().items():
            was = before[column]
            if value.plain == was.plain and value.style == was.style and value.spans == was.spans:
                continue
            self.set_cell(key, column, value)

    @property
    def complete(self) -> bool:
        """Whether every row given is in the table (none waiting for a later frame)."""
        return not self._pending

    def _add_some(self, n: int) -> None:
        step, self._pending = self._pending[:n], self._pending[n:]
        for row in step:
            cells: dict[str, Text | str] = dict(row.cells())
            if self._marks is not None:
                cells[MARK_COLUMN.key] = self._mark(row.key)
            self.add_cells(row.key, cells)
            self._rows_by_key[row.key] = row
        if step and self._sorted_by is not None:
            self._sort(self._sorted_by)

    def _add_rest(self) -> None:
        self._add_some(self.ROWS_PER_STEP)
        if self._pending:
            self.call_after_refresh(self._add_rest)

    def sort_by(self, column_index: int) -> None:
        """Sort by one of the columns shown: counts as numbers, everything else as text."""
        shown = self.shown
        if 0 <= column_index < len(shown):
            self._sort(shown[column_index].key)

    def resort(self) -> None:
        """Sort again by the column last sorted by (its cells may have changed)."""
        if self._sorted_by is not None:
            self._sort(self._sorted_by)

    def _sort(self, column: str) -> None:
        self._sorted_by = column
        if column not in self.columns:
            return  # folded since: the rows keep their order until it is shown again

        def key(cell: object) -> tuple[int, object]:
            text = str(cell)
            if column == "count":
                return (0, int(text or 0))
            return (1, text.lower())

        self.sort(column, key=key)
