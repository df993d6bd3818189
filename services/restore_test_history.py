"""The history of restore tests, read back from the archive's ``restore-test`` reports.

Each report is a document some process wrote, perhaps an older or newer pgdeck, perhaps a
hand-edited file: every field is untrusted. A field of the wrong type or missing is left
out (``None``, or ``""`` for text; the presenters show ``-``), every text passes through
``safe_line`` (no control character reaches a terminal, no line is unbounded), and a report
that names no source cluster is skipped: it cannot be attributed.

Per cluster, a ``ClusterTests``: the tests newest first, the last one's age against the
injected clock, a ``RestoreTestMark`` (failed, stale after ``STALE_AFTER``, never, ok) and the
time-to-restore per calendar quarter, the series the console draws against the objective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.archive import Archive, ArchivedItem
from services.jsonable import iso
from services.marks import RestoreTestMark
from services.text import safe_line

KIND = "restore-test"
# A quarter, for "older than a quarter": the longest calendar quarters (Q3, Q4) have 92
# days, so a cluster tested on the same day of each quarter is never called stale.
STALE_AFTER = timedelta(days=92)
QUARTERS_SHOWN = 8  # two years: the console's sparkline and the JSON series
# Results that say something about the backup. A cancelled or interrupted test stopped
# for reasons of its own (a person, a crash): it neither proves nor disproves a restore.
VERDICTS = frozenset({"passed", "failed", "error"})
# Results whose time-to-restore measured a whole restore: an error stopped it part-way.
MEASURED = frozenset({"passed", "failed"})
_TEXT_LIMIT = 300  # characters of any text field kept


@dataclass(frozen=True, slots=True)
class PastTest:
    """One archived restore test, as far as its document could be read."""

    cluster: str
    namespace: str  # "" when the report does not say
    context: str
    uid: str  # the source cluster's uid
    run_id: str
    result: str  # passed | failed | error | cancelled | interrupted | "" (unknown)
    started: datetime | None
    finished: datetime | None
    ttr_seconds: float | None  # staging ready + restore + validation
    objective_seconds: float | None
    objective_met: bool | None
    backup_url: str
    backup_time: datetime | None
    staging: str  # the staging cluster's name
    teardown: str  # deleted | kept | gone | failed | not-created | ""
    reasons: tuple[str, ...]
    report_url: str  # the Markdown, as the user reaches it (path or s3://)
    report_location: str  # the Markdown, within the archive (``Archive.read``)

    @property
    def when(self) -> datetime | None:
        """When it finished, or (one that never did) started."""
        return self.finished or self.started

    @property
    def verdict(self) -> bool:
        return self.result in VERDICTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace or None,
            "context": self.context or None,
            "uid": self.uid or None,
            "run_id": self.run_id or None,
            "result": self.result or None,
            "started_at": iso(self.started),
            "finished_at": iso(self.finished),
            "ttr_seconds": self.ttr_seconds,
            "objective_seconds": self.objective_seconds,
            "objective_met": self.objective_met,
            "backup": {"url": self.backup_url or None, "time": iso(self.backup_time)},
            "staging": self.staging or None,
            "teardown": self.teardown or None,
            "reasons": list(self.reasons),
            "report": self.report_url,
        }


@dataclass(frozen=True, slots=True)
class QuarterTTR:
    quarter: str  # "2026-Q4"
    seconds: float | None  # None: no measured test that quarter


@dataclass(frozen=True, slots=True)
class ClusterTests:
    """A cluster's restore tests: the console's row and the clusters screen's mark."""

    cluster: str
    namespace: str
    context: str
    tests: tuple[PastTest, ...]  # newest first, at least one
    mark: RestoreTestMark
    age: timedelta | None  # of the last test
    series: tuple[QuarterTTR, ...]  # oldest first, ending with the clock's quarter
    objective_seconds: float | None  # the last one a test named

    @property
    def last(self) -> PastTest:
        return self.tests[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace or None,
            "context": self.context or None,
            "mark": self.mark.value,
            "age_seconds": None if self.age is None else self.age.total_seconds(),
            "objective_seconds": self.objective_seconds,
            "quarters": [{"quarter": q.quarter, "ttr_seconds": q.seconds} for q in self.series],
            "last": self.last.to_dict(),
        }


# --- reading ---------------------------------------------------------------------------------
def read_tests(archive: Archive) -> list[PastTest]:
    """Every restore test the archive holds that names its cluster, newest first."""
    return parse_items(archive.list(KIND), archive.url)


def parse_items(items: Iterable[ArchivedItem], url: Callable[[str], str]) -> list[PastTest]:
    """``url`` makes a location of the archive what the user reaches (``Archive.url``)."""
    tests = [t for i in items if (t := _parse_quietly(i, url)) is not None]
    # Newest first by the test's own time (an archive's names sort by when the report was
    # begun; a document without a time goes last).
    tests.sort(key=lambda t: t.when or datetime.min.replace(tzinfo=UTC), reverse=True)
    return tests


def _parse_quietly(item: ArchivedItem, url: Callable[[str], str]) -> PastTest | None:
    """``parse``, where one report no parser foresaw is left out, not every report."""
    try:
        return parse(item.document, item.markdown, url(item.markdown))
    except Exception as exc:
        logging.getLogger(__name__).warning("%s left out: %r", item.location, exc)
        return None


