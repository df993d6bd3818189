"""Every ``--json`` output and archived document: values by their ``to_dict()``, instants by ``iso``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.jsonable import iso, to_json
from services.models import Backup, CronJobState, JobRun, PodRun

T = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)


def test_an_instant_is_written_in_utc_with_a_z() -> None:
    assert iso(T) == "2026-11-20T12:20:00Z"
    assert iso(T + timedelta(microseconds=250)) == "2026-11-20T12:20:00.000250Z"
    assert iso(T.astimezone(timezone(timedelta(hours=2)))) == "2026-11-20T12:20:00Z"
    assert iso(None) is None


def test_values_lists_and_dicts_of_them_become_json_types() -> None:
    backup = Backup("s3://b/k", "s3://b", "k", "acid-shop", "u1", T, 10)
    pod = PodRun("ns", "p", "Failed", T, None, 1, "OOMKilled")
    job = JobRun("ctx", "ns", "j", "acid-shop", T, None, "failed", None, None, (pod,))
    cronjob = CronJobState("ns", "cj", "0 * * * *", False, T, None, 0)
    assert to_json([backup]) == [backup.to_dict()]
    assert backup.to_dict()["time"] == "2026-11-20T12:20:00Z"
    assert to_json({"cronjob": cronjob, "jobs": (job,), "at": T, "none": None}) == {
        "cronjob": cronjob.to_dict(),
        "jobs": [job.to_dict()],
        "at": "2026-11-20T12:20:00Z",
        "none": None,
    }
    assert job.to_dict()["pods"] == [
        {
            "name": "p",
            "phase": "Failed",
            "started": "2026-11-20T12:20:00Z",
            "finished": None,
            "exit_code": 1,
            "reason": "OOMKilled",
        }
    ]
