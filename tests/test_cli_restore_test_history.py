"""``pgdeck restore-test --history`` over a real local archive: the table, ``--json``, the
filter by cluster and the exit codes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.archive import open_archive
from tests.conftest import write_config
from tests.restore_test_docs import archive_test, document
from tui.cli import main

NOW = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"enabled": False},
            "cache": str(tmp_path / "cache"),
            "archive": str(tmp_path / "archive"),
        },
    )


def history(tmp_path: Path, *extra: str) -> int:
    path = config(tmp_path)
    return main(["--config", str(path), "restore-test", "--history", *extra], clock=lambda: NOW)


@pytest.fixture
def archived(tmp_path: Path) -> Path:
    archive = open_archive(tmp_path / "archive", lambda: NOW)
    archive_test(archive, document("acid-main", NOW - 100 * DAY, ttr=700.0))
    archive_test(
        archive, document("acid-shop", NOW - 3 * DAY, "failed", ttr=4000.0, teardown="kept")
    )
    archive_test(archive, {"result": "passed", "source": {"cluster": "acid-bare\x1b[31m"}})
    return tmp_path


def test_history_prints_a_table_newest_first(
    archived: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert history(archived) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [re.split(r"\s{2,}", line) for line in lines]
    assert rows[0] == [
        "CLUSTER", "WHEN (UTC)", "AGE", "RESULT", "TTR / OBJECTIVE", "BACKUP", "TEARDOWN", "REPORT",
    ]  # fmt: skip
    shop, main_, bare = rows[1:]
    assert shop[:7] == [
        "shop/acid-shop", "2026-11-28 04:30", "3 days ago", "failed", "1h06m / 1h00m",
        "2026-11-28 01:30", "kept",
    ]  # fmt: skip
    assert shop[7].startswith(str(archived / "archive" / "restore-tests")) and shop[7].endswith(
        ".md"
    )
    assert main_[:5] == [
        "shop/acid-main",
        "2026-08-23 04:30",
        "3 months ago",
        "passed",
        "11m40s / 1h00m",
    ]
    # A report with nothing but a cluster: dashes, and its escape sequence shown, not obeyed.
    assert bare[:7] == ["acid-bare\\x1b[31m", "-", "-", "passed", "-", "-", "-"]


def test_history_of_one_cluster_as_json(archived: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert history(archived, "acid-shop", "--json") == 0
    [test] = json.loads(capsys.readouterr().out)
    assert (test["cluster"], test["namespace"], test["result"]) == ("acid-shop", "shop", "failed")
    assert (test["ttr_seconds"], test["objective_seconds"], test["objective_met"]) == (
        4000.0,
        3600.0,
        False,
    )
    assert test["finished_at"] == "2026-11-28T04:30:00Z" and test["teardown"] == "kept"
    assert test["report"].endswith(".md") and test["reasons"] == ["the test failed"]


def test_no_tests_is_said_on_stderr_and_is_no_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert history(tmp_path, "acid-none") == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err.strip()
        == f"pgdeck: no restore tests of acid-none in {tmp_path / 'archive'} yet"
    )
    assert history(tmp_path, "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_an_archive_that_cannot_be_read_is_one_line_and_exit_1(
    tmp_path: Path, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = {"url": "s3://no-such-bucket/pgdeck", "endpoint_url": s3_endpoint}
    path = write_config(
        tmp_path / "config.yaml", {"kubernetes": {"enabled": False}, "archive": archive}
    )
    assert main(["--config", str(path), "restore-test", "--history"], clock=lambda: NOW) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("pgdeck: ") and "no-such-bucket" in line


def test_history_takes_one_cluster_at_most(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["restore-test", "--history", "acid-a", "acid-b"]) == 2
    assert "--history takes one cluster at most" in capsys.readouterr().err
