"""Health marks, expected runs and the coverage grid, from schedules read by croniter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services import health
from services.marks import CoverageCell, HealthMark
from services.models import Cluster, JobRun

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
H = timedelta(hours=1)


def cluster(schedule: str | None = "0 * * * *", **kw: object) -> Cluster:
    base: dict = dict(
        name="acid-a",
        namespace="default",
        uid="u1",
        context="prod",
        logical_backup=True,
        schedule=schedule,
        created=NOW - timedelta(days=30),
    )
    base.update(kw)
    return Cluster(**base)


def hourly(hours: int, *, skip: tuple[int, ...] = (), minute: int = 4) -> list[datetime]:
    """Object times for the last ``hours`` runs (0 = the newest run, at 12:00)."""
    top = NOW.replace(minute=0)
    return sorted(top - k * H + timedelta(minutes=minute) for k in range(hours) if k not in skip)


def job(name: str, status: str, started: datetime, reason: str | None = None) -> JobRun:
    return JobRun("prod", "default", name, "acid-a", started, started + H / 6, status, reason, None)


def test_every_hour_present_is_ok() -> None:
    h = health.cluster_health(cluster(), hourly(72), [], NOW)
    assert h.mark == HealthMark.OK


def test_a_gap_in_the_last_days_is_missing_with_its_count() -> None:
    h = health.cluster_health(cluster(), hourly(72, skip=(5, 6, 30)), [], NOW)
    assert h.label == "missing 3" and h.mark is HealthMark.MISSING
    assert "2026-11-20 07:00" in h.detail  # the newest missing run (12:00 - 5 h)


def test_no_object_for_the_last_judged_run_is_late() -> None:
    h = health.cluster_health(cluster(), hourly(72, skip=(0, 1, 2)), [], NOW)
    assert h.mark == HealthMark.LATE
    assert "09:00" in h.detail


def test_the_newest_run_within_its_grace_is_pending_not_late() -> None:
    # 12:00 ran 20 minutes ago: no object yet is fine.
    h = health.cluster_health(cluster(), hourly(72, skip=(0,)), [], NOW)
    assert h.mark == HealthMark.OK


def test_a_daily_schedule_expects_one_object_a_day() -> None:
    daily = [NOW.replace(hour=1, minute=10) - timedelta(days=d) for d in range(10)]
    c = cluster("0 1 * * *")
    assert health.cluster_health(c, sorted(daily), [], NOW).mark == HealthMark.OK
    runs = health.runs("0 1 * * *", sorted(daily), NOW - timedelta(days=7), NOW)
    assert len(runs) == 7 and {r.state for r in runs} == {"present"}
    gap = sorted(t for t in daily if t.day != 18)
    assert health.cluster_health(c, gap, [], NOW).label == "missing 1"


def test_a_failed_newest_job_wins_until_a_later_run_succeeds() -> None:
    failed = job("b-1", "failed", NOW - 2 * H, "BackoffLimitExceeded")
    before = hourly(72, skip=(0, 1, 2))  # nothing since the failed run
    h = health.cluster_health(cluster(), before, [failed], NOW)
    assert h.mark == HealthMark.FAILED and "BackoffLimitExceeded" in h.detail
    ok = job("b-2", "succeeded", NOW - H)
    assert health.cluster_health(cluster(), hourly(72), [failed, ok], NOW).mark == HealthMark.OK
    # A newer object clears it too, when Kubernetes no longer keeps the successful Job.
    assert health.cluster_health(cluster(), hourly(72), [failed], NOW).mark == HealthMark.OK


def test_schedules_that_never_run_sparse_ones_and_running_jobs() -> None:
    never = cluster("0 0 31 2 *")  # valid to croniter, but February has no 31st
    assert health.cluster_health(never, hourly(3), [], NOW).mark == HealthMark.BAD_SCHEDULE
    grid = health.coverage("0 0 31 2 *", [], NOW)
    assert len(grid) == 14
    weekly = cluster("0 0 * * 0")  # Sundays; NOW is a Friday
    sundays = [datetime(2026, 11, 1, 0, 5, tzinfo=UTC), datetime(2026, 11, 8, 0, 5, tzinfo=UTC)]
    h = health.cluster_health(weekly, sundays, [], NOW)
    assert h.mark == HealthMark.LATE  # Nov 15 left no object, five days ago
    young = cluster(created=NOW - 2 * H, schedule="30 1 * * *")
    assert health.cluster_health(young, [], [], NOW).mark == HealthMark.OK  # first run tomorrow
    running = job("b-3", "running", NOW.replace(minute=0) - H)
    long_dump = health.cluster_health(cluster(), hourly(72, skip=(1,)), [running], NOW)
    assert long_dump.mark == HealthMark.OK and "running" in long_dump.detail


def test_an_object_stamped_just_before_its_run_still_covers_it() -> None:
    daily = [NOW.replace(hour=0, minute=59, second=55) - timedelta(days=d) for d in range(5)]
    assert health.cluster_health(cluster("0 1 * * *"), sorted(daily), [], NOW).mark == HealthMark.OK


def test_a_missed_run_shows_even_when_its_hour_has_another_object() -> None:
    quarter = [
        NOW.replace(minute=0) - timedelta(minutes=15 * k) + timedelta(minutes=1)
        for k in range(1, 40)
    ]
    gap = sorted(t for t in quarter if t.strftime("%H:%M") != "10:31")
    grid = health.coverage("*/15 * * * *", [(t, 10_000) for t in gap], NOW)
    assert grid[0].cells[10] == CoverageCell.MISSING and grid[0].cells[9] == CoverageCell.PRESENT


def test_marks_for_clusters_without_backups() -> None:
    assert health.cluster_health(cluster(), [], [], NOW).mark == HealthMark.NO_BACKUPS
    off = cluster(logical_backup=False)
    assert health.cluster_health(off, [], [], NOW).mark == HealthMark.OFF
    gone = cluster(in_kubernetes=False)
    assert health.cluster_health(gone, hourly(3), [], NOW).mark == HealthMark.GONE
    bad = cluster("every hour")
    assert health.cluster_health(bad, hourly(3), [], NOW).mark == HealthMark.BAD_SCHEDULE


def test_a_young_cluster_is_not_missing_runs_before_it_existed() -> None:
    young = cluster(created=NOW - 5 * H)
    assert health.cluster_health(young, hourly(5), [], NOW).mark == HealthMark.OK


def test_size_outliers_follow_growth_but_catch_drops_and_jumps() -> None:
    growing = [100_000 + 1_000 * i for i in range(48)]
    assert health.size_outliers(growing) == [None] * 48
    planted = [*growing[:30], 40_000, *growing[31:40], 500_000, *growing[41:], 900]
    flags = health.size_outliers(planted)
    assert flags[30] == "small" and flags[40] == "large" and flags[-1] == "near-empty"
    assert [i for i, f in enumerate(flags) if f] == [30, 40, len(planted) - 1]


def test_the_coverage_grid_shows_missing_unusual_and_future_hours() -> None:
    times = hourly(24 * 14, skip=(0, 3, 50))
    sizes = [100_000] * len(times)
    sizes[-10] = 1_000  # the tenth newest object: 11 h ago, as 12:00 and 09:00 have none
    grid = health.coverage("0 * * * *", list(zip(times, sizes, strict=True)), NOW)
    assert len(grid) == 14 and all(len(d.cells) == 24 for d in grid)
    today = grid[0]
    assert today.day == NOW.replace(hour=0, minute=0)
    assert today.cells[12] == CoverageCell.PENDING  # 12:00, 20 minutes ago, no object yet
    assert today.cells[13] == "future"
    assert today.cells[9] == CoverageCell.MISSING  # 12:00 - 3 h
    assert today.cells[1] == CoverageCell.UNUSUAL
    assert grid[2].cells[10] == CoverageCell.MISSING  # 12:00 - 50 h: two days ago, 10:00
    flat = [c for d in grid for c in d.cells]
    assert (
        flat.count(CoverageCell.MISSING) == 2
        and flat.count(CoverageCell.PENDING) == 1
        and flat.count(CoverageCell.UNUSUAL) == 1
    )


def test_the_coverage_grid_marks_hours_before_the_cluster_existed() -> None:
    grid = health.coverage("0 * * * *", [], NOW, since=NOW - 3 * H)
    assert grid[0].cells[:9] == (CoverageCell.BEFORE,) * 9
    # 09:20 is the start: the 09:00 run was before it, 10:00 and 11:00 are missing.
    assert grid[0].cells[9:13] == ("none", "missing", "missing", "pending")
    assert grid[5].cells == (CoverageCell.BEFORE,) * 24


@pytest.mark.parametrize("schedule", ["", "61 * * * *", "not a schedule"])
def test_expected_runs_refuses_a_malformed_schedule(schedule: str) -> None:
    with pytest.raises(health.ScheduleError):
        health.expected_runs(schedule, NOW - H, NOW)


def _mark_from_runs(c: Cluster, times: list[datetime], jobs: list[JobRun]) -> str:
    """The mark as the review sees it: every run from ``health.runs`` (one ``Run`` each),
    judged in a plain loop. The console's fast path must agree with it."""
    end = NOW.replace(second=0, microsecond=0)
    assert c.schedule is not None and c.created is not None
    start = min(end - timedelta(days=3), health.previous_runs(c.schedule, end - health.GRACE, 2)[0])
    running = [j.started for j in jobs if j.status == "running" and j.started]
    judged = [
        (r.at, r.state == "present")
        for r in health.runs(c.schedule, times, start, NOW)
        if r.at >= c.created - health.SKEW
        and not (times and r.until <= times[0])
        and (r.state == "present" or (r.state == "missing" and not any(t >= r.at for t in running)))
    ]
    if not times:
        return HealthMark.NO_BACKUPS if judged else HealthMark.OK
    if judged and not judged[-1][1]:
        return HealthMark.LATE
    missing = sum(1 for _, present in judged if not present)
    return f"{HealthMark.MISSING} {missing}" if missing else HealthMark.OK


@pytest.mark.parametrize("seed", range(40))
def test_the_console_marks_agree_with_the_reviews_runs(seed: int) -> None:
    import random

    rnd = random.Random(seed)
    schedule = rnd.choice(["0 * * * *", "*/15 * * * *", "30 1 * * *", "0 0 * * 0", "5 */6 * * *"])
    created = NOW - timedelta(hours=rnd.choice([1, 5, 30, 200, 2000]))
    c = cluster(schedule, created=created)
    runs = health.expected_runs(schedule, NOW - timedelta(days=10), NOW)
    drop = rnd.random() * 0.3
    times = sorted(
        at + timedelta(minutes=rnd.choice([-1, 0, 3, 20]))
        for at in runs
        if at >= created and rnd.random() > drop
    )
    times = [t for t in times if t < NOW]
    jobs = []
    if rnd.random() < 0.3 and runs:
        jobs.append(job("b-1", "running", rnd.choice(runs[-5:])))
    assert health.cluster_health(c, times, jobs, NOW).label == _mark_from_runs(c, times, jobs)
