"""The catalog: clusters from Kubernetes joined with their backups in object storage.

``Catalog.load_cached()`` answers at once from the local cache; ``Catalog.refresh()``
asks the sources, in parallel, only for what is new, and writes it back. Either builds a
new immutable ``CatalogState`` (``services.catalog_state``) and swaps it in with one
assignment: readers see one refresh whole, never a refresh under way. Sources fail
independently: an unreachable API leaves storage browsable and the other way round,
and each failure is kept as a ``SourceProblem`` for the presenters to show.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services import sse_check
from services.cache import BackupCache, CachedObject
from services.catalog_join import RECENT_SIZES, join
from services.catalog_state import CatalogProgress, CatalogRow, CatalogState, Location
from services.clock import system_clock
from services.config import Config, StorageLocation
from services.errors import PgdeckError, StorageStalled, UsageError
from services.kube import KubeSnapshot, KubeSource, LogStream, open_kube_sources
from services.models import Backup, Cluster, JobRun, OperatorSettings, SourceProblem
from services.operator import DEFAULT_S3_PREFIX
from services.sse_check import SseCheck, rel_of
from services.storage import BackupStore, S3Store, StoredObject, open_store
from services.text import safe_text

__all__ = [
    "RECENT_SIZES",
    "Catalog",
    "CatalogProgress",
    "CatalogRow",
    "CatalogState",
    "Location",
    "SseCheck",
    "location_from_operator",
]

# An object whose key's epoch is later than now plus this is future-dated (a wrong clock,
# or a forged key): flagged, and never chosen as a cluster's latest backup.
FUTURE_SKEW = timedelta(minutes=5)


class Catalog:
    def __init__(
        self,
        config: Config,
        *,
        kube_sources: list[KubeSource] | None = None,
        stores: dict[str, BackupStore] | None = None,
        cache: BackupCache | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or system_clock  # "now" for marks and ages
        self._kube_sources = kube_sources
        self._stores: dict[str, BackupStore] = dict(stores or {})
        self.cache = cache or BackupCache(config.cache / "catalog.sqlite3")
        # The sources' last good views, by context: a load's or refresh's working set,
        # copied (read-only) into each state it builds.
        self._snapshots: dict[str, KubeSnapshot] = {}
        self._loading = threading.Lock()  # one load or refresh at a time
        # Stores of buckets named by URL, one per bucket: a botocore client costs ~13 MB
        # and restore tests side by side resolve many URLs of one bucket.
        self._by_url: dict[str, S3Store] = {}
        self._by_url_lock = threading.Lock()
        self.state = CatalogState()  # replaced whole, never changed in place
        self._sse_checking = threading.Lock()  # one encryption check at a time
        self._sse_gone: set[tuple[str, str]] = set()  # (location id, rel) HEAD found deleted

    # --- sources ------------------------------------------------------------------------
    @property
    def kube_sources(self) -> list[KubeSource]:
        if self._kube_sources is None:
            self._kube_sources = open_kube_sources(self.config.kubernetes)
        return self._kube_sources

    def store(self, location: Location) -> BackupStore:
        store = self._stores.get(location.id)
        if store is None:
            c = self.config.catalog
            # The client's connection pool holds both the listings and the HEADs in flight.
            store = open_store(
                location.storage, max(c.workers, c.head_workers), c.storage_timeout_seconds
            )
            self._stores[location.id] = store
        return store

    def locations(self) -> list[Location]:
        """The storage locations of the current state's Kubernetes view (or configured)."""
        return locations_of(self.config, self.state.snapshots)

    def sources_key(self) -> str:
        """What the catalog's rows are built from, as a digest: the configuration's
        Kubernetes and storage sections (with a kubeconfig's current context when the
        configuration names none). A view of the rows kept under another key is of
        another configuration and is never shown."""
        kube = self.config.kubernetes
        parts = [repr(kube), repr(self.config.storage)]
        if kube.enabled and kube.manifests is None and not kube.contexts:
            parts.append(_current_context(kube.kubeconfig))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    # --- loading ------------------------------------------------------------------------
    def load_cached(self) -> CatalogState:
        """The catalog as last seen, without touching the network."""
        with self._loading:
            self._load_cached_snapshots()
            self.state = self._build([], from_cache=True)
        return self.state

    def _load_cached_snapshots(self) -> None:
        for context, (data, _) in self.cache.kube().items():
            self._snapshots.setdefault(context, _snapshot_from_json(context, data))

    def refresh(
        self,
        *,
        full: bool = False,
        kubernetes: bool = True,
        storage: bool = True,
        progress: Callable[[CatalogProgress], None] | None = None,
    ) -> CatalogState:
        """Ask the sources for what is new, then swap in the state built from it. A
        ``progress`` callback that raises ends the refresh there (the state in use stays)."""
        report = progress or (lambda _p: None)
        problems: list[SourceProblem] = []
        with self._loading:
            if kubernetes:
                self._refresh_kube(problems, report)
            else:
                self._load_cached_snapshots()
            if storage:
                self._refresh_storage(problems, report, full=full)
            self.state = self._build(problems, from_cache=False, refreshed_at=time.time())
        report(CatalogProgress("done", 1, 1))
        return self.state

    def _refresh_kube(
        self, problems: list[SourceProblem], report: Callable[[CatalogProgress], None]
    ) -> None:
        try:
            sources = self.kube_sources
        except PgdeckError as exc:
            problems.append(SourceProblem("kubernetes", str(exc)))
            return
        report(CatalogProgress("kubernetes", 0, len(sources)))
        with cf.ThreadPoolExecutor(max(1, min(8, len(sources)))) as pool:
            futures = {pool.submit(_safe_snapshot, s): s for s in sources}
            for n, fut in enumerate(cf.as_completed(futures), 1):
                snap = fut.result()
                problems.extend(snap.problems)
                if snap.reachable:
                    self._snapshots[snap.context] = snap
                    self.cache.store_kube(snap.context, _snapshot_to_json(snap))
                elif snap.context in self._snapshots:
                    pass  # keep the last good view of an unreachable context
                else:
                    cached = self.cache.kube().get(snap.context)
                    if cached:
                        self._snapshots[snap.context] = _snapshot_from_json(snap.context, cached[0])
                report(CatalogProgress("kubernetes", n, len(sources), snap.context))

    def _refresh_storage(
        self,
        problems: list[SourceProblem],
        report: Callable[[CatalogProgress], None],
        *,
        full: bool,
    ) -> None:
        locations = locations_of(self.config, self._snapshots)
        if not locations:
            problems.append(
                SourceProblem(
                    "storage",
                    "no storage location: none configured and no operator configuration found",
                    fatal_for_source=True,
                )
            )
            return
        workers = self.config.catalog.workers
        max_age = self.config.catalog.full_refresh_hours * 3600
        plans: list[tuple[Location, list[str], dict[str, dict[str, str]], set[str], set[str]]] = []
        k8s_uids = self._kube_uids()
        # Cluster names first (one delimited listing per location), then every
        # cluster's skip-scan in one shared pool: the slow part runs side by side.
        with cf.ThreadPoolExecutor(max(1, min(workers, len(locations)))) as pool:
            named = {pool.submit(self.store(loc).list_clusters): loc for loc in locations}
            for named_fut in cf.as_completed(named):
                loc = named[named_fut]
                try:
                    names = named_fut.result()
                except PgdeckError as exc:
                    problems.append(SourceProblem(loc.storage.url, str(exc)))
                    continue
                # Incremental listings start after the newest key not from the future: a
                # future-dated key (a forged 9999999999) would hide every new one after it.
                last = self.cache.last_keys(loc.id, not_after=self._future_epoch())
                times = self.cache.listing_times(loc.id)
                now = time.time()
                fulls = {n for n in names if full or n not in times or now - times[n][0] > max_age}
                gone = set(times) - set(names)
                plans.append((loc, names, last, fulls, gone))
        tasks = [(loc, name, last, fulls) for loc, names, last, fulls, _ in plans for name in names]
        results: dict[str, dict[str, list[StoredObject]]] = {loc.id: {} for loc, *_ in plans}
        failed: dict[str, set[str]] = {loc.id: set() for loc, *_ in plans}
        total = len(tasks)
        report(CatalogProgress("storage", 0, total))
        # Once a location's endpoint stalled, its listings still waiting are not tried:
        # each would wait out the timeout again (a thousand clusters, a thousand minutes).
        stalled: set[str] = set()

        def scan(
            loc: Location, name: str, last: dict[str, dict[str, str]], fulls: set[str]
        ) -> list[StoredObject] | None:
            if loc.id in stalled:
                return None
            if name in fulls:
                return self.store(loc).list_cluster(name)
            # Only the newest uid can still grow: an older one belongs to a cluster that
            # was deleted (and perhaps created again under a new uid, which Kubernetes
            # names; a new uid Kubernetes does not know waits for the next full listing).
            cached = last.get(name, {})
            known: dict[str, str] = {}
            if cached:
                newest = max(cached, key=lambda uid: cached[uid].rsplit("/", 1)[-1])
                known[newest] = cached[newest]
            for uid in k8s_uids.get(name, ()):
                known.setdefault(uid, cached.get(uid, f"{name}/{uid}/"))
            return self.store(loc).list_cluster(name, known or None)

        with cf.ThreadPoolExecutor(workers) as pool:
            futures = {
                pool.submit(scan, loc, name, last, fulls): (loc, name)
                for loc, name, last, fulls in tasks
            }
            for n, fut in enumerate(cf.as_completed(futures), 1):
                loc, name = futures[fut]
                try:
                    found = fut.result()
                except StorageStalled as exc:
                    failed[loc.id].add(name)
                    if loc.id not in stalled:  # said once, as the location's failure
                        stalled.add(loc.id)
                        problems.append(SourceProblem(loc.storage.url, str(exc)))
                    continue
                except PgdeckError as exc:
                    failed[loc.id].add(name)
                    problems.append(
                        SourceProblem(loc.storage.url, str(exc), fatal_for_source=False)
                    )
                else:
                    if found is None:
                        failed[loc.id].add(name)
                    else:
                        results[loc.id][name] = found
                if n % 16 == 0 or n == total:
                    report(CatalogProgress("storage", n, total, name))
        for loc, _names, _last, fulls, gone in plans:
            ok = results[loc.id]
            self.cache.store_listing(loc.id, ok, fulls & set(ok), gone)
            refused = self.store(loc).take_refused()
            if refused:
                problems.append(
                    SourceProblem(
                        loc.storage.url,
                        f"{len(refused)} link(s) leading outside the storage root skipped "
                        f"({safe_text(', '.join(refused[:3]))}{', ...' if len(refused) > 3 else ''})"
                        "; copy the files in instead of linking them",
                        fatal_for_source=False,
                    )
                )

    def _future_epoch(self) -> int:
        """Key epochs after this are future-dated (see ``FUTURE_SKEW``)."""
        return int((self.clock() + FUTURE_SKEW).timestamp())

    def future_dated(self, backup: Backup) -> bool:
        """Whether ``backup``'s key is dated later than now (plus a little skew): a wrong
        clock on the backup's node, or a forged key. Such a backup is never "latest"."""
        return backup.time > self.clock() + FUTURE_SKEW

    def _kube_uids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for snap in self._snapshots.values():
            for obj in snap.postgresqls:
                md = obj.get("metadata") or {}
                if md.get("name") and md.get("uid"):
                    out.setdefault(md["name"], set()).add(md["uid"])
        return out

    # --- joining ------------------------------------------------------------------------
    def _build(
        self,
        problems: list[SourceProblem],
        *,
        from_cache: bool,
        refreshed_at: float | None = None,
    ) -> CatalogState:
        snapshots = MappingProxyType(dict(self._snapshots))
        locations = tuple(locations_of(self.config, snapshots))
        rows = join(
            snapshots, locations, self.cache, self._backup, self.clock(), self._future_epoch()
        )
        return CatalogState(
            rows=rows,
            problems=tuple(problems),
            refreshed_at=refreshed_at,
            from_cache=from_cache,
            locations=locations,
            snapshots=snapshots,
        )

    def _backup(self, loc: Location, o: CachedObject) -> Backup:
        store = self.store(loc)
        return Backup(
            url=store.url(o.rel),
            location=loc.storage.url,
            key=store.full_key(o.rel),
            cluster=o.cluster,
            uid=o.uid,
            time=_utc(o.epoch),
            size=o.size,
            storage_class=o.storage_class,
            etag=o.etag,
        )

    # --- queries ------------------------------------------------------------------------
    def find(self, name: str, namespace: str | None = None, context: str | None = None) -> Cluster:
        return self.state.find(name, namespace, context)

    def backups(
        self, cluster: Cluster, *, with_sse: bool = False, state: CatalogState | None = None
    ) -> list[Backup]:
        """Every backup of the row ``cluster`` (all its uids) in ``state`` (the current
        one unless given), newest first."""
        row = (state or self.state).row(cluster)
        if row is None:
            return []
        out: list[Backup] = []
        for loc, uid in row.parts:
            for o in self.cache.objects(loc.id, cluster.name):
                if o.uid == uid:
                    out.append(self._backup(loc, o))
        out.sort(key=lambda b: (b.time, b.key), reverse=True)
        if with_sse:
            out = self.with_sse(out)
        return out

    def cached_sse(self, backups: list[Backup]) -> list[Backup]:
        """``backups`` with ``sse`` filled from the cache alone (no request): what earlier
        HEADs (``with_sse``, ``check_new_sse``) told of S3 objects; the others unchanged."""
        return sse_check.from_cache(self.cache, self.locations(), backups)

    def with_sse(self, backups: list[Backup]) -> list[Backup]:
        """Fill ``sse`` from HEADs, in parallel and cached (objects never change); an object
        deleted since the last listing is dropped. See ``sse_check.from_heads``."""
        return sse_check.from_heads(
            self.cache, self.locations(), self.store, backups, self.config.catalog.head_workers
        )

    def check_new_sse(
        self,
        *,
        limit: int | None = None,
        progress: Callable[[CatalogProgress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> SseCheck:
        """HEAD the listed objects of S3 locations whose encryption the cache does not know
        yet, newest first, up to ``limit`` (default ``catalog.sse_check_per_refresh``; 0
        checks none), ``catalog.head_workers`` at a time, and cache every answer for good: a
        later ``with_sse`` (the review, a timeline) finds them there. A second call goes on
        where the first stopped; a location the last refresh failed to list is skipped.
        See ``services.sse_check``."""
        if limit is None:
            limit = self.config.catalog.sse_check_per_refresh
        # A location the last refresh could not list is left alone: its HEADs would wait
        # out the same timeout, to say the same failure again.
        failed = {p.source for p in self.state.problems if p.fatal_for_source}
        stores = {
            loc.id: (loc, self.store(loc))
            for loc in self.locations()
            # a local copy has no server-side encryption
            if loc.storage.scheme == "s3" and loc.storage.url not in failed
        }
        with self._sse_checking:
            return sse_check.check_new(
                self.cache,
                stores,
                limit=limit,
                workers=self.config.catalog.head_workers,
                gone=self._sse_gone,
                progress=progress,
                cancel=cancel,
            )

    def operator_settings(self, context: str) -> OperatorSettings | None:
        """The logical-backup settings of the operator in ``context``, when known."""
        return self.state.operator_settings(context)

    def jobs(self, cluster: Cluster) -> list[JobRun]:
        """The Jobs of the cluster's backup CronJob that Kubernetes still keeps, newest first."""
        return self.state.jobs(cluster)

    def resolve(self, spec: str, namespace: str | None = None) -> tuple[BackupStore, str, str]:
        """A backup named by URL, ``CLUSTER@latest`` or ``CLUSTER@<ISO time>`` (the newest
        at or before it, never a future-dated one): the store to read it from, its key
        there, and its URL. A file:// path inside a configured file:// location is read
        as part of it (links may not leave that root), any other from its own directory."""
        from urllib.parse import urlsplit

        from services.storage import FileStore

        parts = urlsplit(spec)
        if parts.scheme == "file":
            path = Path(parts.path)
            for loc in self.locations():
                root = loc.storage.url.removeprefix("file://").rstrip("/") + "/"
                if loc.storage.scheme == "file" and str(path).startswith(root):
                    store, rel = self.store(loc), str(path)[len(root) :]
                    return store, rel, store.url(rel)
            fstore = FileStore(StorageLocation(url=f"file://{path.parent}"))
            return fstore, path.name, fstore.url(path.name)
        if parts.scheme == "s3":
            with self._by_url_lock:
                s3 = self._by_url.get(parts.netloc)
                if s3 is None:
                    same = [
                        loc.storage
                        for loc in self.locations()
                        if loc.storage.bucket == parts.netloc
                    ]
                    base = same[0] if same else StorageLocation(url=f"s3://{parts.netloc}")
                    s3 = S3Store(
                        dataclasses.replace(base, url=f"s3://{parts.netloc}"),
                        timeout=self.config.catalog.storage_timeout_seconds,
                    )
                    self._by_url[parts.netloc] = s3
            key = parts.path.lstrip("/")
            return s3, key, s3.url(key)
        name, sep, when = spec.partition("@")
        if not sep or not name:
            raise UsageError(
                f"{spec!r} names no backup",
                "use s3://bucket/key, file:///path, CLUSTER@latest or CLUSTER@2026-11-20T03:00Z",
            )
        state = self.state
        every = self.backups(state.find(name, namespace), state=state)
        backups = [b for b in every if not self.future_dated(b)]
        future = len(every) - len(backups)
        if when != "latest":
            try:
                at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError as exc:
                raise UsageError(
                    f"{when!r} is not an ISO 8601 time", "e.g. 2026-11-20T03:00Z"
                ) from exc
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            backups = [b for b in backups if b.time <= at]
        if not backups:
            raise UsageError(
                f"no backup of {name} "
                + ("in storage" if when == "latest" else f"at or before {when}")
                + (f" (and {future} dated in the future, never chosen)" if future else "")
            )
        b = backups[0]
        loc = next(loc for loc in self.locations() if loc.storage.url == b.location)
        return self.store(loc), rel_of(b), b.url

    def read_log(
        self, context: str, namespace: str, pod: str, *, follow: bool = False
    ) -> LogStream:
        for source in self.kube_sources:
            if source.context == context:
                return source.read_log(namespace, pod, follow=follow)
        raise UsageError(f"no Kubernetes source for context {context!r}")


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _current_context(kubeconfig: Path | None) -> str:
    """The kubeconfig's ``current-context`` line as written (no YAML parser, no client:
    this runs before the first frame), with the file it came from."""
    env = os.environ.get("KUBECONFIG", "")
    path = kubeconfig or Path(env.split(os.pathsep)[0] if env else Path.home() / ".kube/config")
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            found = next((line for line in f if line.startswith("current-context:")), "")
    except OSError:
        found = ""
    return f"{path} {found.strip()} {os.environ.get('KUBERNETES_SERVICE_HOST', '')}"


def _safe_snapshot(source: KubeSource) -> KubeSnapshot:
    try:
        return source.snapshot()
    except PgdeckError as exc:
        snap = KubeSnapshot(context=source.context, reachable=False)
        snap.problems.append(SourceProblem(f"kubernetes {source.context}", str(exc)))
        return snap


def locations_of(config: Config, snapshots: Mapping[str, KubeSnapshot]) -> list[Location]:
    """The configured storage locations, else those the operators' settings name."""
    if config.storage:
        return [Location(s) for s in config.storage]
    # One location however many contexts' operators write to it: each is listed
    # once, and its clusters are matched within all of those contexts.
    found: dict[str, Location] = {}
    for snap in snapshots.values():
        loc = location_from_operator(snap.operator, snap.context)
        if loc is None:
            continue
        seen = found.get(loc.id)
        if seen is not None:
            loc = dataclasses.replace(seen, contexts=seen.contexts | loc.contexts)
        found[loc.id] = loc
    return list(found.values())


def location_from_operator(settings: OperatorSettings | None, context: str) -> Location | None:
    if settings is None or not settings.bucket:
        return None
    prefix = (settings.prefix if settings.prefix is not None else DEFAULT_S3_PREFIX).strip("/")
    url = f"s3://{settings.bucket}/{prefix}".rstrip("/")
    return Location(
        StorageLocation(
            url=url, endpoint_url=settings.endpoint or None, region=settings.region or None
        ),
        contexts=frozenset({context}),
        origin=settings.source,
    )


def _snapshot_to_json(snap: KubeSnapshot) -> dict[str, Any]:
    return {
        "postgresqls": snap.postgresqls,
        "cronjobs": snap.cronjobs,
        "jobs": snap.jobs,
        "pods": snap.pods,
        "operator": dataclasses.asdict(snap.operator) if snap.operator else None,
    }


def _snapshot_from_json(context: str, data: dict[str, Any]) -> KubeSnapshot:
    op = data.get("operator")
    return KubeSnapshot(
        context=context,
        postgresqls=data.get("postgresqls", []),
        cronjobs=data.get("cronjobs", []),
        jobs=data.get("jobs", []),
        pods=data.get("pods", []),
        operator=OperatorSettings(**op) if op else None,
    )
