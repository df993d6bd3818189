"""Without colour (``NO_COLOR``), text the console draws stays readable.

Textual draws without colour by turning every colour into its grey; red, the colour of
every failure (``✗ failed``, ``4 critical``, a target that does not answer), becomes a
grey a shade or two from the dark background: the sign and the word are there, and cannot
be read. This filter does what Textual's does, then lifts a letter or sign whose grey is
too close to its background's to the theme's text grey. Lines and blocks (borders,
scrollbars, the sparkline's bars, the toggles' frames) keep their grey: they are drawn to
blend in, and carry no word.
"""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import Monochrome, monochrome_style

# Of the 0-255 grey scale: muted text (about 100 from its background) keeps its grey,
# red on the dark theme (about 20) does not.
MIN_CONTRAST = 64
TEXT_GREYS = (Color(224, 224, 224), Color(32, 32, 32))  # on a dark background, on a light one


def _drawing(text: str) -> bool:
    """Whether ``text`` is only spaces, box drawing and blocks (U+2500-U+259F)."""
    return all(ch == " " or "\u2500" <= ch <= "\u259f" for ch in text)


@lru_cache(1024)
def _readable(style: Style, background: Color) -> Style:
    grey = monochrome_style(style)
    if grey.color is None:
        return grey
    fg = Color.from_rich_color(grey.color)
    bg = Color.from_rich_color(grey.bgcolor) if grey.bgcolor is not None else background
    bg = bg.monochrome
    if abs(fg.r - bg.r) >= MIN_CONTRAST:
        return grey
    lifted = TEXT_GREYS[0] if bg.r < 128 else TEXT_GREYS[1]
    return grey + Style(color=lifted.rich_color)


class ReadableMonochrome(Monochrome):
    """Textual's ``Monochrome``, with text kept readable against its background."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for text, style, _ in segments:
            if style is None:  # Textual's own filter fails on one; nothing to convert
                out.append(Segment(text))
            elif _drawing(text):
                out.append(Segment(text, monochrome_style(style)))
            else:
                out.append(Segment(text, _readable(style, background)))
        return out
