"""Joining Kubernetes' clusters with storage's backups into the catalog's rows.

Pure work over what the sources last said (the Kubernetes snapshots and the local cache
of every object listed): which cluster owns which (location, uid) of backups, each row's
last backup, recent sizes and health mark. Nothing here asks a source.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from services.cache import BackupCache, CachedObject
from services.catalog_state import CatalogRow, Location
from services.health import SKEW, Health, cluster_health
from services.kube import KubeSnapshot
from services.models import Backup, Cluster, ClusterSummary, JobRun
from services.resources import cluster_from_resource, job_run

RECENT_SIZES = 72  # backups per cluster kept for the sparkline and health of the last days

# (count, rel, epoch, size) of a (location, name, uid): the cache's summary of it
_Summary = tuple[int, str, int, int]
_Part = tuple[_Summary, Location, str]  # a row's part: its summary, location and uid


@dataclasses.dataclass
class _Entry:
    """One row being joined: a cluster and the (location, uid) pairs of its backups."""

    cluster: Cluster
    parts: list[tuple[Location, str]] = dataclasses.field(default_factory=list)


def join(
    snapshots: Mapping[str, KubeSnapshot],
    locations: Sequence[Location],
    cache: BackupCache,
    backup: Callable[[Location, CachedObject], Backup],
    now: datetime,
    future_epoch: int,
) -> tuple[CatalogRow, ...]:
    """Every cluster Kubernetes names (in its order), then those only storage knows (by
    name). ``backup`` makes a ``Backup`` of a cached object; a key dated after
    ``future_epoch`` is never a row's last backup."""
    entries: list[_Entry] = []
    by_name: dict[str, list[_Entry]] = {}
    for snap in snapshots.values():
        cronjobs = {
            (
                (o.get("metadata") or {}).get("namespace", ""),
                (o.get("metadata") or {}).get("name", ""),
            ): o
            for o in snap.cronjobs
        }
        for obj in snap.postgresqls:
            c = cluster_from_resource(obj, snap.context, snap.operator, cronjobs)
            e = _Entry(c)
            entries.append(e)
            by_name.setdefault(c.name, []).append(e)
    summaries: dict[tuple[str, str, str], _Summary] = {}
    recents: dict[tuple[str, str, str], tuple[tuple[int, ...], tuple[int, ...]]] = {}
    storage_only: dict[str, _Entry] = {}
    for loc in locations:
        for name, uid, count, rel, epoch, size in cache.summaries(loc.id):
            summaries[(loc.id, name, uid)] = (count, rel, epoch, size)
            owner = _owner(by_name.get(name, []), uid, loc)
            if owner is None:
                so = storage_only.get(name)
                if so is None:
                    so = _Entry(
                        Cluster(name=name, namespace="", uid=uid, context="", in_kubernetes=False)
                    )
                    storage_only[name] = so
                owner = so
            owner.parts.append((loc, uid))
        for (name, uid), recent in cache.recent(loc.id, RECENT_SIZES).items():
            recents[(loc.id, name, uid)] = recent
    ordered = entries + sorted(storage_only.values(), key=lambda x: x.cluster.name)
    job_index = _job_index(snapshots)
    out: list[CatalogRow] = []
    for e in ordered:
        # Each part is one (location, uid); the newest part gives the last backup.
        parts: list[_Part] = sorted(
            ((summaries[(loc.id, e.cluster.name, uid)], loc, uid) for loc, uid in e.parts),
            key=lambda part: part[0][2],
        )
        cluster = e.cluster
        last = None
        if parts:
            (_, rel, epoch, size), loc, uid = parts[-1]
            if not cluster.in_kubernetes:
                cluster = dataclasses.replace(cluster, uid=uid)
            if epoch > future_epoch:  # rare: the latest is the newest backup not future-dated
                last = _newest_not_after(cache, backup, cluster.name, parts, future_epoch)
            else:
                last = backup(
                    loc, CachedObject(loc.id, rel, cluster.name, uid, epoch, size, None, None)
                )
        epochs, sizes = _recent(
            [recents.get((loc.id, cluster.name, uid), ((), ())) for _, loc, uid in parts]
        )
        summary = ClusterSummary(
            cluster=cluster,
            backups=sum(s[0] for s, _, _ in parts),
            last_backup=last,
            uids=tuple(dict.fromkeys(uid for _, _, uid in reversed(parts))),
            recent_sizes=sizes,
            recent_epochs=epochs,
            health=_health(cluster, parts, epochs, job_index, now),
        )
        out.append(CatalogRow(summary, tuple(e.parts)))
    return tuple(out)


