"""The server-side encryption of backup objects: from the cache, by HEAD, and checked in
bulk as objects appear.

A listing never says how an object is encrypted, and an object never changes: each costs
one HEAD, once, and the answer is cached for good (the cache's ``heads``). ``from_heads``
(``Catalog.with_sse``) HEADs what given backups' cache entries lack; ``from_cache``
(``Catalog.cached_sse``) asks nothing. ``check_new`` (``Catalog.check_new_sse``), which the
console runs behind every refresh, HEADs the listed objects the cache does not know yet,
newest first (the recent ones are what the review's window and the top of a timeline
show), a bounded number per call, so that the timeline and the review find them known.
Local ``file://`` copies have no server-side encryption; one may keep a sidecar saying
what S3 said (see ``FileStore``), read afresh each time and never cached.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.cache import BackupCache
from services.catalog_state import CatalogProgress, Location
from services.models import Backup, SourceProblem
from services.storage import BackupStore, ObjectHead, is_gone

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


def rel_of(b: Backup) -> str:
    """A backup's key relative to its location (as the cache keeps it)."""
    # Keys end in <cluster>/<uid>/logical_backups/<epoch>.sql.gz whatever the prefix.
    return "/".join(b.key.split("/")[-4:])


def from_cache(
    cache: BackupCache, locations: Iterable[Location], backups: list[Backup]
) -> list[Backup]:
    """``backups`` with ``sse`` filled from the cache alone (no request) where earlier
    HEADs told it (S3 locations); the others unchanged."""
    remote = {loc.storage.url: loc for loc in locations if loc.storage.scheme == "s3"}
    by_loc: dict[str, list[Backup]] = {}
    for b in backups:
        if b.sse is None and b.location in remote:
            by_loc.setdefault(b.location, []).append(b)
    known: dict[str, str] = {}
    for url, items in by_loc.items():
        rels = {b.url: rel_of(b) for b in items}
        cached = cache.sse(remote[url].id, rels.values())
        known.update({u: cached[r] for u, r in rels.items() if r in cached})
    if not known:
        return list(backups)
    return [dataclasses.replace(b, sse=known[b.url]) if b.url in known else b for b in backups]


def from_heads(
    cache: BackupCache,
    locations: Iterable[Location],
    store_of: Callable[[Location], BackupStore],
    backups: list[Backup],
    workers: int,
) -> list[Backup]:
    """``backups`` with ``sse`` filled from the cache, and from HEADs (``workers`` at a
    time) for what it lacks, their answers cached; an object deleted since the last
    listing is dropped. A file:// location answers only when it keeps a metadata sidecar
    (see ``FileStore``); it is read afresh each time (a local file, and a copy may be
    replaced), and an object the sidecar does not name keeps ``sse`` None (unknown)."""
    by_loc: dict[str, list[Backup]] = {}
    for b in backups:
        by_loc.setdefault(b.location, []).append(b)
    known: dict[str, str] = {}
    deleted: set[str] = set()  # gone from storage since the last listing
    for loc in locations:
        items = by_loc.get(loc.storage.url, [])
        if not items:
            continue
        store = store_of(loc)
        remote = loc.storage.scheme == "s3"
        if not remote and not store.can_tell_sse():
            continue  # a plain local copy has no server-side encryption to speak of
        rels = {b.url: rel_of(b) for b in items}
        cached = cache.sse(loc.id, rels.values()) if remote else {}
        missing = [r for r in rels.values() if r not in cached]
        fresh, gone, failure = _encryptions(store, missing, workers if remote else 1)
        if remote:
            cache.store_sse(loc.id, fresh)  # after a failure too: what was answered is kept
        if failure is not None:
            raise failure
        cached.update(fresh)
        for b in items:
            if rels[b.url] in gone:
                deleted.add(b.url)
            elif rels[b.url] in cached:
                known[b.url] = cached[rels[b.url]]
    return [
        dataclasses.replace(b, sse=known.get(b.url, b.sse)) for b in backups if b.url not in deleted
    ]


