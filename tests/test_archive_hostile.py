"""One hostile file in a real archive directory (nested past the parser's recursion, a time
past what a datetime holds, an int past any float, a running record no pgdeck wrote) hides
nothing else and crashes nothing: the history, recovery, the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.archive import MAX_REPORT, open_archive, recover_quietly
from services.restore_test_history import _seconds, _time, by_cluster, parse, read_tests
from tests.conftest import write_config
from tests.restore_test_docs import archive_test, document
from tui.cli import main

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DEEP = b"[" * 100_000
HOSTILE = "20261130T000000Z-x-deadbeef.json"


@pytest.mark.parametrize("raw", [DEEP, None, b"bigint", b"nan", b"huge"])
def test_one_hostile_report_hides_no_other(tmp_path: Path, raw: bytes | None) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    archive_test(archive, document("acid-main", NOW - timedelta(days=2)))
    doc = document("acid-evil", NOW - timedelta(days=1))
    folder = tmp_path / "archive" / "restore-tests"
    if raw is None:
        doc["test_finished_at"] = "0001-01-01T00:00:00+01:00"
    elif raw == b"bigint":
        doc["time_to_restore"]["total_seconds"] = 10**400
        doc["objective"].update(rto_seconds=-(10**400), measured_seconds=10**400)
    elif raw == b"nan":
        doc["time_to_restore"]["total_seconds"] = float("nan")
        doc["objective"]["measured_seconds"] = float("inf")
    elif raw == b"huge":  # valid JSON, but no report pgdeck writes is this big
        (folder / HOSTILE).write_bytes(b'{"pad": "' + b" " * MAX_REPORT + b'"}')
    else:
        (folder / HOSTILE).write_bytes(raw)
    if raw in (None, b"bigint", b"nan"):
        archive_test(archive, doc)
    tests = read_tests(archive)
    assert any(t.cluster == "acid-main" for t in tests)
    histories = by_cluster(tests, NOW)
    assert "acid-main" in [h.cluster for h in histories]
    evil = [t for t in tests if t.cluster == "acid-evil"]
    if raw is None:
        # test_finished_at holds no time: the report's finished_at is the one shown
        assert [t.finished for t in evil] == [NOW - timedelta(days=1)]
    elif raw in (b"bigint", b"nan"):
        assert evil[0].ttr_seconds is None and evil[0].objective_seconds in (None, 3600.0)
    else:
        assert evil == []
    for h in histories:
        json.dumps(h.to_dict(), allow_nan=False)  # what --json prints stays JSON


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), float("nan"), float("inf"), -1, True, "12", None, [1]]
)
def test_a_number_of_seconds_that_is_none_is_unknown(value: Any) -> None:
    assert _seconds(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-13-01T00:00:00Z",
        "x" * 41,
        10**400,
        None,
    ],
)
def test_a_time_no_datetime_holds_is_unknown(value: Any) -> None:
    assert _time(value) is None


def test_every_field_of_the_wrong_kind_is_left_out() -> None:
    doc = {
        "source": {"cluster": "acid-main", "namespace": ["x"], "uid": 10**400},
        "result": {"a": 1},
        "reasons": ["ok", 5, None, {"x": 1}] + ["r"] * 10_000,
        "objective": {"rto_seconds": "1h", "met": "yes"},
        "backup_object": [],
        "teardown": {"status": 10**400},
        "test_started_at": 10**400,
    }
    t = parse(doc)
    assert t is not None and t.cluster == "acid-main"
    assert (t.namespace, t.uid, t.result, t.teardown) == ("", "", "", "")
    assert t.objective_seconds is None and t.objective_met is None and t.started is None
    assert t.reasons[:1] == ("ok",) and len(t.reasons) == 20


def running_record(tmp_path: Path, name: str, body: bytes) -> None:
    folder = tmp_path / "archive" / "running"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(body)


def gone_record(**extra: Any) -> dict[str, Any]:
    """A restore test's running record from another host, long past its limit."""
    return {
        "kind": "restore-test",
        "label": "acid-old-restore-test",
        "status": "running",
        "started_at": "2026-11-01T00:00:00+00:00",
        "stale_after": "2026-11-03T00:00:00+00:00",
        "host": "elsewhere",
        "pid": 7,
        "document": document("acid-old", NOW - timedelta(days=30)),
        **extra,
    }


def test_recovery_skips_records_it_cannot_read_and_completes_the_others(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    archive_test(archive, document("acid-main", NOW - timedelta(days=2)))
    running_record(tmp_path, "20261101T000000Z-a-00000001.json", DEEP)
    running_record(tmp_path, "20261101T000000Z-b-00000002.json", b"\xff\xfe")
    running_record(tmp_path, "20261101T000000Z-c-00000003.json", b'{"kind": ["x"]}')
    running_record(tmp_path, "20261101T000000Z-d-00000004.json", json.dumps(gone_record()).encode())
    recovered = archive.recover_interrupted()
    assert [(r.name, r.outcome) for r in recovered] == [
        ("20261101T000000Z-d-00000004", "interrupted")
    ]
    tests = read_tests(archive)
    assert {"acid-main", "acid-old"} == {t.cluster for t in tests}
    assert next(t for t in tests if t.cluster == "acid-old").result == "interrupted"


def test_quiet_recovery_goes_on_past_a_record_it_cannot_complete(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    # Its final report's place is taken by a directory: completing it fails.
    running_record(tmp_path, "20261101T000000Z-a-00000001.json", json.dumps(gone_record()).encode())
    (tmp_path / "archive" / "restore-tests" / "20261101T000000Z-a-00000001.json").mkdir(
        parents=True
    )
    running_record(tmp_path, "20261101T000000Z-b-00000002.json", json.dumps(gone_record()).encode())
    recovered = recover_quietly(archive)
    assert [r.name for r in recovered] == ["20261101T000000Z-b-00000002"]
    assert (tmp_path / "archive" / "running" / "20261101T000000Z-a-00000001.json").exists()


# -- the command line ------------------------------------------------------------------------
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"enabled": False},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )


@pytest.mark.parametrize("where", ["restore-tests", "running"])
def test_history_lists_the_good_test_beside_a_hostile_file(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    archive_test(archive, document("acid-main", NOW - timedelta(days=2)))
    if where == "running":
        running_record(tmp_path, HOSTILE, DEEP)
    else:
        (tmp_path / "archive" / where / HOSTILE).write_bytes(DEEP)
    path = config(tmp_path)
    code = main(["--config", str(path), "restore-test", "--history"], clock=lambda: NOW)
    out, err = capsys.readouterr()
    assert code == 0
    assert "acid-main" in out and "Traceback" not in out + err
    code = main(["--config", str(path), "restore-test", "--history", "--json"], clock=lambda: NOW)
    out, err = capsys.readouterr()
    assert code == 0 and [t["cluster"] for t in json.loads(out)] == ["acid-main"]
