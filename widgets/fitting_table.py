"""A DataTable whose rows follow their columns when an update widens them.

Textual's DataTable widens its columns for new rows and for
``update_cell(..., update_width=True)`` only when it is idle, and a row rendered in
between is cached with the old widths: it then shows truncated cells until something
else clears the cache. This table clears its render caches once the widths have been
recomputed.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.widgets import DataTable


class FittingTable(DataTable[Any]):
    async def _on_idle(self, event: events.Idle) -> None:
        widened = bool(self._updated_cells or self._new_rows)
        await super()._on_idle(event)
        if widened:
            self._clear_caches()
            self.refresh()
