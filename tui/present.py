"""Turning catalog values into human table cells and lines (the edge, CLI and TUI alike).

Their JSON form is their own ``to_dict()`` (``services.jsonable``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


def incomplete_lines(report: Any) -> list[str]:
    """A failed or cancelled restore's databases: created and left incomplete, or dropped."""
    kept = [d for d in report.databases_incomplete if d not in report.databases_dropped]
    lines = []
    if kept:
        lines.append(
            "left incomplete on the target (created by this restore): "
            + ", ".join(kept)
            + "; drop them, or restore again with --drop-existing"
        )
    if report.databases_dropped:
        lines.append("dropped again (--on-failure drop): " + ", ".join(report.databases_dropped))
    return lines
