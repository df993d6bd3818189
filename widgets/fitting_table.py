"""A DataTable whose rows follow their columns when an update widens them.

Textual's DataTable widens its columns for new rows and for
``update_cell(..., update_width=True)`` only when it is idle, and a row rendered in
between is cached with the old widths: it then shows truncated cells until something
else clears the cache. This table clears its render caches once the widths have been
recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import events
from textual.coordinate import Coordinate
from textual.widgets import DataTable


class FittingTable(DataTable[Any]):
    on_cursor_row: Callable[[int], None] | None = None
    """Called at once when the cursor changes row, in the same frame as the cursor (a
    ``RowHighlighted`` message is handled only after that frame is painted)."""

    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None in an empty table."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if self.on_cursor_row is not None and old.row != new.row:
            self.on_cursor_row(new.row)

    async def _on_idle(self, event: events.Idle) -> None:
        widened = bool(self._updated_cells or self._new_rows)
        await super()._on_idle(event)
        if widened:
            self._clear_caches()
            self.refresh()
