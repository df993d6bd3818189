"""The catalog's state: one immutable value per load or refresh, swapped in whole.

A refresh builds a new ``CatalogState`` beside the one in use and replaces it with one
assignment, so a reader (a screen's worker, the review, the command line) always sees one
refresh's clusters, their backups' whereabouts and the Kubernetes view they were joined
from, never half of one and half of the next. The questions that need no I/O (which
cluster a name means, its Jobs, its operator's settings) are answered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from services.config import StorageLocation
from services.errors import UsageError
from services.kube import KubeSnapshot
from services.models import Cluster, ClusterSummary, JobRun, OperatorSettings, SourceProblem
from services.resources import job_run


@dataclass(frozen=True, slots=True)
class Location:
    """A storage location and the Kubernetes contexts whose operators write to it."""

    storage: StorageLocation
    contexts: frozenset[str] = frozenset()  # empty: serves every context (configured)
    origin: str = "config"  # "config" or the operator setting it was read from

    @property
    def id(self) -> str:
        return self.storage.url + (
            f" @{self.storage.endpoint_url}" if self.storage.endpoint_url else ""
        )


@dataclass(frozen=True, slots=True)
class CatalogProgress:
    """An event of a refresh: which stage, how far."""

    stage: str  # "kubernetes", "storage", "done"
    done: int
    total: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One cluster of the catalog, and where its backups are: (location, uid) pairs."""

    summary: ClusterSummary
    parts: tuple[tuple[Location, str], ...] = ()

    @property
    def cluster(self) -> Cluster:
        return self.summary.cluster


def _no_snapshots() -> Mapping[str, KubeSnapshot]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CatalogState:
    """Every cluster as one load or refresh saw it (Kubernetes joined with storage)."""

    rows: tuple[CatalogRow, ...] = ()
    problems: tuple[SourceProblem, ...] = ()
    refreshed_at: float | None = None  # epoch seconds; None when read from the cache
    from_cache: bool = False
    locations: tuple[Location, ...] = ()
    # The Kubernetes view the rows were joined from, by context (read-only).
    snapshots: Mapping[str, KubeSnapshot] = field(default_factory=_no_snapshots, compare=False)

    @property
    def clusters(self) -> tuple[ClusterSummary, ...]:
        return tuple(r.summary for r in self.rows)

    def row(self, cluster: Cluster) -> CatalogRow | None:
        """The row of ``cluster`` (by context, namespace and name)."""
        return next((r for r in self.rows if r.cluster.key == cluster.key), None)

    def find(self, name: str, namespace: str | None = None, context: str | None = None) -> Cluster:
        """The cluster a name means: a live one before a storage-only one of the same name."""
        matches = [
            r.cluster
            for r in self.rows
            if r.cluster.name == name
            and (namespace is None or r.cluster.namespace == namespace)
            and (context is None or r.cluster.context == context)
        ]
        if not matches:
            raise UsageError(
                f"no cluster named {name!r}"
                + (f" in namespace {namespace!r}" if namespace else ""),
                "run `pgdeck clusters` to see the names",
            )
        if len(matches) > 1:
            live = [c for c in matches if c.in_kubernetes]
            if len(live) == 1:
                return live[0]
            where = ", ".join(sorted(f"{c.context}/{c.namespace or '-'}" for c in matches))
            raise UsageError(f"cluster name {name!r} is ambiguous ({where})", "pass -n NAMESPACE")
        return matches[0]

    def operator_settings(self, context: str) -> OperatorSettings | None:
        """The logical-backup settings of the operator in ``context``, when known."""
        snap = self.snapshots.get(context)
        return snap.operator if snap else None

    def jobs(self, cluster: Cluster) -> list[JobRun]:
        """The Jobs of the cluster's backup CronJob that Kubernetes still keeps, newest first."""
        snap = self.snapshots.get(cluster.context)
        if snap is None or not cluster.in_kubernetes:
            return []
        label = (snap.operator.cluster_name_label if snap.operator else None) or "cluster-name"
        runs = []
        for obj in snap.jobs:
            md = obj.get("metadata") or {}
            if md.get("namespace") != cluster.namespace:
                continue
            if (md.get("labels") or {}).get(label) != cluster.name:
                continue
            runs.append(job_run(obj, snap.context, snap.pods, label))
        epoch0 = datetime.fromtimestamp(0, UTC)
        return sorted(runs, key=lambda r: r.started or epoch0, reverse=True)
