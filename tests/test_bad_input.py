"""Hostile input meets one clear line: escape sequences in logs and keys, very long log
lines, a stalled storage endpoint, a binary config, links out of a file:// root and
objects dated in the future. Real parts only: moto's S3 server (behind a proxy that
stalls), the fake Kubernetes API serving the hostile log, files and links on disk."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.backup_stream import compressed_chunks
from services.catalog import Catalog
from services.config import StorageLocation, load_config
from services.errors import StorageError, StorageStalled
from services.review import run_review
from services.storage import ATTEMPTS, FileStore, S3Store
from services.text import LINE_LIMIT, bounded_lines, safe_line, safe_text
from tests.conftest import seed, storage_config, write_config
from tests.flakyproxy import FlakyProxy
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
TOP = NOW.replace(minute=0)
H = timedelta(hours=1)
UID = "0f000000-0000-4000-8000-000000000001"
# What a backup job's log line may carry: a window title (OSC 0), a clipboard write
# (OSC 52), a C1 CSI that clears the screen, and a bidi override.
OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBvd25lZA==\x07"
C1_CLEAR = "\x9b2J"
HOSTILE = f"pg_dumpall: error: {OSC_TITLE}{OSC_CLIPBOARD}{C1_CLEAR}\u202egnp.exe PGPASSWORD=hunter2"
SHOWN = (
    "pg_dumpall: error: \\x1b]0;pwned\\x07\\x1b]52;c;ZWNobyBvd25lZA==\\x07\\x9b2J"
    "\\u202egnp.exe PGPASSWORD=hunter2"
)
RAW_SEQUENCES = ("\x1b]", "\x9b", "\x07", "\u202e")
DUMP = (
    b"--\n-- PostgreSQL database cluster dump\n--\n\n"
    b"SET default_transaction_read_only = off;\n\n"
    b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), clock=lambda: NOW)
    out, err = capsys.readouterr()
    return code, out, err


def backup_key(cluster: str, epoch: int, uid: str = UID) -> str:
    return f"spilo/{cluster}/{uid}/logical_backups/{epoch}.sql.gz"


def no_raw_controls(text: str) -> bool:
    return not any(seq in text for seq in RAW_SEQUENCES)


# --- the neutralizing functions ---------------------------------------------------------------
def test_escape_sequences_become_visible_text_and_tabs_stay() -> None:
    assert safe_text(HOSTILE) == SHOWN
    assert safe_text("a\tb") == "a\tb"
    assert safe_text("two\nlines") == "two\\x0alines"
    assert safe_text("two\nlines", keep="\t\n") == "two\nlines"
    assert safe_text(SHOWN) == SHOWN  # neutral text stays as it is
    assert safe_text("Grüße – ü") == "Grüße – ü"


def test_a_long_line_is_cut_with_a_marker_saying_how_much() -> None:
    line = "x" * (LINE_LIMIT * 3)
    shown = safe_line(line)
    assert len(shown) <= LINE_LIMIT
    kept = shown.index(" … [")
    assert shown.endswith(f" … [{len(line) - kept:,} characters cut]")
    assert safe_line(shown) == shown  # a cut line is not cut again
    escaped = safe_line("\x1b" * LINE_LIMIT)  # escaping comes first: the bound holds after it
    assert len(escaped) <= LINE_LIMIT and escaped.startswith("\\x1b\\x1b")


def test_a_line_of_any_length_costs_bounded_memory() -> None:
    """50 MiB without a newline, then a short line: only LINE_LIMIT of it is ever held."""
    block = b"A" * 65536

    def stream() -> Iterator[bytes]:
        for _ in range(800):
            yield block
        yield b"\r\nnext line\r\n"

    tracemalloc.start()
    try:
        lines = list(bounded_lines(stream()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 2 and lines[1] == "next line"
    assert len(lines[0]) <= LINE_LIMIT
    kept = lines[0].index(" … [")
    assert lines[0].endswith(f" … [{800 * 65536 - kept:,} bytes cut]")
    assert peak < 4 * LINE_LIMIT + 4 * len(block)


# --- pod logs: pgdeck logs, the review's evidence ---------------------------------------------
@pytest.fixture
def hostile_log(tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str) -> Path:
    """acid-shop: backups on, its newest Job failed; the pod's log has the hostile line
    and a line of 200 kB without a newline at the end."""
    pg = ko.postgresql("acid-shop", "shop", uid=UID, created=NOW - 3 * 24 * H)
    cj = ko.cronjob(pg, last_schedule=TOP, last_successful=TOP - H)
    job = ko.job(cj, started=TOP, succeeded=False)
    pod = ko.pod(job, started=TOP, finished=TOP + timedelta(minutes=1), exit_code=1)
    kube.add(pg, cj, job, pod)
    kube.set_log("shop", pod["metadata"]["name"], f"starting\n{HOSTILE}\n" + "y" * 200_000)
    seed(
        bucket,
        {backup_key("acid-shop", int((TOP - h * H).timestamp()) + 60): 4096 for h in range(1, 48)},
    )
    return storage_config(tmp_path, bucket, s3_endpoint, kubernetes={"kubeconfig": str(kubeconfig)})


def test_pgdeck_logs_shows_escape_sequences_escaped_and_raw_only_when_asked(
    hostile_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--config", str(hostile_log), "logs", "acid-shop")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == ["starting", SHOWN]
    assert no_raw_controls(out)
    assert len(lines[2]) <= LINE_LIMIT and lines[2].startswith("yyy")
    assert lines[2].endswith(" bytes cut]")
    code, out, _ = run(capsys, "--config", str(hostile_log), "logs", "acid-shop", "--raw")
    assert code == 0
    assert out.splitlines()[1] == HOSTILE


def test_the_review_quotes_the_hostile_log_neutralized_in_json_and_markdown(
    hostile_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = tmp_path / "review.md"
    code, out, err = run(
        capsys, "--config", str(hostile_log), "review", "--json", "--markdown", str(md)
    )
    assert code == 1, err  # the failed job is critical
    review = json.loads(out)
    logs = [
        e["detail"]
        for f in review["findings"]
        if f["check"] == "job_failed"
        for e in f["evidence"]
        if e["kind"] == "log"
    ]
    assert SHOWN.replace("hunter2", "***") in logs
    assert all(no_raw_controls(line) and len(line) <= LINE_LIMIT for line in logs)
    markdown = md.read_text(encoding="utf-8")
    assert no_raw_controls(markdown) and "hunter2" not in markdown
    assert "\\x1b]52;c;" in markdown


# --- object keys and names from storage ---------------------------------------------------------
def test_a_cluster_name_with_escape_sequences_is_shown_escaped(
    tmp_path: Path, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"acid-{OSC_TITLE}{C1_CLEAR}"
    seed(bucket, {backup_key(name, int((NOW - H).timestamp())): 2048})
    config = storage_config(tmp_path, bucket, s3_endpoint)
    code, out, err = run(capsys, "--config", str(config), "clusters")
    assert code == 0, err
    assert "acid-\\x1b]0;pwned\\x07\\x9b2J" in out and no_raw_controls(out)
    code, out, err = run(capsys, "--config", str(config), "backups", name)
    assert code == 0, err
    assert f"s3://{bucket}/spilo/acid-\\x1b]0;pwned\\x07\\x9b2J/{UID}/" in out
    assert no_raw_controls(out)
    code, out, err = run(capsys, "--config", str(config), "backups", name, "--json")
    assert json.loads(out)[0]["cluster"] == name  # JSON keeps the value, escaped by JSON
    assert no_raw_controls(out)


# --- a stalled storage endpoint -----------------------------------------------------------------
@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FlakyProxy]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as p:
        yield p


def test_a_stalled_endpoint_fails_the_listing_in_bounded_tries_naming_it(
    tmp_path: Path, bucket: str, proxy: FlakyProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(bucket, {backup_key("acid-a", int((NOW - H).timestamp())): 10})
    proxy.stall_after(0, times=100, match=b"")  # every request taken, none answered
    config = storage_config(tmp_path, bucket, proxy.url, catalog={"storage_timeout_seconds": 1})
    code, out, err = run(capsys, "--config", str(config), "clusters")
    assert code == 1
    assert err.splitlines() == [
        f"pgdeck: s3://{bucket}/spilo: the storage endpoint {proxy.url} stalled (no answer "
        "within 1 s); check the endpoint and the network, or raise "
        "catalog.storage_timeout_seconds"
    ]
    assert proxy.connections == proxy.stalls == ATTEMPTS  # bounded: never retries x timeout


def _big_object(bucket: str) -> tuple[str, bytes]:
    body = os.urandom(3 << 20)
    key = backup_key("acid-a", int((NOW - H).timestamp()))
    seed(bucket, {key: body})
    return key.removeprefix("spilo/"), body


def test_a_transfer_that_stalls_midway_is_resumed_once(bucket: str, proxy: FlakyProxy) -> None:
    rel, body = _big_object(bucket)
    store = S3Store(StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=proxy.url), timeout=1)
    proxy.stall_after((3 << 20) // 2)  # the first GET goes silent halfway
    assert b"".join(compressed_chunks(store, rel)) == body
    assert proxy.stalls == 1


def test_a_transfer_whose_resume_stalls_too_fails_naming_the_endpoint(
    bucket: str, proxy: FlakyProxy
) -> None:
    rel, _ = _big_object(bucket)
    store = S3Store(StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=proxy.url), timeout=1)
    proxy.stall_after((3 << 20) // 2)
    proxy.stall_after(0, times=100, only_unranged=False)  # every resume goes silent
    with pytest.raises(StorageStalled) as exc:
        b"".join(compressed_chunks(store, rel))
    assert str(exc.value).startswith(
        f"s3://{bucket}/spilo/{rel}: the storage endpoint {proxy.url} stalled"
    )
    # The first GET, then the resume's tries: one stall resumed, never an endless loop.
    assert proxy.connections == proxy.stalls == 1 + ATTEMPTS


# --- the configuration file ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "line"),
    [
        (gzip.compress(b"storage: []\n"), "a binary file, not a YAML configuration; pass the "),
        (
            "cache: /tmp/caf\xe9\n".encode("latin-1"),
            "not UTF-8 text (byte 0xe9 at line 1); save the configuration as UTF-8",
        ),
        (
            b"cache: /tmp/x\narchive: \x1b]0;pwned\x07\n",
            "not valid YAML at line 2: character \\x1b is not allowed; remove the control",
        ),
    ],
    ids=["binary", "latin-1", "control-character"],
)
def test_a_config_that_is_not_utf8_yaml_text_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, line: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    code, out, err = run(capsys, "--config", str(path), "clusters")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"pgdeck: {path}: {line}")
    assert "Traceback" not in err


# --- links in a file:// copy --------------------------------------------------------------------
@pytest.fixture
def linked_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A file:// root: acid-a with a real backup, a link to it inside the root (followed),
    a link to a file outside (refused); acid-evil, a directory link outside (refused)."""
    root, outside = tmp_path / "copy", tmp_path / "outside"
    d = root / "acid-a" / UID / "logical_backups"
    d.mkdir(parents=True)
    (d / "1700000000.sql.gz").write_bytes(gzip.compress(DUMP))
    (d / "1700007200.sql.gz").symlink_to("1700000000.sql.gz")
    secret = outside / "acid-evil" / UID / "logical_backups"
    secret.mkdir(parents=True)
    (secret / "1700003600.sql.gz").write_bytes(gzip.compress(b"-- not yours\n"))
    (d / "1700003600.sql.gz").symlink_to(secret / "1700003600.sql.gz")
    (root / "acid-evil").symlink_to(outside / "acid-evil")
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"enabled": False},
            "storage": [{"url": f"file://{root}"}],
            "cache": str(tmp_path / "cache"),
        },
    )
    return root, config