def _encryptions(
    store: BackupStore, rels: list[str], workers: int
) -> tuple[dict[str, str], set[str], Exception | None]:
    """HEAD ``rels``: their encryption (where the store can tell), those deleted since the
    last listing, and the first failure (a stalled endpoint: the HEADs still queued are
    then dropped, not each left to wait out the timeout in turn)."""
    fresh: dict[str, str] = {}
    gone: set[str] = set()
    failure: list[Exception] = []
    stop = threading.Event()

    def answer(rel: str, got: ObjectHead | Exception) -> None:
        if isinstance(got, Exception):
            if is_gone(got):
                gone.add(rel)
            else:
                failure.append(got)
                stop.set()
        elif got.sse is not None:
            fresh[rel] = got.sse

    store.heads(rels, workers, answer, stop)
    return fresh, gone, failure[0] if failure else None


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
    by_loc: dict[str, list[str]] = {}
    for loc_id, rel in todo:
        by_loc.setdefault(loc_id, []).append(rel)
    stops = {loc_id: threading.Event() for loc_id in by_loc}
    answers: queue.SimpleQueue[tuple[str, str | None, ObjectHead | Exception | None]]
    answers = queue.SimpleQueue()
    share = max(1, workers // max(1, len(by_loc)))  # requests in flight, in all

    def check(loc_id: str) -> None:
        """One location's HEADs, in its own thread; its end said by a ``None`` rel."""
        error: Exception | None = None

        def answer(rel: str, got: ObjectHead | Exception) -> None:
            answers.put((loc_id, rel, got))
            if isinstance(got, Exception) and not is_gone(got):
                stops[loc_id].set()  # at once: the store makes no HEAD more in the meantime

        try:
            stores[loc_id][1].heads(by_loc[loc_id], share, answer, stops[loc_id])
        except Exception as exc:  # never a traceback: said as the location's problem
            error = exc
        answers.put((loc_id, None, error))

    fresh: dict[str, dict[str, str]] = {}
    answered: dict[str, int] = {}  # location id -> HEADs answered (encryption or 404)
    checked = unencrypted = gone_now = done_count = 0
    was_cancelled = False

    def flush() -> None:
        for loc_id, values in fresh.items():
            if values:
                cache.store_sse(loc_id, values)
        fresh.clear()

    def fail(loc_id: str, exc: Exception) -> None:
        # Said once; the location's queued HEADs are dropped at once, not each left to
        # wait out a stalled endpoint's timeout; the other locations go on.
        failed.setdefault(loc_id, SourceProblem(stores[loc_id][0].storage.url, str(exc)))
        stops[loc_id].set()

    for loc_id in by_loc:
        threading.Thread(target=check, args=(loc_id,), name="pgdeck-sse", daemon=True).start()
    running = len(by_loc)
    try:
        while running:
            if cancel is not None and cancel():
                was_cancelled = True
                break
            try:
                loc_id, key, got = answers.get(timeout=_POLL)
            except queue.Empty:
                continue
            if key is None:  # the location's check ended (with an error of its own?)
                running -= 1
                if isinstance(got, Exception):
                    fail(loc_id, got)
                continue
            done_count += 1  # answers in flight when its location failed count too
            if isinstance(got, Exception):
                if is_gone(got):
                    gone.add((loc_id, key))
                    gone_now += 1
                    answered[loc_id] = answered.get(loc_id, 0) + 1
                else:
                    fail(loc_id, got)
            elif got is not None and got.sse is not None:  # else: the store cannot tell
                fresh.setdefault(loc_id, {})[key] = got.sse
                checked += 1
                unencrypted += got.sse == ""
                answered[loc_id] = answered.get(loc_id, 0) + 1
            if sum(len(v) for v in fresh.values()) >= _STORE_EVERY:
                flush()
            if done_count % _REPORT_EVERY == 0:
                report(CatalogProgress(STAGE, done_count, len(todo)))
    finally:
        # HEADs queued are dropped, and those in flight are not waited for.
        for ev in stops.values():
            ev.set()
        flush()
    if not was_cancelled:
        report(CatalogProgress(STAGE, len(todo), len(todo)))  # every HEAD made or dropped
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
