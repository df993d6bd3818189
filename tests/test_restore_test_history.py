"""The restore tests' history read back from a real archive: untrusted documents, stale and
fresh against an injected clock on any date, the time-to-restore per calendar quarter."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.archive import open_archive
from services.marks import RestoreTestMark
from services.restore_test_history import (
    STALE_AFTER,
    by_cluster,
    find,
    mark,
    parse,
    quarter_series,
    read_tests,
)
from tests.restore_test_docs import archive_test, document

NOW = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def test_tests_are_read_from_the_archive_newest_first_with_every_field(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    archive_test(archive, document("acid-main", NOW - 40 * DAY, ttr=700.0))
    archive_test(archive, document("acid-main", NOW - 2 * DAY, "failed", ttr=4000.0))
    archive_test(archive, document("acid-shop", NOW - 10 * DAY, teardown="kept"))
    tests = read_tests(archive)
    assert [(t.cluster, t.result) for t in tests] == [
        ("acid-main", "failed"),
        ("acid-shop", "passed"),
        ("acid-main", "passed"),
    ]
    last = tests[0]
    assert (last.namespace, last.context, last.run_id) == ("shop", "test", "20261129t043000-a1b2c3")
    assert last.finished == NOW - 2 * DAY
    assert (last.ttr_seconds, last.objective_seconds, last.objective_met) == (4000.0, 3600.0, False)
    assert last.backup_url.endswith("/1763640000.sql.gz")
    assert last.backup_time == NOW - 2 * DAY - timedelta(hours=3)
    assert last.staging == "pgdeck-restore-test-acid-main-a1b2c3"
    assert (last.teardown, tests[1].teardown) == ("deleted", "kept")
    assert last.reasons == ("the test failed",)
    assert last.report_location.startswith("restore-tests/") and last.report_location.endswith(
        ".md"
    )
    assert archive.read(last.report_location).startswith(b"# Restore test failed: acid-main")
    assert last.report_url == str(tmp_path / "archive" / last.report_location)
    # The JSON form is JSON.
    assert json.loads(json.dumps(last.to_dict()))["backup"]["time"] == "2026-11-29T01:30:00Z"


def test_untrusted_fields_are_left_out_and_a_report_without_a_cluster_is_skipped(
    tmp_path: Path,
) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    odd: dict[str, Any] = {
        "result": "passed\x1b]0;owned\x07",
        "run_id": ["not", "text"],
        "source": {"cluster": "acid-odd\x1b[2J", "namespace": 7, "context": None},
        "test_finished_at": "yesterday",
        "test_started_at": 1234,
        "objective": {"rto_seconds": "3600", "measured_seconds": math.nan, "met": "yes"},
        "time_to_restore": {"total_seconds": True},
        "backup_object": "s3://not/a/mapping",
        "staging": ["x"],
        "teardown": {"status": {"deep": 1}},
        "reasons": "not a list",
    }
    archive_test(archive, odd)
    archive_test(archive, {"result": "passed", "source": "acid-main"})  # no cluster named
    archive_test(archive, {"result": "failed", "source": {"cluster": ""}})
    archive_test(archive, {"result": "failed", "time_to_restore": {"total_seconds": -5}})
    archive.store.put_new("restore-tests/20261201T000000Z-x-0000.json", b"[1, 2]")
    archive.store.put_new("restore-tests/20261201T000001Z-y-0000.json", b"{not json")
    tests = read_tests(archive)
    assert len(tests) == 1
    t = tests[0]
    assert t.cluster == "acid-odd\\x1b[2J" and "\x1b" not in t.result
    assert (t.namespace, t.context, t.run_id) == ("", "", "")
    assert (t.started, t.finished, t.when) == (None, None, None)
    assert (t.ttr_seconds, t.objective_seconds, t.objective_met) == (None, None, None)
    assert (t.backup_url, t.backup_time, t.staging, t.teardown, t.reasons) == ("", None, "", "", ())
    assert not t.verdict  # "passed\x1b..." is no result pgdeck knows
    [summary] = by_cluster(tests, NOW)
    assert summary.mark is RestoreTestMark.NEVER and summary.age is None
    assert all(q.seconds is None for q in summary.series)
    assert parse("not a dict") is None and parse({"staging": {"source": "acid-x"}}) is not None


def test_an_interrupted_report_completed_by_recovery_reads_as_interrupted() -> None:
    doc = {k: v for k, v in document("acid-main", NOW).items() if k != "result"}
    test = parse({**doc, "status": "interrupted"})
    assert test is not None and test.result == "interrupted" and not test.verdict


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 1, 4, 30, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),  # a leap day
        datetime(2031, 1, 1, 0, 0, tzinfo=UTC),  # the first instant of a year
    ],
)
def test_a_passed_test_goes_stale_after_a_quarter_whatever_the_date(now: datetime) -> None:
    def judged(*tests: dict[str, Any]) -> RestoreTestMark:
        parsed = [parse(d) for d in tests]
        return mark([t for t in parsed if t is not None], now)

    fresh = document("a", now - STALE_AFTER)
    old = document("a", now - STALE_AFTER - timedelta(seconds=1))
    assert judged(fresh) is RestoreTestMark.OK
    assert judged(old) is RestoreTestMark.STALE
    assert judged(document("a", now - DAY, "failed"), fresh) is RestoreTestMark.FAILED
    assert judged(document("a", now - DAY, "error"), fresh) is RestoreTestMark.FAILED
    # A cancelled or interrupted test says nothing of the backups: the one before counts.
    assert judged(document("a", now - DAY, "cancelled"), fresh) is RestoreTestMark.OK
    assert judged(document("a", now - DAY, "cancelled"), old) is RestoreTestMark.STALE
    assert judged(document("a", now - DAY, "cancelled")) is RestoreTestMark.NEVER
    assert judged() is RestoreTestMark.NEVER
    [summary] = by_cluster([t for t in [parse(old)] if t], now)
    assert summary.age == STALE_AFTER + timedelta(seconds=1)


def test_the_series_has_the_slowest_measured_test_of_each_quarter_ending_with_the_clocks() -> None:
    q4 = datetime(2026, 10, 1, tzinfo=UTC)  # the first instant of 2026-Q4
    tests = [
        parse(d)
        for d in (
            document("a", NOW - DAY, ttr=500.0),
            document("a", q4 + timedelta(hours=1), "failed", ttr=4000.0),
            document("a", q4 + timedelta(days=2), "error", ttr=9000.0),  # stopped part-way
            document("a", q4 - timedelta(seconds=1), ttr=900.0),  # the last instant of Q3
            document("a", q4 - 180 * DAY, "cancelled", ttr=9000.0),
            document("a", q4 - 180 * DAY, ttr=1200.0),  # 2026-Q2
            document("a", q4 - 3 * 365 * DAY, ttr=100.0),  # before the series
        )
    ]
    series = quarter_series([t for t in tests if t is not None], NOW)
    assert [q.quarter for q in series] == [
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
    ]
    assert [q.seconds for q in series] == [None, None, None, None, None, 1200.0, 900.0, 4000.0]
    # A clock in January: the series ends with the new year's first quarter, empty.
    january = quarter_series([t for t in tests if t is not None], datetime(2027, 1, 2, tzinfo=UTC))
    assert (january[-1].quarter, january[-1].seconds) == ("2027-Q1", None)
    assert (january[-2].quarter, january[-2].seconds) == ("2026-Q4", 4000.0)


def test_clusters_of_the_catalog_find_their_tests_by_name_namespace_and_context() -> None:
    tests = [
        parse(document("acid-main", NOW - DAY, namespace="shop", context="prod")),
        parse(document("acid-main", NOW - DAY, "failed", namespace="billing", context="")),
        parse({**document("acid-solo", NOW - DAY), "source": {"cluster": "acid-solo"}}),
    ]
    histories = by_cluster([t for t in tests if t is not None], NOW)
    found = find(histories, "prod", "shop", "acid-main")
    assert found is not None and found.mark is RestoreTestMark.OK
    found = find(histories, "prod", "billing", "acid-main")
    assert found is not None and found.mark is RestoreTestMark.FAILED  # its report names no context
    assert find(histories, "staging", "shop", "acid-main") is None
    assert find(histories, "prod", "anywhere", "acid-solo") is not None
    assert find(histories, "prod", "shop", "acid-other") is None


def test_the_uid_decides_when_both_know_it_whatever_context_the_report_names() -> None:
    def with_uid(uid: str, context: str, finished: datetime) -> dict[str, Any]:
        doc = document("acid-main", finished, context=context)
        return {**doc, "source": {**doc["source"], "uid": uid}}

    tests = [
        parse(with_uid("uid-1", "in-cluster", NOW - DAY)),  # tested from a Job
        parse(with_uid("uid-1", "prod", NOW - 30 * DAY)),  # and from a workstation
    ]
    [history] = by_cluster([t for t in tests if t is not None], NOW)  # one cluster
    assert len(history.tests) == 2
    found = find([history], "prod", "shop", "acid-main", "uid-1")
    assert found is history
    # Re-created under the same name: another cluster, never tested.
    assert find([history], "prod", "shop", "acid-main", "uid-2") is None