def test_file_storage_never_follows_a_link_out_of_its_root(
    linked_copy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, config = linked_copy
    code, out, err = run(capsys, "--config", str(config), "clusters", "--json")
    assert code == 0
    assert [c["name"] for c in json.loads(out)] == ["acid-a"]
    assert err.splitlines() == [
        f"pgdeck: warning: file://{root}: 2 link(s) leading outside the storage root skipped "
        f"(acid-a/{UID}/logical_backups/1700003600.sql.gz, acid-evil); copy the files in "
        "instead of linking them"
    ]
    code, out, err = run(capsys, "--config", str(config), "backups", "acid-a", "--json")
    assert code == 0
    assert [r["url"].rsplit("/", 1)[1] for r in json.loads(out)] == [
        "1700007200.sql.gz",  # a link inside the root is followed
        "1700000000.sql.gz",
    ]
    outside = f"file://{root}/acid-a/{UID}/logical_backups/1700003600.sql.gz"
    catalog = Catalog(load_config(str(config)), clock=lambda: NOW)
    store, rel, url = catalog.resolve(outside)  # read as part of the configured root
    assert url == outside
    with pytest.raises(StorageError) as exc:
        b"".join(compressed_chunks(store, rel))
    assert str(exc.value) == (
        f"{outside}: a link leading outside file://{root}: refused; replace the link "
        "by the file, or point storage[].url at the directory it is in"
    )
    fs = FileStore(StorageLocation(url=f"file://{root}"))
    with pytest.raises(StorageError, match="a link leading outside"):
        fs.head(f"acid-a/{UID}/logical_backups/1700003600.sql.gz")
    with pytest.raises(StorageError, match="a link leading outside"):
        fs.open_range(f"acid-evil/{UID}/logical_backups/1700003600.sql.gz", 0)


def test_verifying_a_link_out_of_the_root_fails_in_one_line(
    linked_copy: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, config = linked_copy
    outside = f"file://{root}/acid-a/{UID}/logical_backups/1700003600.sql.gz"
    code, _, err = run(capsys, "--config", str(config), "verify", outside)
    assert code == 1
    (line,) = err.splitlines()  # how verify words it is its own; the reason is the store's
    assert line.startswith(f"pgdeck: {outside}: ")
    assert line.endswith(
        f"{outside}: a link leading outside file://{root}: refused; replace the link "
        "by the file, or point storage[].url at the directory it is in"
    )


# --- objects dated in the future ----------------------------------------------------------------
@pytest.fixture
def future_world(tmp_path: Path, bucket: str, s3_endpoint: str) -> tuple[Path, str, str]:
    """acid-x: hourly backups up to an hour ago, and one dated two days from now."""
    past = backup_key("acid-x", int((TOP - H).timestamp()) + 60)
    future = backup_key("acid-x", int((NOW + 48 * H).timestamp()))
    seed(
        bucket,
        {backup_key("acid-x", int((TOP - h * H).timestamp()) + 60): 2048 for h in range(2, 30)},
    )
    seed(bucket, {past: 2048, future: 2048})
    return storage_config(tmp_path, bucket, s3_endpoint), past, future


def test_a_future_dated_object_is_flagged_and_never_chosen_as_latest(
    future_world: tuple[Path, str, str], bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, past, future = future_world
    code, out, err = run(capsys, "--config", str(config), "backups", "acid-x")
    assert code == 0
    when = datetime.fromtimestamp(int((NOW + 48 * H).timestamp()), UTC).isoformat()
    assert err.splitlines() == [
        f"pgdeck: warning: 1 backup(s) of acid-x dated in the future (the latest "
        f"{when.replace('+00:00', 'Z')}): a wrong clock where the backup ran, or a forged "
        "key; CLUSTER@latest never chooses them"
    ]
    first = out.splitlines()[1]
    assert "FUTURE-DATED" in first and first.endswith(future)
    code, out, _ = run(capsys, "--config", str(config), "backups", "acid-x", "--json")
    assert [r["future_dated"] for r in json.loads(out)][:2] == [True, False]

    catalog = Catalog(load_config(str(config)), clock=lambda: NOW)
    state = catalog.refresh()
    summary = next(s for s in state.clusters if s.cluster.name == "acid-x")
    assert summary.last_backup is not None and summary.last_backup.url.endswith(past)
    assert catalog.resolve("acid-x@latest")[2] == f"s3://{bucket}/{past}"
    after = (NOW + 72 * H).isoformat()
    assert catalog.resolve(f"acid-x@{after}")[2] == f"s3://{bucket}/{past}"
    review = run_review(catalog, state=state)
    flagged = [f for f in review.findings if f.check == "integrity"]
    assert len(flagged) == 1 and flagged[0].severity == "warning"
    assert "dated in the future" in flagged[0].detail
    assert [e.ref for e in flagged[0].evidence] == [f"s3://{bucket}/{future}"]


def test_a_future_dated_key_does_not_hide_newer_backups_from_an_incremental_refresh(
    future_world: tuple[Path, str, str], bucket: str
) -> None:
    config, past, _ = future_world
    catalog = Catalog(load_config(str(config)), clock=lambda: NOW)
    catalog.refresh()
    new = backup_key("acid-x", int(TOP.timestamp()) + 60)  # sorts before the future key
    seed(bucket, {new: 2048})
    catalog = Catalog(load_config(str(config)), clock=lambda: NOW)
    catalog.refresh()  # incremental: the cluster was listed in full moments ago
    urls = [b.url for b in catalog.backups(catalog.find("acid-x"))]
    assert f"s3://{bucket}/{new}" in urls
    assert catalog.resolve("acid-x@latest")[2] == f"s3://{bucket}/{new}"
