"""A full-width sparkline of backup sizes whose cursor follows the selected backup.

Fed plain numbers (oldest first) and a cursor index. When there are more values than
columns, each column shows the smallest value of its bucket, so a near-empty backup
among normal ones still shows as a dip. The cursor's column is
drawn in reverse video, which reads without colour (``NO_COLOR``) too.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

EIGHTHS = " ▁▂▃▄▅▆▇█"


class SizeSparkline(Widget):
    DEFAULT_CSS = """
    SizeSparkline {
        height: 3;
        color: $accent;
    }
    """

    cursor: reactive[int | None] = reactive(None)

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._values: tuple[int, ...] = ()

    def set_values(self, values: Sequence[int], cursor: int | None = None) -> None:
        self._values = tuple(values)
        self.cursor = cursor
        self.refresh()

    def _columns(self, width: int) -> tuple[list[int], int | None]:
        """The values per column, and the cursor's column."""
        values = self._values
        if not values or width <= 0:
            return [], None
        n = len(values)
        if n <= width:
            return list(values), self.cursor
        cols = []
        for c in range(width):
            lo, hi = c * n // width, max(c * n // width + 1, (c + 1) * n // width)
            cols.append(min(values[lo:hi]))
        cursor = None if self.cursor is None else min(width - 1, self.cursor * width // n)
        return cols, cursor

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        cols, cursor = self._columns(width)
        if not cols:
            # Styled: Textual's NO_COLOR filter fails on a segment with no style at all.
            return Strip.blank(width, self.rich_style)
        # Scaled between the smallest usual value and the largest, so that a few percent of
        # growth shows; a value far below the usual (under half the median) gets the
        # lowest eighth alone, so a near-empty backup stands out as a dip.
        usual = sorted(cols)[len(cols) // 2] / 2
        low, high = min((v for v in cols if v >= usual), default=0), max(cols)
        span = (high - low) or 1
        full = height * 8
        style = self.rich_style
        cursor_style = style + Style(reverse=True)
        level_base = (height - 1 - y) * 8  # eighths below this line
        segments = []
        for i, v in enumerate(cols):
            if v < low:
                eighths = 1
            elif high == low:
                eighths = full // 2
            else:
                eighths = 2 + round((v - low) / span * (full - 2))
            part = min(8, max(0, eighths - level_base))
            segments.append(Segment(EIGHTHS[part], cursor_style if i == cursor else style))
        if len(cols) < width:
            segments.append(Segment(" " * (width - len(cols)), style))
        return Strip(segments, width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 3
