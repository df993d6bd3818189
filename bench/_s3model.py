"""What a request trace would cost against real S3: a latency model the benchmarks replay.

The catalog and review benchmarks run against moto, whose own CPU per request is the
floor of every wall time they measure. This module turns the trace of one run (every
request the counting proxy, ``_s3proxy.py``, saw) into figures that do not depend on
the test server's speed: requests by kind, keys and bytes, the peak in flight, and the
seconds the same trace would take if each request cost what S3's does.

The model. Each request costs ``latency + keys x per_key + bytes / bandwidth``. The
pages of one listing depend on each other (the next page needs the previous page's
token or last key), so the LISTs of one (bucket, prefix, delimiter) form a chain run
in order; every other request is a chain of its own. A run's phases (its names
listing, its per-cluster listings, its HEADs) follow one another, as the client's
pools do; within a phase the chains go, in the order the client started them, to the
first of ``workers`` free slots (the client's thread pool; 1 for a serial script).

Pure arithmetic, no I/O: unit tests in ``tests/test_s3model.py``.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

# S3's published figures the default model uses (see bench/README.md, "The S3 model"):
# AWS's S3 performance whitepaper puts the median latency of small requests (< 512 KB)
# "in the range of tens of milliseconds"; the figure usually quoted for S3 Standard is
# 100-200 ms to the first byte. 100 ms is the upper end of the one and the lower end of
# the other. A listing page holds at most 1,000 keys. AWS publishes no per-key cost of
# a LIST, so the default has none: only whole pages cost, which favours the baseline's
# full pages over pgdeck's short ones.
LATENCY_S = 0.100
PER_KEY_S = 0.0
BANDWIDTH = 0.0  # bytes/s per connection; 0: transfer time not modelled
PAGE_KEYS = 1000


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the proxy saw it (times on the host's monotonic clock)."""

    start: float
    end: float
    kind: str  # LIST, HEAD, GET, PUT, POST, DELETE
    bucket: str = ""
    prefix: str | None = None  # LIST only
    delimiter: str | None = None
    keys: int = 0  # <Key> elements in a LIST's answer
    bytes_in: int = 0
    bytes_out: int = 0
    status: int = 200
    phase: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Request:
        return cls(**{k: d[k] for k in cls.__slots__ if k in d})

    @property
    def chain(self) -> tuple[str, str, str] | None:
        if self.kind != "LIST":
            return None
        return (self.bucket, self.prefix or "", self.delimiter or "")


@dataclass(frozen=True, slots=True)
class S3Model:
    latency_s: float = LATENCY_S
    per_key_s: float = PER_KEY_S
    bandwidth: float = BANDWIDTH

    def cost(self, r: Request) -> float:
        transfer = (r.bytes_in + r.bytes_out) / self.bandwidth if self.bandwidth else 0.0
        return self.latency_s + r.keys * self.per_key_s + transfer

    def describe(self) -> str:
        bw = f"{self.bandwidth / 1e6:g} MB/s" if self.bandwidth else "not modelled"
        return (
            f"latency {self.latency_s * 1000:g} ms per request, {self.per_key_s * 1000:g} ms "
            f"per listed key, transfer {bw}"
        )


def in_phases(requests: Iterable[Request], marks: Sequence[tuple[str, float]]) -> list[Request]:
    """Each request tagged with the last phase mark at or before its start."""
    ordered = sorted(marks, key=lambda m: m[1])
    out = []
    for r in requests:
        phase = ""
        for name, t in ordered:
            if t <= r.start:
                phase = name
        out.append(replace(r, phase=phase))
    return out


def chains(requests: Iterable[Request]) -> list[list[Request]]:
    """Dependent groups, in the order their first request started."""
    groups: dict[Any, list[Request]] = {}
    for i, r in enumerate(sorted(requests, key=lambda r: r.start)):
        groups.setdefault(r.chain or i, []).append(r)
    return list(groups.values())


