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


def minute(when: datetime | None) -> str:
    """An instant to the minute, as tables show it (UTC: callers say so in the header)."""
    return "-" if when is None else f"{when:%Y-%m-%d %H:%M}"


def against(measured: float | None, objective: float | None) -> str:
    """A measured duration against its objective: "13m32s / 1h00m" (either may be "-")."""
    shown = "-" if measured is None else duration(measured)
    return shown if objective is None else f"{shown} / {duration(objective)}"


def next_run(when: datetime | None, now: datetime) -> str:
    """When a schedule runs next: "next run Fri 14:00 = 13:00Z (in 40 minutes)", local time
    first as people plan by it, UTC beside it (as schedules are read) only where they differ."""
    if when is None:
        return "next run -"
    local = when.astimezone()
    at = f"{local:%a %H:%M}"
    if local.utcoffset():
        at += f" = {when:%H:%MZ}"
    return f"next run {at} (in {humanize.naturaldelta(when - now)})"
