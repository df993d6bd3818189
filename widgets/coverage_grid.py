"""The coverage grid: a row per day, a cell per hour, so gaps are seen, not read.

Fed plain ``GridDay`` values whose cells are state names. Each state has its own glyph
as well as its colour, so the grid reads the same without colour (``NO_COLOR``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

CELLS = {
    "present": ("■", "green"),
    "unusual": ("▲", "bold yellow"),
    "missing": ("✗", "bold red"),
    "pending": ("…", "cyan"),
    "none": ("·", "dim"),
    "before": (" ", ""),
    "future": (" ", ""),
}
LEGEND = ("present", "missing", "unusual", "pending", "none")


@dataclass(frozen=True, slots=True)
class GridDay:
    label: str  # "Fri 20 Nov"
    cells: tuple[str, ...]  # 24 state names


class CoverageGrid(Widget):
    DEFAULT_CSS = """
    CoverageGrid {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._days: tuple[GridDay, ...] = ()
        self._caption = ""

    def set_days(self, days: Sequence[GridDay], caption: str = "") -> None:
        self._days = tuple(days)
        self._caption = caption
        self.refresh(layout=True)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self._days:
            for c in d.cells:
                out[c] = out.get(c, 0) + 1
        return out

    def render(self) -> Text:
        if not self._days:
            return Text("no expected runs to show", style="dim")
        width = max(len(d.label) for d in self._days)
        text = Text()
        hours = "".join(f"{h:02d}    " if h % 3 == 0 else "" for h in range(24))
        text.append(" " * (width + 1) + hours.rstrip() + "   " + self._caption + "\n", style="dim")
        for d in self._days:
            text.append(d.label.ljust(width) + " ", style="bold")
            for state in d.cells:
                glyph, style = CELLS.get(state, ("?", ""))
                text.append(glyph + " ", style=style)
            text.append("\n")
        counts = self.counts()
        text.append(" " * (width + 1))
        for state in LEGEND:
            glyph, style = CELLS[state]
            text.append(glyph, style=style)
            text.append(f" {state} {counts.get(state, 0)}  ", style="dim")
        return text
