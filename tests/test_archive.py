"""The archive an auditor can trust: unique names written once, a hash-chained audit log
whose every edit, deletion and reordering `pgdeck audit verify` names, reports of dead
processes completed as interrupted; a local directory and moto's S3 server alike."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.archive import Archive, open_archive, os_user, process_identity
from services.archive_store import GENESIS, Exists
from services.config import StorageLocation
from services.errors import ArchiveError
from tests.conftest import seed, storage_config, write_config
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def pinned() -> datetime:
    return NOW


def restore_doc(n: int, status: str = "succeeded") -> dict[str, Any]:
    return {
        "status": status,
        "backup": f"s3://b/spilo/acid-a/0f/logical_backups/{1763600000 + n}.sql.gz",
        "target": "postgres@staging:5432/postgres",
        "target_name": "staging",
    }


def fill(archive: Archive, n: int = 4) -> list[Any]:
    """n reports, restores and reviews by turns, all in the same (pinned) second."""
    done = []
    for i in range(n):
        if i % 2:
            done.append(
                archive.complete(
                    None, "review", "review", {"n": i}, f"# review {i}\n", {"reviewer": "Ada"}
                )
            )
        else:
            doc = restore_doc(i)
            done.append(
                archive.complete(
                    archive.begin("restore", "acid-a-to-staging", doc),
                    "restore",
                    "acid-a-to-staging",
                    doc,
                    f"# Restore succeeded {i}\n",
                    {"outcome": "succeeded", "backup": doc["backup"], "target": doc["target"]},
                )
            )
    return done


def lines(root: Path) -> list[str]:
    return (root / "audit.log").read_text().splitlines()


def write_lines(root: Path, kept: list[str]) -> None:
    (root / "audit.log").write_text("".join(line + "\n" for line in kept))


@pytest.fixture
def local(tmp_path: Path) -> tuple[Archive, Path]:
    root = tmp_path / "archive"
    return open_archive(root, pinned), root


def verify_cli(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = main(["--config", str(config), "audit", "verify"], clock=pinned)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def archived(tmp_path: Path, local: tuple[Archive, Path]) -> tuple[Archive, Path, Path]:
    archive, root = local
    fill(archive)
    config = write_config(
        tmp_path / "config.yaml", {"kubernetes": {"enabled": False}, "archive": str(root)}
    )
    return archive, root, config


# --- names, exclusive creation --------------------------------------------------------------
def test_two_reports_in_the_same_second_get_two_files(local: tuple[Archive, Path]) -> None:
    archive, root = local
    a, b = (
        archive.complete(None, "review", "review", {"n": n}, "# r\n", {"reviewer": "Ada"})
        for n in (1, 2)
    )
    assert a.json != b.json and a.json.startswith("reviews/20261120T122000Z-review-")
    assert sorted(p.name for p in (root / "reviews").iterdir()) == sorted(
        Path(x).name for x in (a.json, a.markdown, b.json, b.markdown)
    )
    assert json.loads((root / a.json).read_text()) == {"n": 1}
    assert json.loads((root / b.json).read_text()) == {"n": 2}
    assert (a.seq, b.seq) == (1, 2)


def test_an_existing_name_is_never_overwritten(local: tuple[Archive, Path]) -> None:
    archive, root = local
    doc = restore_doc(1)
    pending = archive.begin("restore", "acid-a-to-staging", doc)
    final = root / "restores" / f"{pending.name}.json"
    final.parent.mkdir(parents=True)
    final.write_text("someone else's report\n")
    with pytest.raises(ArchiveError, match="exists already; nothing was overwritten"):
        archive.complete(pending, "restore", "x", doc, "# x\n", {"outcome": "succeeded"})
    assert final.read_text() == "someone else's report\n"
    with pytest.raises(Exists):
        archive.store.put_new(f"restores/{pending.name}.json", b"again")
    assert final.read_text() == "someone else's report\n"
    assert not (root / "audit.log").exists()  # no entry for a report not written


def test_concurrent_appends_keep_one_unbroken_chain(local: tuple[Archive, Path]) -> None:
    archive, root = local

    def writer(who: str) -> None:
        other = open_archive(root, pinned)  # its own file descriptors, its own locks
        for i in range(15):
            other.complete(None, "review", "review", {"w": who, "i": i}, "#\n", {"reviewer": who})

    threads = [threading.Thread(target=writer, args=(w,)) for w in ("ada", "bob", "eve")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = archive.verify()
    assert check.ok, check.problems
    assert check.entries == 45 and check.reports == 90
    assert [json.loads(line)["seq"] for line in lines(root)] == list(range(1, 46))


# --- the chain --------------------------------------------------------------------------------
def test_each_entry_chains_to_the_one_before_and_records_the_os_user(
    local: tuple[Archive, Path],
) -> None:
    archive, root = local
    fill(archive, 2)
    first, second = (json.loads(line) for line in lines(root))
    assert first["prev"] == GENESIS
    import hashlib

    assert second["prev"] == hashlib.sha256(lines(root)[0].encode()).hexdigest()
    assert second["reviewer"] == "Ada" and second["os_user"] == os_user()
    assert (
        first["report_sha256"] == hashlib.sha256((root / first["report"]).read_bytes()).hexdigest()
    )
    assert archive.verify().ok


def test_an_intact_archive_verifies(
    archived: tuple[Archive, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = verify_cli(capsys, archived[2])
    assert code == 0, err
    assert "intact: 4 entries, 8 reports checked" in out


@pytest.mark.parametrize(
    ("tamper", "position", "kind"),
    [
        ("edit line 2", 2, "edited"),
        ("edit the last line", 4, "edited"),
        ("delete line 2", 2, "deleted"),
        ("delete the last line", 4, "truncated"),
        ("delete the last two lines", 3, "truncated"),
        ("swap lines 2 and 3", 2, "reordered"),
        ("change a report", 3, "report changed"),
        ("delete a report", 1, "report missing"),
    ],
)
def test_tampering_is_detected_and_names_the_first_bad_line(
    archived: tuple[Archive, Path, Path],
    capsys: pytest.CaptureFixture[str],
    tamper: str,
    position: int,
    kind: str,
) -> None:
    archive, root, config = archived
    log = lines(root)
    entries = [json.loads(line) for line in log]
    if tamper == "edit line 2":
        write_lines(
            root, [log[0], log[1].replace('"reviewer":"Ada"', '"reviewer":"Bob"'), *log[2:]]
        )
    elif tamper == "edit the last line":
        write_lines(root, [*log[:3], log[3].replace('"Ada"', '"Mallory"')])
    elif tamper == "delete line 2":
        write_lines(root, [log[0], *log[2:]])
    elif tamper == "delete the last line":
        write_lines(root, log[:3])
    elif tamper == "delete the last two lines":
        write_lines(root, log[:2])
    elif tamper == "swap lines 2 and 3":
        write_lines(root, [log[0], log[2], log[1], log[3]])
    elif tamper == "change a report":
        path = root / entries[2]["report"]
        path.write_text(path.read_text().replace("succeeded", "failed"))
    elif tamper == "delete a report":
        (root / entries[0]["markdown"]).unlink()
    check = archive.verify()
    assert not check.ok
    assert check.first is not None
    assert (check.first.position, check.first.kind) == (position, kind), check.problems
    code, out, err = verify_cli(capsys, config)
    assert code == 1 and out == ""
    first_line = err.strip().splitlines()[-1]
    assert f"audit.log line {position}" in first_line and kind in first_line
    assert "Traceback" not in err


def test_an_edited_last_entry_is_never_chained_over_by_a_later_append(
    archived: tuple[Archive, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The edit a new entry would seal: the append refuses, and audit verify (which
    writes nothing before it has checked) still names it."""
    from services.archive import process_identity
    from services.errors import ArchiveError

    archive, root, config = archived
    log = lines(root)
    write_lines(root, [*log[:3], log[3].replace('"Ada"', '"Mallory"')])
    with pytest.raises(ArchiveError, match="no longer matches audit.head"):
        archive.complete(None, "review", "review", {"n": 9}, "# r\n", {"reviewer": "Eve"})
    # A restore whose process is gone waits to be completed: audit verify must not do it
    # on a log that does not verify.
    archive.store.put_new(
        "running/20261120T110000Z-x-to-y-0000.json",
        json.dumps(
            {
                "kind": "restore",
                "label": "x-to-y",
                "started_at": "2026-11-20T11:00:00Z",
                "stale_after": "2026-11-22T11:00:00Z",
                **{**process_identity(), "pid": 999_999_999, "proc_start": 1},
                "document": {"status": "running"},
            }
        ).encode(),
    )
    for _ in range(2):
        code, _, err = verify_cli(capsys, config)
        assert code == 1 and "audit.log line 4" in err.strip().splitlines()[-1]
    assert len(lines(root)) == 4  # nothing was appended


