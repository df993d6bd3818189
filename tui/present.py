"""Turning catalog values into JSON-ready dicts and human table cells (the CLI's edge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import humanize

from services.models import Backup, ClusterSummary, CronJobState, JobRun


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cronjob_json(cj: CronJobState | None) -> dict[str, Any] | None:
    if cj is None:
        return None
    return {
        "namespace": cj.namespace,
        "name": cj.name,
        "schedule": cj.schedule,
        "suspended": cj.suspended,
        "last_schedule": iso(cj.last_schedule),
        "last_successful": iso(cj.last_successful),
        "active": cj.active,
    }


def cluster_json(s: ClusterSummary) -> dict[str, Any]:
    c = s.cluster
    last = s.last_backup
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
        "cronjob": cronjob_json(c.cronjob),
        "backups": s.backups,
        "uids": list(s.uids),
        "last_backup": iso(last.time) if last else None,
        "last_backup_size": last.size if last else None,
        "last_backup_url": last.url if last else None,
    }


def backup_json(b: Backup) -> dict[str, Any]:
    return {
        "url": b.url,
        "cluster": b.cluster,
        "uid": b.uid,
        "time": iso(b.time),
        "size": b.size,
        "storage_class": b.storage_class,
        "etag": b.etag,
        "sse": b.sse,
    }


def job_json(j: JobRun) -> dict[str, Any]:
    return {
        "context": j.context,
        "namespace": j.namespace,
        "name": j.name,
        "cluster": j.cluster,
        "status": j.status,
        "started": iso(j.started),
        "finished": iso(j.finished),
        "reason": j.reason,
        "message": j.message,
        "pods": [
            {
                "name": p.name,
                "phase": p.phase,
                "started": iso(p.started),
                "finished": iso(p.finished),
                "exit_code": p.exit_code,
                "reason": p.reason,
            }
            for p in j.pods
        ],
    }


def age(dt: datetime | None, now: datetime) -> str:
    if dt is None:
        return "-"
    return humanize.naturaldelta(now - dt) + " ago" if now >= dt else "in the future"


def size(n: int | None) -> str:
    return "-" if n is None else humanize.naturalsize(n, binary=True)


def duration(seconds: float) -> str:
    """A short duration for tables: 12s, 4m05s, 1h03m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def incomplete_lines(report: Any) -> list[str]:
    """A failed or cancelled restore's databases: created and left incomplete, or dropped."""
    kept = [d for d in report.databases_incomplete if d not in report.databases_dropped]
    lines = []
    if kept:
        lines.append(
            "left incomplete on the target (created by this restore): "
            + ", ".join(kept)
            + "; drop them, or restore again with --drop-existing"
        )
    if report.databases_dropped:
        lines.append("dropped again (--on-failure drop): " + ", ".join(report.databases_dropped))
    return lines
