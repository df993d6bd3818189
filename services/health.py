"""What the schedule expected and what storage holds: health marks, coverage, size outliers.

A backup object's key is the epoch of its upload, after the dump, so the run the
schedule started at ``T`` is covered by an object in ``[T, next run)``. A run is only
judged once ``grace`` has passed (or its window closed, for runs closer than that);
before, it is pending. Schedules are read by croniter, in UTC, as the CronJob
controller does without a ``timeZone``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.marks import CoverageCell, HealthMark
from services.models import Cluster, JobRun

# croniter (and dateutil under it) is imported where a schedule is read, not here: the
# console's first frame shows health marks read from the cache and reads no schedule.
GRACE = timedelta(hours=1)
# An object may be stamped a little before its run's start (a node's clock behind the
# scheduler's): it still belongs to that run.
SKEW = timedelta(minutes=2)
MAX_RUNS = 50_000  # a "* * * * *" schedule over a fortnight is 20,160 runs


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Health:
    mark: HealthMark
    detail: str  # one line for people: what, since when
    missing: int = 0  # of a MISSING mark: the expected runs without a backup

    @property
    def label(self) -> str:
        """The mark as people read it: "missing 3" says how many."""
        return f"{self.mark} {self.missing}" if self.mark is HealthMark.MISSING else self.mark


class RunState(StrEnum):
    PRESENT = "present"  # an object covers it
    MISSING = "missing"  # judged, and no object covers it
    PENDING = "pending"  # not judged yet: within its grace


@dataclass(frozen=True, slots=True)
class Run:
    """One run the schedule expected, and what became of it."""

    at: datetime
    until: datetime  # the next run: an object before this covers this run
    state: RunState
    count: int = 0  # objects in the window


def expected_runs(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's start times in ``[start, end)``, UTC."""
    return list(_expected_runs(schedule, start, end))


@functools.lru_cache(maxsize=512)
def _expected_runs(schedule: str, start: datetime, end: datetime) -> tuple[datetime, ...]:
    # Cached: every cluster of a catalog asks the same few schedules the same question.
    from croniter import CroniterError, croniter

    try:
        if not croniter.is_valid(schedule):
            raise ScheduleError(f"{schedule!r} is not a cron schedule")
        it = croniter(schedule, start.astimezone(UTC) - timedelta(seconds=1))
        out: list[datetime] = []
        while len(out) < MAX_RUNS:
            t = it.get_next(datetime)
            if t >= end:
                break
            out.append(t)
        return tuple(out)
    except (CroniterError, ValueError, KeyError) as exc:  # e.g. "0 0 31 2 *": never runs
        raise ScheduleError(f"{schedule!r} cannot be scheduled ({exc})") from None


@functools.lru_cache(maxsize=512)
def next_run(schedule: str, after: datetime) -> datetime:
    from croniter import CroniterError, croniter

    try:
        return croniter(schedule, after).get_next(datetime)  # type: ignore[no-any-return]
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"{schedule!r} cannot be scheduled ({exc})") from None


@functools.lru_cache(maxsize=512)
def previous_runs(schedule: str, before: datetime, n: int) -> tuple[datetime, ...]:
    """The ``n`` runs before ``before``, newest last."""
    from croniter import CroniterError, croniter

    try:
        it = croniter(schedule, before)
        return tuple(reversed([it.get_prev(datetime) for _ in range(n)]))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"{schedule!r} cannot be scheduled ({exc})") from None


def runs(
    schedule: str,
    times: Sequence[datetime] | Sequence[float],
    start: datetime,
    now: datetime,
    grace: timedelta = GRACE,
) -> list[Run]:
    """Every run expected in ``[start, now)``, matched with the sorted object ``times``
    (datetimes, or epoch seconds: a catalog of thousands passes those, cheaper)."""
    bounds, edges = _bounds(schedule, start, now)
    if not bounds:
        return []
    keys = _epochs(times)
    where = [bisect.bisect_left(keys, e) for e in edges]
    out = []
    for i, (at, until) in enumerate(zip(bounds, bounds[1:], strict=False)):
        n = where[i + 1] - where[i]
        if n:
            state = RunState.PRESENT
        elif not _judged(at, until, now, grace):
            state = RunState.PENDING
        else:
            state = RunState.MISSING
        out.append(Run(at, until, state, n))
    return out


