"""When a cluster's backup CronJob runs next, for people asking "when is the next backup?".

Schedules and time zones come from Kubernetes objects, so they are untrusted: one that
croniter cannot read (or a time zone this machine does not know) gives no next run,
never an exception. The CronJob's own schedule wins over the manifest's, since that is
what the CronJob controller runs; without a ``timeZone`` it reads the schedule in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from services.models import Cluster


def next_backup_run(cluster: Cluster, now: datetime) -> datetime | None:
    """The first run of the cluster's backup schedule after ``now`` (UTC), or None:
    backups off, a suspended CronJob, no schedule, or one that cannot be scheduled."""
    if not cluster.in_kubernetes or not cluster.logical_backup:
        return None
    cj = cluster.cronjob
    if cj is not None and cj.suspended:
        return None
    schedule = cj.schedule if cj is not None and cj.schedule else cluster.schedule
    return next_run_after(schedule, now, cj.time_zone if cj is not None else None)


def next_run_after(
    schedule: str | None, now: datetime, time_zone: str | None = None
) -> datetime | None:
    """The first start of ``schedule`` after ``now``, read in ``time_zone`` (an IANA name;
    None is UTC), as a UTC datetime; None when either cannot be read."""
    if not schedule:
        return None
    try:
        zone = ZoneInfo(time_zone) if time_zone else UTC
        if not croniter.is_valid(schedule):
            return None
        at = croniter(schedule, now.astimezone(zone)).get_next(datetime)
    except Exception:  # untrusted input: croniter and zoneinfo raise many kinds of error
        return None
    return at.astimezone(UTC)  # type: ignore[no-any-return]
