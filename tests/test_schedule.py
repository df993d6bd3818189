"""The next run of a cluster's backup schedule, on fixed clocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.models import Cluster, CronJobState
from services.schedule import next_backup_run, next_run_after

NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)


def cluster(schedule: str | None = "0 * * * *", cronjob: CronJobState | None = None) -> Cluster:
    return Cluster(
        "acid-orders",
        "shop",
        "u1",
        "test",
        logical_backup=True,
        schedule=schedule,
        cronjob=cronjob,
    )


def cronjob(schedule: str = "0 * * * *", **kw: object) -> CronJobState:
    cj = CronJobState("shop", "logical-backup-acid-orders", schedule, False, None, None, 0)
    return replace(cj, **kw)  # type: ignore[arg-type]


def test_an_hourly_schedule_runs_at_the_next_full_hour() -> None:
    assert next_backup_run(cluster("0 * * * *"), NOW) == datetime(2026, 3, 10, 15, tzinfo=UTC)


def test_a_daily_schedule_runs_tomorrow_once_today_s_run_has_passed() -> None:
    assert next_backup_run(cluster("30 2 * * *"), NOW) == datetime(2026, 3, 11, 2, 30, tzinfo=UTC)


def test_a_run_exactly_now_is_not_next() -> None:
    top = datetime(2026, 3, 10, 15, tzinfo=UTC)
    assert next_backup_run(cluster("0 * * * *"), top) == datetime(2026, 3, 10, 16, tzinfo=UTC)


def test_the_cronjob_s_schedule_wins_over_the_manifest_s() -> None:
    c = cluster("0 * * * *", cronjob("0 3 * * *"))
    assert next_backup_run(c, NOW) == datetime(2026, 3, 11, 3, tzinfo=UTC)


def test_a_suspended_cronjob_has_no_next_run() -> None:
    assert next_backup_run(cluster("0 * * * *", cronjob(suspended=True)), NOW) is None


def test_backups_off_no_schedule_or_storage_only_have_no_next_run() -> None:
    assert next_backup_run(replace(cluster(), logical_backup=False), NOW) is None
    assert next_backup_run(cluster(None), NOW) is None
    assert next_backup_run(replace(cluster(), in_kubernetes=False), NOW) is None


@pytest.mark.parametrize(
    "schedule",
    [
        "not a schedule",
        "61 * * * *",
        "0 0 31 2 *",
        "* * * * * * * *",
        "",
        "CRON_TZ=Mars/X 0 * * * *",
    ],
)
def test_a_schedule_croniter_cannot_read_gives_none_not_an_error(schedule: str) -> None:
    assert next_backup_run(cluster(schedule), NOW) is None
    assert next_backup_run(cluster("0 * * * *", cronjob(schedule or "0 0 31 2 *")), NOW) is None


def test_the_cronjob_s_time_zone_is_honoured() -> None:
    # 02:30 in Berlin is 01:30 UTC in March before the switch to summer time.
    c = cluster(cronjob=cronjob("30 2 * * *", time_zone="Europe/Berlin"))
    assert next_backup_run(c, NOW) == datetime(2026, 3, 11, 1, 30, tzinfo=UTC)


def test_an_unknown_time_zone_gives_none() -> None:
    c = cluster(cronjob=cronjob("0 * * * *", time_zone="Mars/Olympus_Mons"))
    assert next_backup_run(c, NOW) is None
    assert next_run_after("0 * * * *", NOW, "../../etc/passwd") is None


def test_the_next_run_crosses_a_month_and_a_year_boundary() -> None:
    eve = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    assert next_run_after("0 0 * * *", eve) == datetime(2027, 1, 1, tzinfo=UTC)
    month_end = datetime(2026, 4, 30, 22, tzinfo=UTC)
    assert next_run_after("0 1 1 * *", month_end) == datetime(2026, 5, 1, 1, tzinfo=UTC)
    assert next_run_after("0 0 29 2 *", NOW) == datetime(2028, 2, 29, tzinfo=UTC)


def test_the_cronjob_s_time_zone_is_read_from_its_spec() -> None:
    from sandbox import kube as ko
    from services.resources import cronjob_state

    obj = ko.cronjob(ko.postgresql("acid-orders", "shop", created=NOW), schedule="30 2 * * *")
    assert cronjob_state(obj).time_zone is None
    obj["spec"]["timeZone"] = "Europe/Berlin"
    assert cronjob_state(obj).time_zone == "Europe/Berlin"