def test_a_log_rewritten_as_old_format_lines_does_not_pass(
    archived: tuple[Archive, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    archive, root, config = archived
    reports = sorted(p for p in root.rglob("*.json") if p.parent.name in ("reviews", "restores"))
    reports[0].write_text(json.dumps({"forged": True}))
    forged = [json.dumps({"action": "review", "report": str(p)}) for p in reports]
    write_lines(root, [*forged, json.dumps({"action": "note"})])
    check = archive.verify()
    assert not check.ok and check.first is not None and check.first.kind == "edited"
    code, _, err = verify_cli(capsys, config)
    assert code == 1 and "Traceback" not in err


def test_a_truncated_log_keeps_its_gap_when_appended_to(
    archived: tuple[Archive, Path, Path],
) -> None:
    archive, root, _ = archived
    write_lines(root, lines(root)[:2])
    archive.complete(None, "review", "review", {}, "#\n", {"reviewer": "Ada"})
    assert json.loads(lines(root)[-1])["seq"] == 5  # past the head's 4, not 3 again
    problem = archive.verify().first
    assert problem is not None and (problem.position, problem.kind) == (3, "deleted")


def test_lines_from_before_the_chain_are_counted_and_the_chain_follows_them(
    local: tuple[Archive, Path],
) -> None:
    archive, root = local
    old = root / "reviews" / "20261101T000000Z-review.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}\n")
    old.with_suffix(".md").write_text("# old\n")
    legacy = {"when": "2026-11-01T00:00:00Z", "who": "ada", "action": "review", "report": str(old)}
    (root / "audit.log").write_text(json.dumps(legacy) + "\n")
    done = archive.complete(None, "review", "review", {}, "#\n", {"reviewer": "Ada"})
    assert done.seq == 2
    check = archive.verify()
    assert check.ok and check.legacy == 1, check.problems
    write_lines(root, [json.dumps({**legacy, "who": "eve"}), lines(root)[1]])
    problem = archive.verify().first
    assert problem is not None and (problem.position, problem.kind) == (1, "edited")


# --- writing fails loudly -----------------------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can write into, root included (CI runs as root: the immutable
    attribute, since root ignores permission bits)."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o555)
    try:
        yield path
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755)