def phases(requests: Iterable[Request]) -> list[list[Request]]:
    """Requests grouped by phase, in the order the phases began."""
    out: dict[str, list[Request]] = {}
    for r in sorted(requests, key=lambda r: r.start):
        out.setdefault(r.phase, []).append(r)
    return list(out.values())


def makespan(
    requests: Iterable[Request],
    workers: int,
    cost: Callable[[Request], float],
    head_workers: int | None = None,
) -> float:
    """Seconds the trace takes: phases in turn, each phase's chains greedily on
    ``workers`` slots (a phase of HEADs alone on ``head_workers``, when given: pgdeck's
    ``catalog.head_workers``)."""
    total = 0.0
    for phase in phases(requests):
        heads_only = head_workers is not None and all(r.kind == "HEAD" for r in phase)
        slots = [0.0] * max(1, head_workers if heads_only and head_workers else workers)
        for chain in chains(phase):
            free = heapq.heappop(slots)
            heapq.heappush(slots, free + sum(cost(r) for r in chain))
        total += max(slots)
    return total


def measured_cost(r: Request) -> float:
    """A request's own measured duration: replaying with it checks the schedule."""
    return r.end - r.start


def peak_in_flight(requests: Iterable[Request]) -> int:
    events = []
    for r in requests:
        events.append((r.start, 1))
        events.append((r.end, -1))
    peak = now = 0
    for _, step in sorted(events):  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    return peak


def replicate(requests: Sequence[Request], factors: Mapping[str, int]) -> list[Request]:
    """The trace of a world wider than the one measured: every request of a phase made
    ``factors[phase]`` times (1 for a phase not named), each copy's listings a chain of
    their own, as a sampled run's clusters stand for the figure's. A phase kept at 1
    (one listing of all the names) costs the same either way."""
    out: list[Request] = []
    for r in requests:
        for k in range(max(1, factors.get(r.phase, 1))):
            out.append(replace(r, bucket=f"{r.bucket}#{k}") if k else r)
    return out


@dataclass(frozen=True, slots=True)
class Counts:
    requests: int
    by_kind: dict[str, int]
    keys: int
    bytes_in: int
    bytes_out: int
    errors: int
    peak: int

    def kinds(self) -> str:
        return " ".join(f"{k} {n:,}" for k, n in sorted(self.by_kind.items())) or "none"


def counts(requests: Sequence[Request]) -> Counts:
    by_kind: dict[str, int] = {}
    for r in requests:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
    return Counts(
        requests=len(requests),
        by_kind=by_kind,
        keys=sum(r.keys for r in requests),
        bytes_in=sum(r.bytes_in for r in requests),
        bytes_out=sum(r.bytes_out for r in requests),
        errors=sum(1 for r in requests if r.status >= 400),
        peak=peak_in_flight(requests),
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """One run's trace in figures: what it asked for, and what it would take."""

    counts: Counts
    modelled_s: float  # under the S3 model, on ``workers`` slots
    replay_s: float  # each request's measured duration on the same schedule, unwidened
    span_s: float  # the first request's start to the last one's end, as measured
    median_request_s: float  # the median request's measured duration


def figures(
    raw: Iterable[dict[str, Any]],
    marks: Sequence[tuple[str, float]],
    workers: int,
    model: S3Model,
    factors: Mapping[str, int] | None = None,
    head_workers: int | None = None,
) -> Figures:
    """``raw`` as the proxy answers it, ``marks`` the run's phase boundaries; ``factors``
    widen a sampled run (see ``replicate``) before modelling."""
    trace = in_phases([Request.from_json(d) for d in raw], marks)
    wide = replicate(trace, factors) if factors else trace
    return Figures(
        counts=counts(trace),  # as measured, never widened
        modelled_s=makespan(wide, workers, model.cost, head_workers),
        replay_s=makespan(trace, workers, measured_cost, head_workers),
        span_s=max((r.end for r in trace), default=0.0)
        - min((r.start for r in trace), default=0.0),
        median_request_s=statistics.median(measured_cost(r) for r in trace) if trace else 0.0,
    )
