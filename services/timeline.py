"""A cluster's timeline: what its screen shows, gathered in one call.

``load_timeline`` reads one catalog state for the cluster's backups and kept Jobs, and
works out from them the coverage grid (counted since the cluster was created, so a
re-created cluster's predecessor covers none of its hours), the size outliers and the
future-dated keys. The server-side encryption of each backup comes from the cache (what
earlier HEADs told, see ``Catalog.check_new_sse``); what it does not know yet is asked
separately (``Catalog.with_sse``): a HEAD per object, and the timeline is shown before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from services import health
from services.catalog import Catalog
from services.health import CoverageDay
from services.models import Backup, Cluster, JobRun


@dataclass(frozen=True, slots=True)
class Timeline:
    """A cluster's backups and Jobs, with what the timeline marks on them."""

    cluster: Cluster
    now: datetime  # the catalog's clock when loaded: ages are counted from it
    backups: tuple[Backup, ...] = ()  # newest first
    jobs: tuple[JobRun, ...] = ()  # newest first
    coverage: tuple[CoverageDay, ...] = ()  # the last days by hour, newest day first
    caption: str = ""  # what the grid's hours are, or why there is no grid
    flags: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )  # url -> size outlier
    future: frozenset[str] = frozenset()  # urls of backups dated in the future

    def future_dated(self, backup: Backup) -> bool:
        return backup.url in self.future


def load_timeline(catalog: Catalog, cluster: Cluster) -> Timeline:
    """The timeline of ``cluster`` as the catalog's current state knows it."""
    state = catalog.state
    backups = tuple(catalog.cached_sse(catalog.backups(cluster, state=state)))
    now = catalog.clock()
    try:
        days, caption = _coverage(cluster, backups, now)
    except Exception as exc:  # a schedule no one can run is shown, not fatal
        days, caption = (), f"no grid: {exc}"
    oldest_first = backups[::-1]
    flags = health.size_outliers([b.size for b in oldest_first])
    return Timeline(
        cluster=cluster,
        now=now,
        backups=backups,
        jobs=tuple(state.jobs(cluster)),
        coverage=days,
        caption=caption,
        flags=MappingProxyType({b.url: f for b, f in zip(oldest_first, flags, strict=True) if f}),
        future=frozenset(b.url for b in backups if catalog.future_dated(b)),
    )


def _coverage(
    cluster: Cluster, backups: tuple[Backup, ...], now: datetime
) -> tuple[tuple[CoverageDay, ...], str]:
    """The coverage grid's days, from the cluster's creation (else its oldest backup)."""
    c = cluster
    since = c.created if c.in_kubernetes and c.created else None
    if backups and (since is None or backups[-1].time > since):
        since = since or backups[-1].time
    days = health.coverage(
        c.schedule if c.logical_backup else None,
        [(b.time, b.size) for b in backups],
        now,
        since=since,
    )
    caption = f"UTC hours; schedule {c.schedule}" if c.schedule else "UTC hours"
    return tuple(days), caption
