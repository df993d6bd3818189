"""Encryption checked as objects appear: one HEAD for each listed object whose server-side
encryption the cache does not know yet, newest first, a bounded number per call.

A listing never says how an object is encrypted, and an object never changes: each costs
one HEAD, once, and the answer is cached for good (the cache's ``heads``). The console runs
``Catalog.check_new_sse`` behind every refresh, so the timeline's SSE column and the weekly
review (``Catalog.with_sse``) find the answers already there and HEAD only what is left.
Newest first because the recent objects are the ones the review's window and the top of a
timeline show. Local ``file://`` copies have no server-side encryption: never checked.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.cache import BackupCache
from services.catalog_state import CatalogProgress, Location
from services.errors import PgdeckError
from services.models import SourceProblem
from services.storage import BackupStore

STAGE = "encryption"  # the CatalogProgress stage of a check
_STORE_EVERY = 256  # answers written to the cache in batches: a cancelled check keeps them
_REPORT_EVERY = 64  # answers between progress reports
_POLL = 0.2  # seconds between looks at ``cancel`` while HEADs are in flight


@dataclass(frozen=True, slots=True)
class SseCheck:
    """What one check did."""

    checked: int = 0  # objects whose encryption is now in the cache
    unencrypted: int = 0  # of those, stored without server-side encryption
    gone: int = 0  # deleted since the last listing: skipped, not an error
    failed: int = 0  # not checked because their location failed (see ``problems``)
    remaining: int = 0  # listed objects of the locations checked still unknown afterwards
    problems: tuple[SourceProblem, ...] = ()  # one per location that failed
    cancelled: bool = False  # stopped by ``cancel`` before the end


class _Skipped:
    """A HEAD not made: its location failed, or the check was cancelled."""


class _Gone:
    """A HEAD answered 404: the object was deleted since the last listing."""


_SKIPPED, _GONE = _Skipped(), _Gone()


def check_new(
    cache: BackupCache,
    stores: Mapping[str, tuple[Location, BackupStore]],
    *,
    limit: int,
    workers: int,
    gone: set[tuple[str, str]],
    progress: Callable[[CatalogProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SseCheck:
    """HEAD up to ``limit`` objects of ``stores`` (location id -> its location and store)
    whose encryption the cache does not know, newest first, ``workers`` at a time, and
    store every answer. ``gone`` (location id, rel) are known deleted: skipped, and added
    to. A location that fails (stalls, refuses) is said once in ``problems`` and its HEADs
    still queued are not made; the other locations go on. ``cancel`` is asked between
    answers; a ``progress`` callback that raises ends the check there (what was answered
    is kept)."""
    report = progress or (lambda _p: None)
    ids = sorted(stores)
    if limit <= 0 or not ids:
        return SseCheck(remaining=_remaining(cache, ids, gone))
    rows = cache.unknown_sse(ids, limit + len(gone))
    todo = [r for r in rows if r not in gone][:limit]
    full = len(rows) == limit + len(gone)  # more may wait behind this batch
    report(CatalogProgress(STAGE, 0, len(todo)))
    failed: dict[str, SourceProblem] = {}  # location id -> why it stopped (said once)
    stop = threading.Event()

    def head(loc_id: str, rel: str) -> str | _Gone | _Skipped:
        if stop.is_set() or loc_id in failed:
            return _SKIPPED
        try:
            sse = stores[loc_id][1].head(rel).sse
        except Exception as exc:  # botocore's own classes too: never a traceback
            if isinstance(exc, PgdeckError) and "not found" in str(exc):
                return _GONE  # deleted since the last listing (retention)
            # Said here, in the thread, before it takes the next HEAD: the location's
            # queued HEADs are skipped at once, not started as one more wave.
            failed.setdefault(loc_id, SourceProblem(stores[loc_id][0].storage.url, str(exc)))
            return _SKIPPED
        return _SKIPPED if sse is None else sse  # None: this store cannot tell

    fresh: dict[str, dict[str, str]] = {}
    answered: dict[str, int] = {}  # location id -> HEADs answered (encryption or 404)
    checked = unencrypted = gone_now = 0
    was_cancelled = False

    def flush() -> None:
        for loc_id, values in fresh.items():
            if values:
                cache.store_sse(loc_id, values)
        fresh.clear()

    pool = cf.ThreadPoolExecutor(max(1, min(workers, len(todo) or 1)))
    try:
        futures = {pool.submit(head, loc_id, rel): (loc_id, rel) for loc_id, rel in todo}
        pending = set(futures)
        done_count = 0
        while pending:
            if cancel is not None and cancel():
                was_cancelled = True
                break
            finished, pending = cf.wait(pending, _POLL, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                loc_id, rel = futures[fut]
                done_count += 1
                answer = fut.result()
                if isinstance(answer, _Skipped):
                    continue
                answered[loc_id] = answered.get(loc_id, 0) + 1
                if isinstance(answer, _Gone):
                    gone.add((loc_id, rel))
                    gone_now += 1
                else:
                    fresh.setdefault(loc_id, {})[rel] = answer
                    checked += 1
                    unencrypted += answer == ""
            if sum(len(v) for v in fresh.values()) >= _STORE_EVERY:
                flush()
            if finished and (done_count % _REPORT_EVERY < len(finished) or not pending):
                report(CatalogProgress(STAGE, done_count, len(todo)))
    finally:
        # Queued HEADs are dropped, not each left to wait out a stalled endpoint's timeout;
        # those in flight end within it, and their answers are not waited for.
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        flush()
    per_location: dict[str, int] = {}
    for loc_id, _ in todo:
        per_location[loc_id] = per_location.get(loc_id, 0) + 1
    remaining = _remaining(cache, ids, gone) if full else len(todo) - checked - gone_now
    return SseCheck(
        checked=checked,
        unencrypted=unencrypted,
        gone=gone_now,
        failed=sum(per_location[loc_id] - answered.get(loc_id, 0) for loc_id in failed),
        remaining=remaining,
        problems=tuple(failed.values()),
        cancelled=was_cancelled,
    )


def _remaining(cache: BackupCache, ids: list[str], gone: set[tuple[str, str]]) -> int:
    if not ids:
        return 0
    return max(0, cache.count_unknown_sse(ids) - sum(1 for loc_id, _ in gone if loc_id in ids))
