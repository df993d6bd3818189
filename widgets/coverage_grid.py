"""The coverage grid: a row per day, a cell per hour, so gaps are seen, not read.

Fed plain ``GridDay`` values whose cells are state names, and at construction the
``Glyph`` of each state and the states its legend counts: the app owns the vocabulary,
the grid only lays it out (and counts it). Each state has its own sign as well as its
colour, so the grid reads the same without colour (``NO_COLOR``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from widgets.glyph import Glyph

_UNKNOWN = Glyph("?", "")


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
        self,
        glyphs: Mapping[str, Glyph],
        legend: Sequence[str],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._glyphs = dict(glyphs)  # state -> how its cells are drawn
        self._legend = tuple(legend)  # the states the legend counts, in its order
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
                glyph = self._glyphs.get(state, _UNKNOWN)
                text.append(glyph.sign + " ", style=glyph.style)
            text.append("\n")
        counts = self.counts()
        text.append(" " * (width + 1))
        for state in self._legend:
            glyph = self._glyphs.get(state, _UNKNOWN)
            text.append(glyph.sign, style=glyph.style)
            text.append(f" {glyph.word} {counts.get(state, 0)}  ", style="dim")
        return text