def storage_only(tmp_path: Path, bucket: str, endpoint: str, archive: Any) -> Path:
    top = datetime(2026, 11, 20, 12, tzinfo=UTC)
    uid = "0a000000-0000-4000-8000-000000000001"
    seed(
        bucket,
        {
            f"spilo/acid-a/{uid}/logical_backups/{int((top - timedelta(hours=h)).timestamp())}.sql.gz": 2000
            for h in range(1, 30)
        },
    )
    return storage_config(tmp_path, bucket, endpoint, archive=archive)


def test_review_sign_off_headless_archives_json_markdown_and_an_audit_entry(
    tmp_path: Path, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = storage_only(tmp_path, bucket, s3_endpoint, str(tmp_path / "archive"))
    argv = ["--config", str(config), "review", "--sign-off", "Ada Lovelace", "--note", "weekly"]
    code = main([*argv, "--json"], clock=pinned)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["signed_off"]["reviewer"] == "Ada Lovelace"
    root = tmp_path / "archive"
    (entry,) = [json.loads(line) for line in lines(root)]
    assert entry["action"] == "review" and entry["reviewer"] == "Ada Lovelace"
    assert entry["os_user"] == os_user() and entry["note"] == "weekly"
    assert (root / entry["report"]).is_file() and (root / entry["markdown"]).is_file()
    assert str(root / entry["report"]) in err and str(root / entry["markdown"]) in err
    assert "Signed off by Ada Lovelace" in (root / entry["markdown"]).read_text()
    # The same again in the same second: a second pair of files, a second entry.
    assert main(argv, clock=pinned) == 0
    capsys.readouterr()
    assert len(list((root / "reviews").glob("*.json"))) == 2 and len(lines(root)) == 2
    assert main(["--config", str(config), "review", "--note", "x"], clock=pinned) == 2


def test_an_unwritable_archive_fails_with_one_line_and_no_path(
    tmp_path: Path,
    bucket: str,
    s3_endpoint: str,
    read_only_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for archive in (
        str(read_only_dir / "archive"),
        {"url": "s3://no-such-archive-bucket/pgdeck", "endpoint_url": s3_endpoint},
    ):
        config = storage_only(tmp_path, bucket, s3_endpoint, archive)
        code = main(["--config", str(config), "review", "--sign-off", "Ada"], clock=pinned)
        out, err = capsys.readouterr()
        assert code == 1, err
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert "is not writable" in err and "reviews/" not in err and "Traceback" not in err
    assert not any(read_only_dir.iterdir())


def test_a_report_that_cannot_be_completed_leaves_no_file_behind(
    local: tuple[Archive, Path], read_only_dir: Path
) -> None:
    archive, root = local
    archive.check_writable()
    (root / "reviews").mkdir()
    # audit.log as a directory: the report is written, the entry cannot be appended.
    (root / "audit.log").mkdir()
    with pytest.raises(ArchiveError, match="audit.log"):
        archive.complete(None, "review", "review", {}, "#\n", {"reviewer": "Ada"})
    assert list((root / "reviews").iterdir()) == []
    with pytest.raises(ArchiveError, match="is not writable"):
        open_archive(read_only_dir).check_writable()


# --- S3 ---------------------------------------------------------------------------------------
@pytest.fixture
def s3_archive(s3_endpoint: str, bucket: str) -> Archive:
    return open_archive(
        StorageLocation(url=f"s3://{bucket}/pgdeck", endpoint_url=s3_endpoint), pinned
    )


def test_s3_objects_are_written_once_and_never_overwritten(
    s3_archive: Archive, s3: Any, bucket: str
) -> None:
    done = fill(s3_archive, 2)
    assert done[0].json_url.startswith(f"s3://{bucket}/pgdeck/restores/20261120T122000Z-acid-a")
    with pytest.raises(Exists):
        s3_archive.store.put_new(done[0].json, b"replacement")
    body = s3.get_object(Bucket=bucket, Key=f"pgdeck/{done[0].json}")["Body"].read()
    assert json.loads(body)["status"] == "succeeded"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="pgdeck/")["Contents"]]
    assert "pgdeck/audit/000000000001.json" in keys and "pgdeck/audit/000000000002.json" in keys
    assert not [k for k in keys if "/running/" in k]  # completed records are cleared
    assert s3_archive.verify().ok


