"""An option list whose highlighted option reads without colour.

Textual's ``OptionList`` tells the highlighted option by its background alone; under
``NO_COLOR`` (or on a monochrome terminal) every target in the wizard then looks the same,
highlighted or not. This one keeps a two-cell gutter on the left and draws ``▸`` in it
beside the highlighted option, in colour or not.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import OptionList

MARK = "▸ "
GUTTER = " " * len(MARK)


class MarkedOptionList(OptionList):
    """An ``OptionList`` with ``▸`` beside the highlighted option."""

    def _get_left_gutter_width(self) -> int:  # Textual's hook (SelectionList's check boxes)
        return len(MARK)

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            index, offset = self._lines[self.scroll_offset.y + y]
        except IndexError:
            return strip
        mark = MARK if index == self.highlighted and offset == 0 else GUTTER
        style = next((s.style for s in strip if s.style is not None), None)
        return Strip.join([Strip([Segment(mark, style)], len(mark)), strip])
