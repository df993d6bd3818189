"""Which backup a restore test restores: the newest, a random one within a window, or one named.

``--backup latest | random:30d | BACKUP`` is parsed once into a ``BackupChoice``, and
``choose`` applies it to a cluster's backups (the catalog's ``Backup`` values). As with
``pgdeck restore CLUSTER@latest``, a future-dated object (a wrong clock or a forged key)
is never chosen. A random choice is AWS Backup's ``RANDOM_WITHIN_WINDOW``: uniform among
the backups dated within the window before now, drawn with ``random.Random(seed)``, so
the same seed, backups and clock choose the same backup again; with no seed one is drawn
and kept in the ``Chosen`` value, for the report to state.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.catalog import FUTURE_SKEW
from services.errors import UsageError
from services.models import Backup

LATEST = "latest"
RANDOM = "random"
NAMED = "named"

_WINDOW = re.compile(r"^random:(\d{1,5})([dh])$")
_UNITS = {"d": "days", "h": "hours"}
_HINT = "use --backup latest, random:30d (a window in days or hours) or a backup's URL"


@dataclass(frozen=True, slots=True)
class BackupChoice:
    """What ``--backup`` asked for."""

    kind: str  # LATEST, RANDOM or NAMED
    window: timedelta | None = None  # RANDOM only
    name: str | None = None  # NAMED only: a URL or key, as given

    def __str__(self) -> str:
        if self.kind == RANDOM and self.window is not None:
            hours = int(self.window.total_seconds() // 3600)
            return f"random:{hours // 24}d" if hours % 24 == 0 else f"random:{hours}h"
        return self.name if self.kind == NAMED and self.name else LATEST


@dataclass(frozen=True, slots=True)
class Chosen:
    """The backup picked, how, and (for a random pick) the seed and how many it was among."""

    backup: Backup
    choice: BackupChoice
    seed: int | None = None
    among: int = 1
    # A random pick's window ended here: the same seed repeats the pick only with the
    # same window (later, name the backup itself: the report has its URL).
    window_end: datetime | None = None


def parse_choice(text: str) -> BackupChoice:
    """``latest``, ``random:<N>d`` / ``random:<N>h``, or anything else as a backup's name."""
    text = text.strip()
    if not text:
        raise UsageError("--backup is empty", _HINT)
    if text == LATEST:
        return BackupChoice(LATEST)
    if text.startswith("random"):
        m = _WINDOW.match(text)
        if m is None or int(m.group(1)) == 0:
            raise UsageError(f"--backup {text!r} is not a window", _HINT)
        window = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return BackupChoice(RANDOM, window=window)
    return BackupChoice(NAMED, name=text)


def draw_seed() -> int:
    """A seed for a run that was given none (recorded, so the pick can be repeated)."""
    return random.SystemRandom().randrange(2**32)


def choose(
    choice: BackupChoice,
    backups: Iterable[Backup],
    now: datetime,
    *,
    cluster: str,
    seed: int | None = None,
) -> Chosen:
    """The backup of ``cluster`` that ``choice`` names among ``backups``; a ``UsageError``
    (one line) when there is none."""
    every = sorted(backups, key=lambda b: (b.time, b.key), reverse=True)
    valid = [b for b in every if b.time <= now + FUTURE_SKEW]
    if choice.kind == NAMED:  # named on purpose: even a future-dated one may be tested
        name = choice.name or ""
        for b in every:
            if name in (b.url, b.key):
                return Chosen(b, choice)
        raise UsageError(f"{cluster}: no backup named {name!r}", "list them with `pgdeck backups`")
    if choice.kind == LATEST:
        if not valid:
            raise UsageError(f"{cluster}: no backup in storage to test")
        return Chosen(valid[0], choice)
    assert choice.window is not None
    start = now - choice.window
    window = [b for b in valid if start <= b.time <= now]
    if not window:
        raise UsageError(
            f"{cluster}: no backup within the last {str(choice).removeprefix('random:')}",
            "widen the window or use --backup latest",
        )
    seed = draw_seed() if seed is None else seed
    # Oldest first, so a seed picks the same backup whatever order the listing had.
    window.reverse()
    picked = random.Random(seed).choice(window)
    return Chosen(picked, choice, seed=seed, among=len(window), window_end=now)