def test_s3_writers_racing_for_a_sequence_number_cannot_both_win(
    s3_archive: Archive, s3_endpoint: str, bucket: str
) -> None:
    fill(s3_archive, 1)
    rival = open_archive(
        StorageLocation(url=f"s3://{bucket}/pgdeck", endpoint_url=s3_endpoint), pinned
    )
    tries: list[int] = []

    def build(seq: int, prev: str) -> bytes:
        tries.append(seq)
        if len(tries) == 1:  # between our read of the tail and our put, a rival appends
            rival.complete(None, "review", "review", {}, "#\n", {"reviewer": "Bob"})
        return json.dumps({"seq": seq, "prev": prev, "action": "test"}).encode()

    seq, _ = s3_archive.store.append_audit(build)
    assert tries == [2, 3] and seq == 3
    check = s3_archive.verify()
    assert check.entries == 3
    assert [p.kind for p in check.problems] == []


@pytest.mark.parametrize(
    ("tamper", "position", "kind"),
    [
        ("delete entry 2", 2, "deleted"),
        ("replace entry 2", 2, "edited"),
        ("delete the last entry", 4, "report not in the log"),
        ("delete a report", 3, "report missing"),
    ],
)
def test_s3_tampering_is_detected(
    s3_archive: Archive,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: str,
    position: int,
    kind: str,
) -> None:
    done = fill(s3_archive)
    key = "pgdeck/audit/{:012d}.json".format
    if tamper == "delete entry 2":
        s3.delete_object(Bucket=bucket, Key=key(2))
    elif tamper == "replace entry 2":  # a bucket without Object Lock lets anyone do this
        body = s3.get_object(Bucket=bucket, Key=key(2))["Body"].read()
        s3.put_object(Bucket=bucket, Key=key(2), Body=body.replace(b'"Ada"', b'"Eve"'))
    elif tamper == "delete the last entry":
        s3.delete_object(Bucket=bucket, Key=key(4))
    elif tamper == "delete a report":
        s3.delete_object(Bucket=bucket, Key=f"pgdeck/{done[2].json}")
    first = s3_archive.verify().first
    assert first is not None and (first.position, first.kind) == (position, kind)
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"enabled": False},
            "archive": {"url": f"s3://{bucket}/pgdeck", "endpoint_url": s3_endpoint},
        },
    )
    code, out, err = verify_cli(capsys, config)
    assert code == 1 and f"audit entry {position}" in err.strip().splitlines()[-1]


# --- reports whose process is gone ------------------------------------------------------------
CHILD = """
import sys, time
from pathlib import Path
from services.archive import open_archive
pending = open_archive(Path(sys.argv[1])).begin(
    "restore", "acid-a-to-staging", {"status": "running", "backup": "s3://b/k", "target": "t"}
)
print(pending.name, flush=True)
time.sleep(600)
"""


