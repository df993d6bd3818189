"""Encryption checked as objects appear (``Catalog.check_new_sse``), against moto's S3
server and the SQLite cache: newest first, bounded per call, each object HEADed once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from services.catalog import Catalog, Location, SseCheck
from services.config import load_config
from services.review import run_review
from services.storage import S3Store
from tests.conftest import seed, storage_config, write_config
from tests.flakyproxy import FlakyProxy

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
UID = "0f000000-0000-4000-8000-000000000001"
HOURS = 6  # objects per cluster, hourly, the newest an hour ago
PLAIN = {("acid-a", 3), ("acid-b", 1)}  # (cluster, hours ago) stored without encryption


def key(cluster: str, hours_ago: int) -> str:
    epoch = int((NOW - timedelta(hours=hours_ago, minutes=-3)).timestamp())
    return f"spilo/{cluster}/{UID}/logical_backups/{epoch}.sql.gz"


def newest_first() -> list[str]:
    """Every object's key, newest first (acid-b before acid-a within an hour: keys sort
    descending at one epoch, as the check orders them)."""
    return [key(c, h) for h in range(1, HOURS + 1) for c in ("acid-b", "acid-a")]


def seed_world(bucket: str) -> None:
    every = {key(c, h): 1000 + h for c in ("acid-a", "acid-b") for h in range(1, HOURS + 1)}
    seed(bucket, {k: v for k, v in every.items() if k not in plain_keys()})
    seed(bucket, {k: every[k] for k in plain_keys()}, sse=None)


def plain_keys() -> set[str]:
    return {key(c, h) for c, h in PLAIN}


class Heads:
    """A client of our own whose HEAD requests are counted (a botocore event hook)."""

    def __init__(self, endpoint: str) -> None:
        self.keys: list[str] = []
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.client.meta.events.register(
            "provide-client-params.s3.HeadObject",
            lambda params, **_: self.keys.append(params["Key"]),
        )


def make_catalog(
    tmp_path: Path, bucket: str, endpoint: str, heads: Heads | None = None, **catalog: Any
) -> Catalog:
    """A catalog of one S3 location; with ``heads``, its requests go through that client."""
    config = load_config(
        str(storage_config(tmp_path, bucket, endpoint, catalog={"workers": 4, **catalog}))
    )
    stores = {}
    if heads is not None:
        loc = config.storage[0]
        stores[Location(loc).id] = S3Store(loc, client=heads.client)
    return Catalog(config, stores=stores, clock=lambda: NOW)  # type: ignore[arg-type]


@pytest.fixture
def heads(s3_endpoint: str) -> Heads:
    return Heads(s3_endpoint)


@pytest.fixture
def catalog(tmp_path: Path, bucket: str, s3_endpoint: str, heads: Heads) -> Catalog:
    seed_world(bucket)
    cat = make_catalog(tmp_path, bucket, s3_endpoint, heads)
    cat.refresh()
    return cat


def known(cat: Catalog) -> dict[str, str]:
    """key -> encryption, of what the cache knows."""
    loc = cat.locations()[0]
    rels = [k.removeprefix("spilo/") for k in newest_first()]
    return {f"spilo/{rel}": sse for rel, sse in cat.cache.sse(loc.id, rels).items()}


def test_new_objects_are_checked_newest_first_a_bounded_number_per_call(
    catalog: Catalog, heads: Heads
) -> None:
    order = newest_first()
    first = catalog.check_new_sse(limit=5)
    assert (first.checked, first.remaining, first.problems) == (5, len(order) - 5, ())
    assert set(known(catalog)) == set(order[:5]) == set(heads.keys)
    heads.keys.clear()
    second = catalog.check_new_sse(limit=5)  # goes on where the first stopped
    assert (second.checked, second.remaining) == (5, len(order) - 10)
    assert set(heads.keys) == set(order[5:10])
    rest = catalog.check_new_sse()  # catalog.sse_check_per_refresh: every one left
    assert (rest.checked, rest.remaining) == (len(order) - 10, 0)
    assert first.unencrypted + second.unencrypted + rest.unencrypted == len(PLAIN)
    cached = known(catalog)
    assert {k for k, sse in cached.items() if sse == ""} == plain_keys()
    assert {sse for k, sse in cached.items() if k not in plain_keys()} == {"AES256"}
    heads.keys.clear()
    again = catalog.check_new_sse()
    assert (again.checked, again.remaining) == (0, 0) and heads.keys == []


def test_a_review_after_the_check_makes_no_head_and_finds_the_unencrypted(
    catalog: Catalog, heads: Heads
) -> None:
    assert catalog.check_new_sse().remaining == 0
    heads.keys.clear()
    review = run_review(catalog, state=catalog.state, since=timedelta(days=1))
    assert heads.keys == []  # every answer came from the cache
    found = [f for f in review.findings if f.check == "unencrypted"]
    assert sorted(f.cluster for f in found) == ["acid-a", "acid-b"]
    urls = {e.ref for f in found for e in f.evidence}
    assert {u.split("/", 3)[-1] for u in urls} == plain_keys()


def test_only_new_objects_are_headed_after_a_refresh(
    catalog: Catalog, heads: Heads, bucket: str
) -> None:
    catalog.check_new_sse()
    newer = f"spilo/acid-a/{UID}/logical_backups/{int(NOW.timestamp())}.sql.gz"
    seed(bucket, {newer: 10}, sse="aws:kms")
    catalog.refresh()
    heads.keys.clear()
    result = catalog.check_new_sse()
    assert (result.checked, result.remaining, heads.keys) == (1, 0, [newer])
    assert known(catalog).get(newer) is None  # not among the world's keys
    (b,) = [x for x in catalog.cached_sse(catalog.backups(catalog.find("acid-a"))) if x.size == 10]
    assert b.sse == "aws:kms"


def test_an_object_deleted_after_the_listing_is_skipped_once_not_an_error(
    catalog: Catalog, heads: Heads, s3: Any, bucket: str
) -> None:
    gone = newest_first()[2]
    s3.delete_object(Bucket=bucket, Key=gone)  # retention at work, before the HEAD
    result = catalog.check_new_sse()
    assert (result.checked, result.gone, result.remaining, result.problems) == (
        len(newest_first()) - 1,
        1,
        0,
        (),
    )
    assert gone not in known(catalog)
    heads.keys.clear()
    assert catalog.check_new_sse().checked == 0 and heads.keys == []  # not asked again


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FlakyProxy]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as p:
        yield p


def test_a_stalled_endpoint_ends_the_check_with_one_problem(
    tmp_path: Path, bucket: str, s3_endpoint: str, proxy: FlakyProxy
) -> None:
    seed_world(bucket)
    make_catalog(tmp_path, bucket, s3_endpoint).refresh()  # listed, straight to the server
    # The same location's HEADs go through a proxy that takes every request and answers none.
    cat = make_catalog(tmp_path, bucket, s3_endpoint, storage_timeout_seconds=1)
    cat.load_cached()
    loc = cat.locations()[0]
    cat._stores[loc.id] = S3Store(
        dataclasses.replace(loc.storage, endpoint_url=proxy.url), workers=4, timeout=1
    )
    proxy.stall_after(0, times=1000, match=b"HEAD ")
    result = cat.check_new_sse()
    assert (result.checked, result.failed, result.remaining) == (0, 12, 12)
    (problem,) = result.problems
    assert problem.source == f"s3://{bucket}/spilo"
    assert "stalled" in problem.message and "\n" not in problem.message
    # One HEAD's four tries, then nothing: the queued HEADs were dropped, not each tried in
    # turn (nor, while the store was learning its requests, one more after it).
    assert proxy.stalls <= 4


def test_no_check_with_a_limit_of_zero_nor_for_a_local_copy(
    tmp_path: Path, catalog: Catalog, heads: Heads
) -> None:
    off = catalog.check_new_sse(limit=0)
    assert (off.checked, off.remaining, heads.keys) == (0, len(newest_first()), [])
    root = tmp_path / "copy"
    path = root / "acid-a" / UID / "logical_backups" / "1700000000.sql.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * 10)
    config = write_config(
        tmp_path / "local.yaml",
        {
            "kubernetes": {"enabled": False},
            "storage": [{"url": f"file://{root}"}],
            "cache": str(tmp_path / "local-cache"),
        },
    )
    local = Catalog(load_config(str(config)))
    local.refresh()
    assert local.check_new_sse() == SseCheck()  # nothing to check, nothing wrong


def test_a_location_the_refresh_could_not_list_is_not_headed(
    tmp_path: Path, bucket: str, s3_endpoint: str, proxy: FlakyProxy
) -> None:
    seed_world(bucket)
    make_catalog(tmp_path, bucket, s3_endpoint).refresh()
    cat = make_catalog(tmp_path, bucket, s3_endpoint, storage_timeout_seconds=1)
    cat.load_cached()
    loc = cat.locations()[0]
    cat._stores[loc.id] = S3Store(
        dataclasses.replace(loc.storage, endpoint_url=proxy.url), workers=4, timeout=1
    )
    proxy.stall_after(0, times=1000, match=b"")
    state = cat.refresh()
    assert [p.source for p in state.problems] == [f"s3://{bucket}/spilo"]
    stalls = proxy.stalls
    assert cat.check_new_sse() == SseCheck()  # said by the refresh already, not again
    assert proxy.stalls == stalls
