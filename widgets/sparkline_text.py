"""Sparklines as text, for places a widget cannot go (a DataTable cell)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

BARS = "▁▂▃▄▅▆▇█"
OVER = "▲"  # over the ceiling: a sign, not only a colour (NO_COLOR)
MISSING = "·"


def sparkline(values: Sequence[float], width: int = 16) -> str:
    """The last ``width`` values as bars scaled between their own min and max."""
    if not values:
        return ""
    tail = list(values)[-width:]
    low, high = min(tail), max(tail)
    if high == low:
        return BARS[3] * len(tail)
    span = high - low
    return "".join(
        BARS[min(len(BARS) - 1, int((v - low) / span * (len(BARS) - 1) + 0.5))] for v in tail
    )


def sparkline_against(
    values: Sequence[float | None], ceiling: float | None, *, over_style: str = "bold red"
) -> Text:
    """Bars scaled from zero to ``ceiling`` (an objective): a value over it is ``▲`` (in
    ``over_style``), a missing one ``·``. Without a ceiling, the largest value is the top.
    Zero-based, unlike ``sparkline``: the height says how much of the objective was used."""
    top = ceiling or max((v for v in values if v is not None), default=0.0) or 1.0
    text = Text()
    for v in values:
        if v is None:
            text.append(MISSING, style="dim")
        elif ceiling is not None and v > ceiling:
            text.append(OVER, style=over_style)
        else:
            text.append(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))])
    return text
