"""Kubernetes objects (plain dicts, as the API or ``kubectl -o yaml`` gives them) into
the catalog's values: ``Cluster``, ``CronJobState``, ``JobRun``.

Tolerant by design: real objects miss fields (an empty status, a Job that never
started), and a console that crashes on one odd object helps nobody at 3 a.m.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.models import Cluster, CronJobState, JobRun, OperatorSettings, PodRun
from services.operator import (
    DEFAULT_CLUSTER_NAME_LABEL,
    DEFAULT_JOB_PREFIX,
    DEFAULT_SCHEDULE,
    logical_backup_job_name,
)

Obj = dict[str, Any]


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _md(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def cronjob_state(obj: Obj) -> CronJobState:
    md, spec, status = _md(obj), obj.get("spec") or {}, obj.get("status") or {}
    return CronJobState(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        schedule=str(spec.get("schedule", "")),
        suspended=bool(spec.get("suspend", False)),
        last_schedule=parse_time(status.get("lastScheduleTime")),
        last_successful=parse_time(status.get("lastSuccessfulTime")),
        active=len(status.get("active") or []),
        time_zone=str(spec["timeZone"]) if spec.get("timeZone") else None,
    )


def cluster_from_resource(
    obj: Obj,
    context: str,
    operator: OperatorSettings | None,
    cronjobs: dict[tuple[str, str], Obj],
) -> Cluster:
    md, spec = _md(obj), obj.get("spec") or {}
    status = obj.get("status") or {}
    name = md.get("name", "")
    namespace = md.get("namespace", "")
    job_prefix = (operator.job_prefix if operator else None) or DEFAULT_JOB_PREFIX
    cj = cronjobs.get((namespace, logical_backup_job_name(name, job_prefix)))
    if cj is None:  # a renamed prefix we could not read: fall back to the cluster label
        label = (operator.cluster_name_label if operator else None) or DEFAULT_CLUSTER_NAME_LABEL
        for (ns, _), candidate in cronjobs.items():
            if ns == namespace and (_md(candidate).get("labels") or {}).get(label) == name:
                cj = candidate
                break
    # What runs is the CronJob's schedule; the manifest and the operator say what it will be.
    schedule = (
        ((cj.get("spec") or {}).get("schedule") if cj else None)
        or spec.get("logicalBackupSchedule")
        or (operator.schedule if operator else None)
    )
    if not schedule and spec.get("enableLogicalBackup"):
        schedule = DEFAULT_SCHEDULE
    retention = spec.get("logicalBackupRetention") or (operator.retention if operator else None)
    pg_status = status.get("PostgresClusterStatus") if isinstance(status, dict) else None
    databases = spec.get("databases") or {}
    return Cluster(
        name=name,
        namespace=namespace,
        uid=md.get("uid", ""),
        context=context,
        in_kubernetes=True,
        team=spec.get("teamId"),
        version=str((spec.get("postgresql") or {}).get("version") or "") or None,
        instances=_int(spec.get("numberOfInstances")),
        status=pg_status or None,
        created=parse_time(md.get("creationTimestamp")),
        logical_backup=bool(spec.get("enableLogicalBackup", False)),
        schedule=str(schedule) if schedule else None,
        retention=str(retention) if retention else None,
        labels=dict(md.get("labels") or {}),
        databases={str(k): str(v) for k, v in databases.items()}
        if isinstance(databases, dict)
        else {},
        cronjob=cronjob_state(cj) if cj else None,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def pod_run(obj: Obj) -> PodRun:
    md, status = _md(obj), obj.get("status") or {}
    exit_code: int | None = None
    reason: str | None = None
    finished: datetime | None = None
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        if term:
            exit_code = _int(term.get("exitCode"))
            reason = term.get("reason")
            finished = parse_time(term.get("finishedAt"))
    return PodRun(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        phase=status.get("phase", "Unknown"),
        started=parse_time(status.get("startTime")),
        finished=finished,
        exit_code=exit_code,
        reason=reason,
    )


def job_run(obj: Obj, context: str, pods: list[Obj], cluster_label: str | None = None) -> JobRun:
    md, status = _md(obj), obj.get("status") or {}
    labels = md.get("labels") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    if "Failed" in conditions:
        state, cond = "failed", conditions["Failed"]
    elif "Complete" in conditions:
        state, cond = "succeeded", conditions["Complete"]
    else:
        state, cond = "running", {}
    uid = md.get("uid")
    mine = [
        p
        for p in pods
        if any(ref.get("uid") == uid for ref in (_md(p).get("ownerReferences") or []))
        or (_md(p).get("labels") or {}).get("job-name") == md.get("name")
    ]
    runs = sorted(
        (pod_run(p) for p in mine), key=lambda r: r.started or datetime.min.replace(tzinfo=UTC)
    )
    return JobRun(
        context=context,
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        cluster=labels.get(cluster_label or DEFAULT_CLUSTER_NAME_LABEL, ""),
        started=parse_time(status.get("startTime")),
        finished=parse_time(status.get("completionTime"))
        or parse_time(cond.get("lastTransitionTime")),
        status=state,
        reason=cond.get("reason") if state == "failed" else None,
        message=cond.get("message") if state == "failed" else None,
        pods=tuple(runs),
    )
