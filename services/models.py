"""The catalog's values: frozen dataclasses, UTC times, sizes in bytes.

Services return these; the command line and the TUI present them. Nothing here
does I/O, and nothing is humanized here (that happens at the edge); ``to_dict()`` is
each value's JSON form (see ``services.jsonable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.jsonable import iso

if TYPE_CHECKING:
    from services.health import Health


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """The operator's logical-backup settings, read from its configuration."""

    source: str  # e.g. "OperatorConfiguration default/postgres-operator" or "ConfigMap ..."
    bucket: str | None = None
    prefix: str | None = None  # None when the operator has no such setting (1.10.x): "spilo"
    schedule: str | None = None
    retention: str | None = None
    sse: str | None = None
    endpoint: str | None = None
    region: str | None = None
    job_prefix: str | None = None
    cluster_name_label: str | None = None


@dataclass(frozen=True, slots=True)
class CronJobState:
    namespace: str
    name: str
    schedule: str
    suspended: bool
    last_schedule: datetime | None
    last_successful: datetime | None
    active: int
    time_zone: str | None = None  # spec.timeZone (an IANA name); None: the controller's UTC

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "schedule": self.schedule,
            "suspended": self.suspended,
            "last_schedule": iso(self.last_schedule),
            "last_successful": iso(self.last_successful),
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class PodRun:
    namespace: str
    name: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    started: datetime | None
    finished: datetime | None
    exit_code: int | None
    reason: str | None  # container termination reason: Error, OOMKilled, ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "exit_code": self.exit_code,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class JobRun:
    """A Job of the logical-backup CronJob that Kubernetes still keeps."""

    context: str
    namespace: str
    name: str
    cluster: str
    started: datetime | None
    finished: datetime | None
    status: str  # "running", "succeeded", "failed"
    reason: str | None  # BackoffLimitExceeded, DeadlineExceeded, ...
    message: str | None
    pods: tuple[PodRun, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "namespace": self.namespace,
            "name": self.name,
            "cluster": self.cluster,
            "status": self.status,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "reason": self.reason,
            "message": self.message,
            "pods": [p.to_dict() for p in self.pods],
        }


@dataclass(frozen=True, slots=True)
class Cluster:
    """A ``postgresql`` resource, or a name known only to storage (``in_kubernetes`` False)."""

    name: str
    namespace: str  # "" for clusters known only to storage
    uid: str  # the live uid; for storage-only clusters, the newest uid seen in storage
    context: str  # Kubernetes context; "" for storage-only clusters
    in_kubernetes: bool = True
    team: str | None = None
    version: str | None = None
    instances: int | None = None
    status: str | None = None  # PostgresClusterStatus; None when empty or storage-only
    created: datetime | None = None
    logical_backup: bool = False
    schedule: str | None = None  # effective: the cluster's own, else the operator's
    retention: str | None = None  # effective, as the operator writes it ("2 weeks")
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    databases: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    cronjob: CronJobState | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.context, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Backup:
    """One logical backup object."""

    url: str  # s3://bucket/key or file:///path
    location: str  # the storage location's url (s3://bucket/prefix)
    key: str  # the object's key (or path relative to a file:// location)
    cluster: str
    uid: str
    time: datetime
    size: int
    storage_class: str | None = None
    etag: str | None = None
    sse: str | None = None  # known only after a HEAD; "" means "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "cluster": self.cluster,
            "uid": self.uid,
            "time": iso(self.time),
            "size": self.size,
            "storage_class": self.storage_class,
            "etag": self.etag,
            "sse": self.sse,
        }


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """A cluster with what storage knows of it: one row of ``pgdeck clusters``."""

    cluster: Cluster
    backups: int
    last_backup: Backup | None
    uids: tuple[str, ...]  # every uid with backups under this cluster's name, newest first
    recent_sizes: tuple[int, ...] = ()  # sizes of the last days' backups, oldest first
    recent_epochs: tuple[int, ...] = ()  # and their times (epoch seconds), in the same order
    health: Health | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row of ``pgdeck clusters --json``: the cluster with its backups' summary."""
        c = self.cluster
        last = self.last_backup
        return {
            "context": c.context or None,
            "namespace": c.namespace or None,
            "name": c.name,
            "uid": c.uid,
            "in_kubernetes": c.in_kubernetes,
            "status": c.status if c.in_kubernetes else "storage-only",
            "team": c.team,
            "version": c.version,
            "instances": c.instances,
            "created": iso(c.created),
            "logical_backup": c.logical_backup,
            "schedule": c.schedule,
            "retention": c.retention,
            "cronjob": c.cronjob.to_dict() if c.cronjob is not None else None,
            "backups": self.backups,
            "uids": list(self.uids),
            "last_backup": iso(last.time) if last else None,
            "last_backup_size": last.size if last else None,
            "last_backup_url": last.url if last else None,
        }


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A source that failed or was limited, said once and kept visible (not fatal)."""

    source: str  # "kubernetes context prod", "s3://bucket/spilo", ...
    message: str
    fatal_for_source: bool = True
