"""The one source of "now": injected everywhere, so tests and reproducible reviews can set it.

Every judgement that depends on the time (health marks, review windows, ages, report
stamps) reads a ``Clock`` handed in by its caller. The command line builds one from
``PGDECK_NOW`` when it is set (an ISO 8601 instant such as ``2026-11-20T12:20:00Z``): the
clock then starts at that instant and runs on at the real pace, so durations stay real.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from services.errors import ConfigError

Clock = Callable[[], datetime]

ENV = "PGDECK_NOW"


def system_clock() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: str, where: str = ENV) -> datetime:
    """An ISO 8601 instant; one without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{where}: {text!r} is not an ISO 8601 time", "write it as 2026-11-20T12:20:00Z"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def starting_at(instant: datetime) -> Clock:
    """A clock that reads ``instant`` now and advances with the real (monotonic) time."""
    origin = time.monotonic()

    def now() -> datetime:
        return instant + timedelta(seconds=time.monotonic() - origin)

    return now


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    env = os.environ if environ is None else environ
    text = env.get(ENV)
    if not text:
        return system_clock
    return starting_at(parse_instant(text))
