"""The benchmarks' S3 latency model (bench/_s3model.py) and counting proxy (bench/_s3proxy.py)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from bench._s3model import (
    Request,
    S3Model,
    counts,
    in_phases,
    makespan,
    measured_cost,
    peak_in_flight,
    replicate,
)
from bench._s3proxy import TraceProxy, kind_of
from tests.conftest import seed


def page(start: float, prefix: str, keys: int, phase: str = "") -> Request:
    return Request(
        start=start, end=start + 1, kind="LIST", bucket="b", prefix=prefix, keys=keys, phase=phase
    )


def head(start: float, phase: str = "") -> Request:
    return Request(start=start, end=start + 1, kind="HEAD", bucket="b", phase=phase)


def test_pages_of_one_listing_run_in_turn_and_listings_side_by_side() -> None:
    trace = [page(0, "a/", 1000), page(1, "a/", 1000), page(0.5, "b/", 10), page(2, "a/", 5)]
    model = S3Model(latency_s=0.1, per_key_s=0.001)
    # a/: three pages in a chain, 0.1 + 1.0 + 0.1 + 1.0 + 0.1 + 0.005; b/ beside it
    assert makespan(trace, 2, model.cost) == pytest.approx(2.305)
    # one slot: everything in turn, b/ included (0.1 + 0.01)
    assert makespan(trace, 1, model.cost) == pytest.approx(2.415)


def test_chains_fill_the_first_free_slot_in_the_order_they_started() -> None:
    trace = [head(float(i)) for i in range(5)]
    cost = S3Model(latency_s=0.1).cost
    assert makespan(trace, 1, cost) == pytest.approx(0.5)
    assert makespan(trace, 2, cost) == pytest.approx(0.3)  # 3 rounds of 2 slots
    assert makespan(trace, 16, cost) == pytest.approx(0.1)


def test_a_phase_of_heads_alone_runs_on_the_head_slots() -> None:
    marks = [("names", 0.0), ("heads", 10.0)]
    trace = in_phases(
        [page(0, "a/", 3), page(0, "b/", 3)] + [head(10 + i) for i in range(8)], marks
    )
    cost = S3Model(latency_s=0.1).cost
    # listings on 1 slot (two in turn), then 8 HEADs on 4 slots (two rounds)
    assert makespan(trace, 1, cost, head_workers=4) == pytest.approx(0.2 + 0.2)
    assert makespan(trace, 1, cost) == pytest.approx(0.2 + 0.8)  # every phase on 1


def test_phases_follow_one_another() -> None:
    marks = [("names", 0.0), ("heads", 10.0)]
    trace = in_phases([page(0, "", 3), head(10), head(11), head(12)], marks)
    assert [r.phase for r in trace] == ["names", "heads", "heads", "heads"]
    cost = S3Model(latency_s=0.1).cost
    # the names listing, then the three HEADs side by side: not all four at once
    assert makespan(trace, 4, cost) == pytest.approx(0.2)


def test_transfer_time_and_a_replay_of_measured_durations() -> None:
    r = Request(start=0, end=0.25, kind="GET", bucket="b", bytes_out=2_000_000)
    assert S3Model(latency_s=0.1, bandwidth=10e6).cost(r) == pytest.approx(0.3)
    assert makespan([r, r], 1, measured_cost) == pytest.approx(0.5)


def test_a_sampled_trace_replicated_to_the_figure() -> None:
    trace = [page(0, "", 10, "names"), page(1, "c/", 100, "scan"), head(2, "sse")]
    wide = replicate(trace, {"scan": 10, "sse": 10})
    assert counts(wide).by_kind == {"LIST": 11, "HEAD": 10}
    cost = S3Model(latency_s=0.1).cost
    # names once; ten listings on 4 slots (3 rounds); ten HEADs (3 rounds)
    assert makespan(wide, 4, cost) == pytest.approx(0.7)


def test_counts_and_peak_in_flight() -> None:
    trace = [
        Request(start=0, end=2, kind="LIST", keys=1000, bytes_out=300),
        Request(start=1, end=3, kind="HEAD", status=404),
        Request(start=2, end=4, kind="HEAD"),  # starts as the first ends
        Request(start=2.5, end=5, kind="GET", bytes_out=7),
    ]
    c = counts(trace)
    assert c.by_kind == {"LIST": 1, "HEAD": 2, "GET": 1}
    assert (c.keys, c.bytes_out, c.errors, c.peak) == (1000, 307, 1, 3)
    assert peak_in_flight([]) == 0


def test_request_kinds() -> None:
    assert kind_of("GET", "/bucket", {"list-type": ["2"], "prefix": ["a/"]}) == "LIST"
    assert kind_of("GET", "/bucket/", {"prefix": ["a/"]}) == "LIST"  # ListObjects V1
    assert kind_of("GET", "/bucket", {"location": [""]}) == "GET"
    assert kind_of("GET", "/bucket/a/b.sql.gz", {}) == "GET"
    assert kind_of("HEAD", "/bucket/a/b.sql.gz", {}) == "HEAD"
    assert kind_of("PUT", "/bucket/a", {}) == "PUT"


def test_the_proxy_counts_a_real_boto3_listing_and_head(s3_endpoint: str, bucket: str) -> None:
    seed(bucket, {f"spilo/acid-a/uid/logical_backups/{1700000000 + i}.sql.gz": 5 for i in range(7)})
    proxy = TraceProxy(s3_endpoint).start()
    try:
        client: Any = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1")
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="spilo/", PaginationConfig={"PageSize": 3}
        )
        listed = [o["Key"] for p in pages for o in p.get("Contents", ())]
        client.head_object(Bucket=bucket, Key=listed[0])
        trace = [Request.from_json(d) for d in proxy.take()]
    finally:
        proxy.stop()
    assert len(listed) == 7
    c = counts(trace)
    assert c.by_kind == {"LIST": 3, "HEAD": 1}
    assert c.keys == 7
    assert {r.prefix for r in trace if r.kind == "LIST"} == {"spilo/"}
    assert all(r.bucket == bucket and r.end >= r.start for r in trace)
    assert c.bytes_out > 0 and c.errors == 0
    # the three pages are one chain: one slot or sixteen, the same three latencies
    cost = S3Model(latency_s=0.1).cost
    assert makespan(trace, 16, cost) == pytest.approx(0.3)
