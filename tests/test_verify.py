"""Verifying backups end to end: gzip, the dump's trailer, its tables and rows."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.dump import DumpReader, connect_target
from tests.conftest import seed, storage_config, write_config
from tui.cli import main

UID = "0e000000-0000-4000-8000-000000000001"
EXPECTED = {
    ("shop", "public.customers"): 50,
    ("shop", "public.orders"): 120,
    ("shop", 'public.Odd "Quoted" Table'): 3,
    ("shop", "public.events_2026"): 2,
    ("Ünïcode db", "public.Grüße"): 7,
}


def scan(data: bytes, size: int) -> DumpReader:
    s = DumpReader()
    for i in range(0, len(data), size):
        s.feed(data[i : i + size])
    return s


@pytest.mark.parametrize("size", [1, 5, 4096, 1 << 30])
def test_scanner_counts_rows_whatever_the_chunking(source_dump: bytes, size: int) -> None:
    summary = scan(source_dump, size).summary()
    assert summary.complete
    rows = {
        (t.database, t.qualified): t.rows
        for t in summary.tables
        if t.rows or t.database != "postgres"
    }
    for key, n in EXPECTED.items():
        assert rows[key] == n
    dbs = {d.name: d for d in summary.databases}
    assert dbs["shop"].created and not dbs["postgres"].created and dbs["shop"].complete
    assert dbs["shop"].locale
    assert "appuser" in summary.roles and "postgres" in summary.roles
    assert {"public.customers", "public.orders", "public.events"} <= dbs["shop"].objects["table"]
    assert "public.big_orders" in dbs["shop"].objects["view"]
    assert "orders_customer_fkey" in dbs["shop"].objects["foreign key"]
    assert summary.server_version and summary.server_version.startswith("15")


def test_a_dump_cut_anywhere_is_never_complete(source_dump: bytes) -> None:
    for cut in range(1000, len(source_dump) - 10, max(1, len(source_dump) // 97)):
        assert not scan(source_dump[:cut], 4096).summary().complete


def test_connect_forms() -> None:
    assert connect_target("\\connect app") == "app"
    assert connect_target("\\connect -reuse-previous=on \"dbname='we\\'ird db'\"") == "we'ird db"
    assert connect_target('\\connect "Mixed.Case"') == "Mixed.Case"
    assert (
        connect_target('\\connect -reuse-previous=on "dbname=\'a ""b"" \\\\ c\'"') == 'a "b" \\ c'
    )
    # pg_dumpall writes any other name in the connection-string form; nothing else passes
    for line in (
        '\\connect "Mixed Case"',
        "\\connect app otheruser",
        "\\connect -reuse-previous=on \"dbname='app' host='evil.example'\"",
        "\\connect :DBNAME",
    ):
        with pytest.raises(ValueError):
            connect_target(line)


@pytest.fixture
def config(tmp_path: Path, bucket: str, s3_endpoint: str) -> Path:
    return storage_config(tmp_path, bucket, s3_endpoint)


def key(epoch: int) -> str:
    return f"spilo/acid-shop/{UID}/logical_backups/{epoch}.sql.gz"


def test_verify_an_intact_backup_by_url(
    config: Path, bucket: str, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(bucket, {key(1_763_600_000): gzip.compress(source_dump)})
    code = main(
        ["--config", str(config), "verify", f"s3://{bucket}/{key(1_763_600_000)}", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["complete"]
    rows = {
        (d["name"], f"{t['schema']}.{t['name']}"): t["rows"]
        for d in out["databases"]
        for t in d["tables"]
    }
    for k, n in EXPECTED.items():
        assert rows[k] == n
    assert out["uncompressed_bytes"] == len(source_dump)


def test_verify_cluster_at_a_time_picks_the_newest_at_or_before(
    config: Path, bucket: str, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    good = gzip.compress(source_dump)
    truncated = gzip.compress(source_dump[: len(source_dump) // 2])  # gzip-valid, no trailer
    seed(bucket, {key(1_763_600_000): good, key(1_763_603_600): truncated})
    code = main(["--config", str(config), "verify", "acid-shop@latest"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "trailer never arrived" in captured.err and captured.err.count("\n") == 1
    at = datetime.fromtimestamp(1_763_603_000, UTC).isoformat()
    assert main(["--config", str(config), "verify", f"acid-shop@{at}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["url"].endswith(f"{1_763_600_000}.sql.gz")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda g: g[: len(g) // 2], "gzip stream is truncated"),
        (lambda g: g[:100] + bytes([g[100] ^ 0xFF]) + g[101:], "not intact gzip"),
        (lambda g: g[:-8] + bytes([g[-8] ^ 0xFF]) + g[-7:], "not intact gzip"),
        (lambda g: b"", "object is empty"),
        (lambda g: b"PGDMP not gzip at all", "not intact gzip"),
    ],
)
def test_damaged_backups_fail_with_one_clear_line(
    config: Path,
    bucket: str,
    source_dump: bytes,
    capsys: pytest.CaptureFixture[str],
    damage,
    message: str,
) -> None:
    seed(bucket, {key(1_763_600_000): damage(gzip.compress(source_dump))})
    code = main(["--config", str(config), "verify", f"s3://{bucket}/{key(1_763_600_000)}"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_verify_a_local_file(
    tmp_path: Path, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "1763600000.sql.gz"
    path.write_bytes(gzip.compress(source_dump))
    cfg = write_config(
        tmp_path / "c.yaml", {"kubernetes": {"enabled": False}, "cache": str(tmp_path / "cache")}
    )
    assert main(["--config", str(cfg), "verify", f"file://{path}"]) == 0
    out = capsys.readouterr().out
    assert "intact: gzip verified, dump complete" in out and "public.orders" in out


def test_a_version_comment_with_escape_sequences_never_reaches_the_terminal(
    tmp_path: Path, source_dump: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    text = source_dump.decode()
    line = next(ln for ln in text.splitlines() if ln.startswith("-- Dumped from database version"))
    hostile = text.replace(line, "-- Dumped from database version 15.4\x1b]0;owned\x07", 1)
    path = tmp_path / "1763600000.sql.gz"
    path.write_bytes(gzip.compress(hostile.encode()))
    cfg = write_config(
        tmp_path / "c.yaml", {"kubernetes": {"enabled": False}, "cache": str(tmp_path / "cache")}
    )
    assert main(["--config", str(cfg), "verify", f"file://{path}"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "PostgreSQL 15.4," in out  # the version, without what followed it


class _Collect:
    """A consumer that records the largest piece of table data handed on at once."""

    def __init__(self) -> None:
        self.largest = 0
        self.data = 0

    def statement(self, stmt: Any, verdict: Any, section: Any) -> None:
        pass

    def connect(self, database: str) -> None:
        pass

    def copy_data(self, data: memoryview) -> None:
        self.largest = max(self.largest, len(data))
        self.data += len(data)

    def copy_end(self, table: Any) -> None:
        pass


def test_a_long_row_is_passed_on_as_it_arrives_never_held_whole(source_dump: bytes) -> None:
    head = "COPY public.orders (id, customer, note) FROM stdin;\n"
    long_row = "9999\t1\t" + "x" * 5_000_000 + "\n"
    dump = source_dump.decode().replace(head, head + long_row).encode()
    sink = _Collect()
    reader = DumpReader(sink)
    for i in range(0, len(dump), 64 << 10):
        reader.feed(dump[i : i + (64 << 10)])
    summary = reader.summary()
    assert summary.complete
    assert {(t.database, t.qualified): t.rows for t in summary.tables}[
        ("shop", "public.orders")
    ] == 121
    assert sink.data > 5_000_000 and sink.largest <= 64 << 10


def test_a_line_outside_table_data_past_the_bound_is_refused(source_dump: bytes) -> None:
    from services.dump import NotADump

    comment = "COMMENT ON DATABASE shop IS '" + "y" * 5000 + "';\n"
    dump = (
        source_dump.decode().replace("\\connect shop\n", "\\connect shop\n" + comment, 1).encode()
    )
    with pytest.raises(NotADump, match="longer than 4096 bytes"):
        DumpReader(max_line=4096).feed(dump)
    with pytest.raises(NotADump, match="a line longer than 4096 bytes outside table data"):
        reader = DumpReader(max_line=4096)
        for i in range(0, len(dump), 1000):
            reader.feed(dump[i : i + 1000])
    assert DumpReader(max_line=8192).feed(dump) is None  # within the bound it reads on