def test_a_running_report_of_a_killed_process_becomes_interrupted_with_an_audit_entry(
    local: tuple[Archive, Path],
) -> None:
    archive, root = local
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        name = child.stdout.readline().strip()
        record = json.loads((root / "running" / f"{name}.json").read_text())
        assert record["pid"] == child.pid and record["status"] == "running"
        assert archive.recover_interrupted() == []  # alive: left alone
    finally:
        child.kill()
        child.wait()
    (found,) = archive.recover_interrupted()
    assert found.outcome == "interrupted" and found.name == name
    report = json.loads((root / "restores" / f"{name}.json").read_text())
    assert report["status"] == "interrupted" and report["backup"] == "s3://b/k"
    assert f"process {child.pid}" in report["interrupted"]["reason"]
    (entry,) = [json.loads(line) for line in lines(root)]
    assert entry["outcome"] == "interrupted" and entry["report"] == f"restores/{name}.json"
    assert not (root / "running" / f"{name}.json").exists()
    assert archive.recover_interrupted() == []
    assert archive.verify().ok


def test_a_reused_pid_and_a_stale_record_from_another_host(local: tuple[Archive, Path]) -> None:
    archive, root = local
    running = root / "running"
    running.mkdir(parents=True)

    def record(name: str, **fields: Any) -> None:
        data = {
            "kind": "restore",
            "label": "acid-a-to-staging",
            "status": "running",
            "started_at": "2026-11-18T12:00:00Z",
            "stale_after": "2026-11-20T12:00:00Z",  # 48 hours on; NOW is 20 minutes past it
            "document": restore_doc(1, "running"),
            **fields,
        }
        (running / f"20261118T120000Z-{name}.json").write_text(json.dumps(data))

    me = process_identity()
    record("reused", **{**me, "proc_start": (me["proc_start"] or 0) + 1})  # our pid, not us
    record("remote-old", **{**me, "host": "restore-job-7xk2p", "pid": 1})
    record(
        "remote-young",
        **{**me, "host": "restore-job-9ab3c", "pid": 1, "stale_after": "2026-11-21T00:00:00Z"},
    )
    record("alive", **me)  # this very process
    found = {f.name.split("-", 1)[1]: f.outcome for f in archive.recover_interrupted()}
    assert found == {"reused": "interrupted", "remote-old": "interrupted"}
    assert sorted(p.name for p in running.iterdir()) == [
        "20261118T120000Z-alive.json",
        "20261118T120000Z-remote-young.json",
    ]
    assert [json.loads(line)["outcome"] for line in lines(root)] == ["interrupted"] * 2
    assert archive.verify().ok


def test_a_final_report_without_its_entry_is_logged_by_recovery(
    local: tuple[Archive, Path],
) -> None:
    """The process died between writing its report and appending the entry."""
    archive, root = local
    doc = restore_doc(1)
    pending = archive.begin("restore", "acid-a-to-staging", doc)
    record = root / pending.location
    text = record.read_text()
    archive.store.put_new(f"restores/{pending.name}.json", json.dumps(doc).encode())
    record.write_text(text.replace(f'"pid": {os.getpid()}', '"pid": 999999999'))
    assert archive.verify().first is not None  # the report no entry names
    (found,) = archive.recover_interrupted()
    assert found.outcome == "logged"
    (entry,) = [json.loads(line) for line in lines(root)]
    assert entry["outcome"] == "succeeded" and entry["found_by"] == "recovery"
    assert archive.verify().ok


def test_archive_report_completes_the_report_begun_when_the_restore_started(
    local: tuple[Archive, Path],
) -> None:
    from services.report import (
        RestoreReport,
        archive_report,
        begin_report,
        check_archive_writable,
    )

    _, root = local
    report = RestoreReport(
        status="running",
        backup="s3://b/spilo/acid-a/0f/logical_backups/1763600000.sql.gz",
        target="postgres@staging:5432/postgres",
        target_name="staging",
        started_at=NOW,
        finished_at=NOW,
    )
    check_archive_writable(root)
    pending = begin_report(report, root, "acid-a-to-staging", clock=pinned)
    assert json.loads((root / pending.location).read_text())["document"]["status"] == "running"
    report = dataclasses.replace(report, status="succeeded")
    report = archive_report(report, root, "acid-a-to-staging", pending=pending, clock=pinned)
    assert report.archived["json"] == str(root / "restores" / f"{pending.name}.json")
    assert Path(report.archived["markdown"]).read_text().startswith("# Restore succeeded")
    assert not (root / pending.location).exists()
    (entry,) = [json.loads(line) for line in lines(root)]
    assert (entry["action"], entry["outcome"], entry["os_user"]) == (
        "restore",
        "succeeded",
        os_user(),
    )
    assert entry["target"] == "postgres@staging:5432/postgres"