def size_outliers(
    sizes: Sequence[int],
    *,
    window: int = 24,
    low: float = 0.5,
    high: float = 2.0,
    near_empty: int = 1024,  # an empty cluster's pg_dumpall is about 1.5 KB gzipped
) -> list[str | None]:
    """Per size (oldest first): "near-empty", "small", "large" or None.

    Each object is compared with the median of the ``window`` objects before it, so a
    database that grows steadily raises nothing while a sudden drop or jump does.
    """
    out: list[str | None] = []
    for i, size in enumerate(sizes):
        if size < near_empty:
            out.append("near-empty")
            continue
        before = sizes[max(0, i - window) : i]
        if len(before) < 3:
            out.append(None)
            continue
        norm = statistics.median(before)
        if size < norm * low:
            out.append("small")
        elif size > norm * high:
            out.append("large")
        else:
            out.append(None)
    return out


@functools.lru_cache(maxsize=512)
def _bounds(
    schedule: str, start: datetime, now: datetime
) -> tuple[tuple[datetime, ...], tuple[int, ...]]:
    """The runs in ``[start, now)`` and the next one, and where each run's objects begin
    (its start less SKEW, in epoch seconds): the same for every cluster of a schedule.

    Cron runs fall on whole minutes, so the seconds are exact integers, and comparing the
    cache's integer epochs with integers is three times quicker than with floats."""
    starts = expected_runs(schedule, start, now)
    if not starts:
        return (), ()
    bounds = (*starts, next_run(schedule, starts[-1]))
    return bounds, tuple(int((t - SKEW).timestamp()) for t in bounds)


def _judged(at: datetime, until: datetime, now: datetime, grace: timedelta) -> bool:
    """Whether a run without an object counts as missing yet: once its grace has passed,
    or its window closed, whichever comes first."""
    return now >= at + min(grace, until - at)


def _epochs(times: Sequence[datetime] | Sequence[float]) -> Sequence[float]:
    if times and isinstance(times[0], datetime):
        return [t.timestamp() for t in times]  # type: ignore[union-attr]
    return times  # type: ignore[return-value]


def cluster_health(
    cluster: Cluster,
    times: Sequence[datetime] | Sequence[float],
    jobs: Sequence[JobRun],
    now: datetime | None = None,
    *,
    window: timedelta = timedelta(days=3),
    grace: timedelta = GRACE,
    recreated: bool = False,
) -> Health:
    """The mark of one cluster from its recent object times (sorted) and its kept Jobs.

    Of a re-created cluster, ``times`` are those written since its creation, and
    ``recreated`` says storage also holds its predecessor's (which cover none of its runs)."""
    now = now or datetime.now(UTC)
    keys = _epochs(times)
    first = datetime.fromtimestamp(keys[0], UTC) if keys else None
    last = datetime.fromtimestamp(keys[-1], UTC) if keys else None
    if not cluster.in_kubernetes:
        return Health(HealthMark.GONE, "known only to storage")
    if not cluster.logical_backup:
        return Health(HealthMark.OFF, "logical backups are not enabled")
    failed = _failed_job(jobs)
    if failed is not None and not (last and failed.started and last > failed.started):
        why = failed.reason or "failed"
        return Health(HealthMark.FAILED, f"job {failed.name} failed ({why})")
    if not cluster.schedule:
        return Health(HealthMark.OK if times else HealthMark.NO_BACKUPS, "no schedule known")
    # The window, rounded to the minute so that one computation serves every cluster, and
    # widened to the last two runs for schedules sparser than it (weekly, monthly).
    end = now.replace(second=0, microsecond=0)
    try:
        last_two = previous_runs(cluster.schedule, end - grace, 2)
        start = min(end - window, last_two[0])
        bounds, edges = _bounds(cluster.schedule, start, now)
    except ScheduleError as exc:
        return Health(HealthMark.BAD_SCHEDULE, str(exc))
    # The runs judged, without a Run per run, as a catalog of thousands marks every
    # cluster at start. Nothing was due before the
    # cluster existed, nor before the first object it kept; a run still in its grace, or
    # one a running job may yet cover, is not judged.
    running = [j.started for j in jobs if j.status == "running" and j.started]
    not_before = cluster.created - SKEW if cluster.created is not None else None
    n = len(bounds) - 1
    lo = 0  # the first run judged (the runs before it are excluded, and they are a prefix)
    if not_before is not None:
        lo = bisect.bisect_left(bounds, not_before)
    if first is not None:
        lo = max(lo, bisect.bisect_right(bounds, first) - 1)
    # Where each run's objects begin in ``keys``; a run has an object when the next run's
    # begin further on. Computed with C-level map()s: this runs 72 times per cluster.
    where = list(map(functools.partial(bisect.bisect_left, keys), edges[lo:]))
    present = list(map(operator.lt, where, where[1:]))  # present[i - lo] for run i
    empty = [lo + i for i in itertools.compress(range(n - lo), map(operator.not_, present))]
    missing = [
        i
        for i in empty
        if _judged(bounds[i], bounds[i + 1], now, grace)
        and not any(t >= bounds[i] for t in running)
    ]
    last_present = next((i for i in range(n - 1, lo - 1, -1) if present[i - lo]), None)
    if not times:
        if not missing:
            return Health(HealthMark.OK, "the first run is not due yet")
        if recreated:
            return Health(
                HealthMark.NO_BACKUPS, "none since the cluster was re-created (only earlier uids')"
            )
        return Health(HealthMark.NO_BACKUPS, "backups are on but storage holds none")
    if missing and (last_present is None or missing[-1] > last_present):
        since = bounds[last_present] if last_present is not None else last
        return Health(HealthMark.LATE, f"no backup since {since:%Y-%m-%d %H:%M} UTC")
    if missing:
        at = bounds[missing[-1]]
        return Health(
            HealthMark.MISSING,
            f"{len(missing)} expected run(s) without a backup, the last at {at:%Y-%m-%d %H:%M} UTC",
            len(missing),
        )
    if running:
        return Health(HealthMark.OK, "a backup job is running")
    return Health(
        HealthMark.OK, f"every run of {cluster.schedule!r} in the last days has its backup"
    )


