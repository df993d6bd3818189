"""The real pg_dumpall fixtures (tests/fixtures/dumps) are whole and are what their names say."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

DUMPS = Path(__file__).parent / "fixtures" / "dumps"
FIXTURES = sorted(DUMPS.glob("pg*.sql.gz"))


def test_there_is_a_fixture_for_each_major_from_13_to_17() -> None:
    names = {p.name for p in FIXTURES}
    for m in range(13, 18):
        assert {f"pg{m}.sql.gz", f"pg{m}-portable.sql.gz"} <= names


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_is_a_complete_dump_by_the_pg_dumpall_of_its_major(path: Path) -> None:
    text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="surrogateescape")
    major = re.fullmatch(r"pg(\d+)(?:-portable)?\.sql\.gz", path.name)
    assert major
    dumpers = set(re.findall(r"^-- Dumped by pg_dump version (\d+)\.", text, re.M))
    assert dumpers == {major.group(1)}
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[-2:] == ["-- PostgreSQL database cluster dump complete", "--"]
    sections = text.count("-- PostgreSQL database dump\n--")
    assert sections == text.count("-- PostgreSQL database dump complete") > 5
    restricts = re.findall(r"^\\restrict (\w+)$", text, re.M)
    assert len(restricts) == len(re.findall(r"^\\unrestrict (\w+)$", text, re.M)) > sections
