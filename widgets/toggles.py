"""Check boxes and radio buttons whose state reads without colour.

Textual draws a ``Checkbox`` or ``RadioButton`` with the same glyph on or off and tells the
two apart by colour alone; under ``NO_COLOR`` (or on a monochrome terminal) "drop databases
that already exist on the target" then looks the same checked or not. These draw their glyph
only when on, so the state reads from the glyph alone, in colour or not.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class Check(Checkbox):
    """A ``Checkbox`` showing ``X`` when checked and nothing when not."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802  Textual's name
        return "X" if self.value else " "


class Radio(RadioButton):
    """A ``RadioButton`` showing ``●`` when chosen and nothing when not."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802  Textual's name
        return "●" if self.value else " "
