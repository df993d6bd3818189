"""A sparkline as text, for places a widget cannot go (a DataTable cell)."""

from __future__ import annotations

from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"


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