def parse(doc: Any, markdown: str = "", markdown_url: str = "") -> PastTest | None:
    """One report's document as a ``PastTest``; None when it names no cluster."""
    if not isinstance(doc, dict):
        return None
    source, staging = _map(doc.get("source")), _map(doc.get("staging"))
    cluster = _text(source.get("cluster")) or _text(staging.get("source"))
    if not cluster:
        return None
    objective, ttr = _map(doc.get("objective")), _map(doc.get("time_to_restore"))
    backup = _map(doc.get("backup_object"))
    result = _text(doc.get("result"))
    if not result and doc.get("status") == "interrupted":  # completed by recovery
        result = "interrupted"
    measured = _seconds(ttr.get("total_seconds"))
    return PastTest(
        cluster=cluster,
        namespace=_text(source.get("namespace")),
        context=_text(source.get("context")),
        uid=_text(source.get("uid")),
        run_id=_text(doc.get("run_id")),
        result=result,
        started=_time(doc.get("test_started_at")) or _time(doc.get("started_at")),
        finished=_time(doc.get("test_finished_at")) or _time(doc.get("finished_at")),
        ttr_seconds=measured
        if measured is not None
        else _seconds(objective.get("measured_seconds")),
        objective_seconds=_seconds(objective.get("rto_seconds")),
        objective_met=objective["met"] if isinstance(objective.get("met"), bool) else None,
        backup_url=_text(backup.get("url")) or _text(doc.get("backup")),
        backup_time=_time(backup.get("time")),
        staging=_text(staging.get("name")),
        teardown=_text(_map(doc.get("teardown")).get("status")),
        reasons=tuple(t for t in map(_text, _list(doc.get("reasons"))[:100]) if t)[:20],
        report_url=markdown_url,
        report_location=markdown,
    )


# --- judging ---------------------------------------------------------------------------------
def by_cluster(tests: Sequence[PastTest], now: datetime) -> list[ClusterTests]:
    """The tests grouped per cluster, sorted by name: by its uid where the report names it
    (the same cluster tested from a workstation and from a Job names two contexts), else by
    context, namespace and name."""
    groups: dict[tuple[str, ...], list[PastTest]] = {}
    for t in tests:
        key = (t.namespace, t.cluster, t.uid) if t.uid else (t.context, t.namespace, t.cluster, "")
        groups.setdefault(key, []).append(t)
    out = [summarise(group, now) for group in groups.values()]
    out.sort(key=lambda c: (c.cluster, c.namespace, c.context))
    return out


def summarise(tests: Sequence[PastTest], now: datetime) -> ClusterTests:
    """One cluster's tests (newest first) judged at ``now``."""
    last = tests[0]
    when = last.when
    objective = next((t.objective_seconds for t in tests if t.objective_seconds is not None), None)
    return ClusterTests(
        cluster=last.cluster,
        namespace=last.namespace,
        context=last.context,
        tests=tuple(tests),
        mark=mark(tests, now),
        age=None if when is None else max(timedelta(0), now - when),
        series=quarter_series(tests, now),
        objective_seconds=objective,
    )


def mark(tests: Sequence[PastTest], now: datetime) -> RestoreTestMark:
    """From the newest test with a verdict: failed, stale when it passed longer than
    ``STALE_AFTER`` ago (or when, unknown), ok; never when none has a verdict."""
    last = next((t for t in tests if t.verdict), None)
    if last is None:
        return RestoreTestMark.NEVER
    if last.result != "passed":
        return RestoreTestMark.FAILED
    when = last.when
    if when is None or now - when > STALE_AFTER:
        return RestoreTestMark.STALE
    return RestoreTestMark.OK


def quarter(when: datetime) -> tuple[int, int]:
    when = when.astimezone(UTC)
    return when.year, (when.month - 1) // 3 + 1


def quarter_series(
    tests: Iterable[PastTest], now: datetime, count: int = QUARTERS_SHOWN
) -> tuple[QuarterTTR, ...]:
    """The time-to-restore of each of the last ``count`` calendar quarters (UTC), oldest
    first, the clock's quarter last. A quarter shows its slowest measured test, not its
    last: the objective must hold for every restore, and a quick re-run after a slow one
    must not hide the slow one from the auditor. Tests that stopped part-way (error,
    cancelled, interrupted) measured no whole restore and are left out."""
    worst: dict[tuple[int, int], float] = {}
    for t in tests:
        if t.result in MEASURED and t.ttr_seconds is not None and t.when is not None:
            key = quarter(t.when)
            worst[key] = max(worst.get(key, 0.0), t.ttr_seconds)
    year, q = quarter(now)
    keys = []
    for _ in range(count):
        keys.append((year, q))
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
    return tuple(QuarterTTR(f"{y}-Q{n}", worst.get((y, n))) for y, n in reversed(keys))


def find(
    histories: Iterable[ClusterTests], context: str, namespace: str, name: str, uid: str = ""
) -> ClusterTests | None:
    """The tests of a cluster of the catalog. The uid decides when both sides know it (a
    test run in a Job names the cluster's context as the Job sees it, not as a workstation
    does; a re-created cluster is another, untested one). Otherwise a namespace or context
    the report names must be the cluster's; of several that match, the one naming most wins."""
    best: tuple[int, ClusterTests] | None = None
    for h in histories:
        if h.cluster != name or (h.namespace and h.namespace != namespace):
            continue
        last_uid = h.last.uid
        if last_uid and uid:
            if last_uid != uid:
                continue
            score = 3
        elif h.context and h.context != context:
            continue
        else:
            score = bool(h.namespace) + bool(h.context)
        if best is None or score > best[0]:
            best = (score, h)
    return best[1] if best else None


# --- untrusted fields ------------------------------------------------------------------------
def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return safe_line(value.strip(), _TEXT_LIMIT)


def _seconds(value: Any) -> float | None:
    """A non-negative finite number of seconds; anything else (NaN, inf, an int past any
    float, a bool) is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _time(value: Any) -> datetime | None:
    """An ISO time as UTC (a naive one read as UTC); unknown when it does not parse or
    falls outside what a datetime holds in UTC (year 1 at +01:00)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