def _newest_not_after(
    cache: BackupCache,
    backup: Callable[[Location, CachedObject], Backup],
    name: str,
    parts: list[_Part],
    epoch: int,
) -> Backup | None:
    best: tuple[Location, CachedObject] | None = None
    uids = {(loc.id, uid) for _, loc, uid in parts}
    for loc in {loc.id: loc for _, loc, _ in parts}.values():
        for o in cache.objects(loc.id, name):  # newest first
            if o.epoch <= epoch and (loc.id, o.uid) in uids:
                if best is None or o.epoch > best[1].epoch:
                    best = (loc, o)
                break
    return None if best is None else backup(*best)


def _health(
    cluster: Cluster,
    parts: list[_Part],
    epochs: tuple[int, ...],
    job_index: dict[tuple[str, str, str], list[JobRun]],
    now: datetime,
) -> Health:
    """The row's mark. Of a cluster with other uids' objects (re-created), only those
    written since it was created count: a predecessor's backups cover none of its runs.
    (By time, not by uid: a Kubernetes view older than a re-creation still names the
    old uid, while storage already holds the new one's objects.)"""
    jobs = job_index.get(cluster.key, ())
    if (
        not cluster.in_kubernetes
        or cluster.created is None
        or all(uid == cluster.uid for _, _, uid in parts)
    ):
        return cluster_health(cluster, epochs, jobs, now)
    since = (cluster.created - SKEW).timestamp()
    mine = epochs[bisect.bisect_left(epochs, since) :]
    return cluster_health(cluster, mine, jobs, now, recreated=len(mine) < len(epochs))


def _job_index(
    snapshots: Mapping[str, KubeSnapshot],
) -> dict[tuple[str, str, str], list[JobRun]]:
    """Every kept Job by (context, namespace, cluster), without pods: for health marks."""
    out: dict[tuple[str, str, str], list[JobRun]] = {}
    for snap in snapshots.values():
        label = (snap.operator.cluster_name_label if snap.operator else None) or "cluster-name"
        for obj in snap.jobs:
            run = job_run(obj, snap.context, [], label)
            if run.cluster:
                out.setdefault((snap.context, run.namespace, run.cluster), []).append(run)
    return out


def _owner(candidates: list[_Entry], uid: str, loc: Location) -> _Entry | None:
    """Which Kubernetes cluster owns backups under (name, uid) in this location."""
    scoped = [e for e in candidates if not loc.contexts or e.cluster.context in loc.contexts]
    for e in scoped:
        if e.cluster.uid == uid:
            return e
    # A cluster deleted and created again under the same name writes under a new uid;
    # the old uid's backups are still its history, when the name is unambiguous.
    live_uids = {e.cluster.uid for e in scoped}
    if len(scoped) == 1 and uid not in live_uids:
        return scoped[0]
    return None


def _recent(
    parts: list[tuple[tuple[int, ...], tuple[int, ...]]],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The newest RECENT_SIZES (epochs, sizes) of a row's parts (one per location and uid),
    oldest first. Nearly every row has one part, which is already in order."""
    if len(parts) == 1:
        epochs, sizes = parts[0]
        return epochs[-RECENT_SIZES:], sizes[-RECENT_SIZES:]
    pairs = sorted(pair for epochs, sizes in parts for pair in zip(epochs, sizes, strict=True))
    pairs = pairs[-RECENT_SIZES:]
    return tuple(e for e, _ in pairs), tuple(n for _, n in pairs)