def _failed_job(jobs: Sequence[JobRun]) -> JobRun | None:
    """The newest finished Job when it failed (a later success clears an older failure)."""
    epoch0 = datetime.fromtimestamp(0, UTC)
    finished = sorted(
        (j for j in jobs if j.status in ("failed", "succeeded")),
        key=lambda j: j.started or epoch0,
    )
    if finished and finished[-1].status == "failed":
        return finished[-1]
    return None


# --- the coverage grid --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CoverageDay:
    day: datetime  # midnight UTC
    cells: tuple[CoverageCell, ...]  # 24, one per hour


def coverage(
    schedule: str | None,
    backups: Sequence[tuple[datetime, int]],
    now: datetime,
    *,
    days: int = 14,
    since: datetime | None = None,
    grace: timedelta = GRACE,
) -> list[CoverageDay]:
    """The last ``days`` days by hour, newest day first: a ``CoverageCell`` per hour.

    An hour is PRESENT when an object was written in it, UNUSUAL when that object's size
    is an outlier, MISSING when a run started in it found no object in its window,
    PENDING for a run still within its grace, NONE where nothing was expected, BEFORE
    ahead of ``since`` (the cluster's creation or first backup) and FUTURE after now.
    """
    ordered = sorted(backups)
    times = [t for t, _ in ordered]
    flags = size_outliers([s for _, s in ordered])
    end_day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = end_day - timedelta(days=days - 1)
    start = first_day if since is None else max(first_day, since)
    state: dict[datetime, CoverageCell] = {}
    if schedule:
        try:
            for r in runs(schedule, times, start, now, grace):
                hour = r.at.replace(minute=0, second=0, microsecond=0)
                missing = r.state is RunState.MISSING
                if missing or (r.state is RunState.PENDING and hour not in state):
                    state[hour] = CoverageCell.MISSING if missing else CoverageCell.PENDING
        except ScheduleError:
            pass
    for t, flag in zip(times, flags, strict=True):
        if t < first_day:
            continue
        hour = t.replace(minute=0, second=0, microsecond=0)
        if state.get(hour) is CoverageCell.MISSING:
            continue  # another run of this hour left no object: that is what shows
        unusual = flag or state.get(hour) is CoverageCell.UNUSUAL
        state[hour] = CoverageCell.UNUSUAL if unusual else CoverageCell.PRESENT
    out = []
    for d in range(days):
        day = end_day - timedelta(days=d)
        cells = []
        for h in range(24):
            hour = day + timedelta(hours=h)
            if hour in state:
                cells.append(state[hour])
            elif hour > now:
                cells.append(CoverageCell.FUTURE)
            elif since is not None and hour + timedelta(hours=1) <= since:
                cells.append(CoverageCell.BEFORE)
            else:
                cells.append(CoverageCell.NONE)
        out.append(CoverageDay(day, tuple(cells)))
    return out
