"""The clusters table: one row per cluster, fed plain ``ClusterRow`` values.

Refreshes update cells in place (``update_cell``) and add or remove only the rows
that changed, so the cursor and scroll stay where the user left them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from rich.text import Text

from widgets.fitting_table import FittingTable
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
    health: str = ""  # "ok", "late", "missing 3", "failed", "no backups", "off", "gone"
    health_detail: str = ""
    context: str = ""

    def cells(self) -> dict[str, Text]:
        style = "dim" if self.dimmed else ""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {key: Text(str(values[key]), style=style) for key, _ in COLUMNS if key in values}
        out["count"] = Text(str(self.count), style=style, justify="right")
        out["trend"] = Text(sparkline(self.sizes), style=style)
        out["health"] = health_text(self.health)
        return out


# Marks by how much they ask of the reader; the glyph carries the meaning without colour.
_HEALTH = {
    "ok": ("✓ ok", "green"),
    "late": ("! late", "bold yellow"),
    "missing": ("! missing", "yellow"),
    "failed": ("✗ failed", "bold red"),
    "no backups": ("✗ no backups", "bold red"),
    "bad schedule": ("✗ bad schedule", "red"),
    "off": ("- off", "dim"),
    "gone": ("- gone", "dim"),
}


def health_text(mark: str) -> Text:
    word = mark.split(" ")[0] if mark.startswith("missing") else mark
    label, style = _HEALTH.get(word, (mark or "?", ""))
    if word == "missing":
        label = "! " + mark
    return Text(label, style=style)


class ClusterTable(FittingTable):
    """A DataTable that knows how to merge a new list of rows into itself."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self._rows_by_key: dict[str, ClusterRow] = {}

    def set_rows(self, rows: Iterable[ClusterRow]) -> None:
        new = {r.key: r for r in rows}
        for key in [k for k in self._rows_by_key if k not in new]:
            self.remove_row(key)
            del self._rows_by_key[key]
        for key, row in new.items():
            old = self._rows_by_key.get(key)
            if old is None:
                cells = row.cells()
                self.add_row(*(cells[c] for c, _ in COLUMNS), key=key)
            elif old != row:
                for column, value in row.cells().items():
                    self.update_cell(key, column, value, update_width=True)
            self._rows_by_key[key] = row

    def sort_by(self, column_index: int) -> None:
        """Sort by one column: counts as numbers, everything else as text."""
        column, _ = COLUMNS[column_index]

        def key(cell: object) -> tuple[int, object]:
            text = str(cell)
            if column == "count":
                return (0, int(text or 0))
            return (1, text.lower())

        self.sort(column, key=key)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value
