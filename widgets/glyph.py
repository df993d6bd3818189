"""A state as a widget draws it: a sign that reads without colour, a word, a style.

Widgets get these as plain values from the app, which owns the vocabulary (what states
there are) and how each is drawn; a widget only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import JustifyMethod
from rich.text import Text


@dataclass(frozen=True, slots=True)
class Glyph:
    sign: str  # "✓", "!", "✗", "■": the meaning without colour (NO_COLOR)
    word: str  # "ok", "missing 3"
    style: str = ""  # a Rich style

    @property
    def label(self) -> str:
        """The sign and the word, as a table cell shows them: "! late"."""
        return " ".join(part for part in (self.sign, self.word) if part)

    def text(self, *, sign_only: bool = False, justify: JustifyMethod | None = None) -> Text:
        return Text(self.sign if sign_only else self.label, style=self.style, justify=justify)
