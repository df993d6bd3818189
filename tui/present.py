"""Turning catalog values into human table cells and lines (the edge, CLI and TUI alike).

Their JSON form is their own ``to_dict()`` (``services.jsonable``)."""

from __future__ import annotations

from datetime import datetime

import humanize


def age(dt: datetime | None, now: datetime) -> str:
    if dt is None:
        return "-"
    return humanize.naturaldelta(now - dt) + " ago" if now >= dt else "in the future"


def size(n: int | None) -> str:
    return "-" if n is None else humanize.naturalsize(n, binary=True)


def duration(seconds: float) -> str:
    """A short duration for tables: 12s, 4m05s, 1h03m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
