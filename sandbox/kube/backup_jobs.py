"""The operator's logical-backup CronJob of a cluster and the Jobs it creates.

Shapes follow ``generateLogicalBackupJob`` and ``generateLogicalBackupPodEnvVars``, with
what Kubernetes 1.31 adds when it defaults and runs them.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timedelta

from sandbox.kube.custom_resources import cluster_labels
from sandbox.kube.meta import (
    SERVICE_ACCOUNT,
    created_at,
    object_meta,
    object_reference,
    owner_reference,
    rfc3339,
)
from sandbox.kube.pods import spilo_container_settings
from services.operator import (
    BACKUP_APPLICATION_LABEL,
    DEFAULT_CLUSTER_NAME_LABEL,
    DEFAULT_JOB_PREFIX,
    DEFAULT_S3_PREFIX,
    DEFAULT_SSE,
    credentials_secret_name,
    logical_backup_job_name,
)

DEFAULT_LOGICAL_BACKUP_IMAGE = "registry.opensource.zalan.do/acid/logical-backup:v1.10.1"
LOGICAL_BACKUP_CONTAINER = "logical-backup"


def _image_has_bucket_prefix(image: str) -> bool:
    """Operator images before 1.11 know no LOGICAL_BACKUP_S3_BUCKET_PREFIX (always 'spilo')."""
    m = re.search(r":v?(\d+)\.(\d+)", image)
    return m is None or (int(m[1]), int(m[2])) >= (1, 11)


def _logical_backup_env(pg: dict, image: str, env: dict[str, str] | None) -> list[dict]:
    name = pg["metadata"]["name"]
    spec = pg["spec"]
    items: list[dict] = [
        {"name": "SCOPE", "value": name},
        {"name": "CLUSTER_NAME_LABEL", "value": DEFAULT_CLUSTER_NAME_LABEL},
        {
            "name": "POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
        },
        {"name": "PG_VERSION", "value": str(spec.get("postgresql", {}).get("version", ""))},
        {"name": "PGPORT", "value": "5432"},
        {"name": "PGUSER", "value": "postgres"},
        {"name": "PGDATABASE", "value": "postgres"},
        {"name": "PGSSLMODE", "value": "require"},
        {
            "name": "PGPASSWORD",
            "valueFrom": {
                "secretKeyRef": {"name": credentials_secret_name(name), "key": "password"}
            },
        },
        {"name": "LOGICAL_BACKUP_PROVIDER", "value": "s3"},
        {"name": "LOGICAL_BACKUP_S3_BUCKET", "value": "my-bucket-url"},
    ]
    if _image_has_bucket_prefix(image):
        items.append({"name": "LOGICAL_BACKUP_S3_BUCKET_PREFIX", "value": DEFAULT_S3_PREFIX})
    items += [
        {"name": "LOGICAL_BACKUP_S3_BUCKET_SCOPE_SUFFIX", "value": "/" + pg["metadata"]["uid"]},
        {"name": "LOGICAL_BACKUP_S3_REGION", "value": ""},
        {"name": "LOGICAL_BACKUP_S3_ENDPOINT", "value": ""},
        {"name": "LOGICAL_BACKUP_S3_SSE", "value": DEFAULT_SSE},
        {
            "name": "LOGICAL_BACKUP_S3_RETENTION_TIME",
            "value": spec.get("logicalBackupRetention", ""),
        },
    ]
    for key, value in (env or {}).items():
        for item in items:
            if item["name"] == key:
                item.pop("valueFrom", None)
                item["value"] = value
                break
        else:
            items.append({"name": key, "value": value})
    return items


def _logical_backup_pod_spec(pg: dict, image: str, env: dict[str, str] | None) -> dict:
    """The pod spec the operator generates, with the defaults the API server adds."""
    return {
        "containers": [
            {
                "name": LOGICAL_BACKUP_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "env": _logical_backup_env(pg, image, env),
                **spilo_container_settings(),
            }
        ],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Never",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": SERVICE_ACCOUNT,
        "serviceAccountName": SERVICE_ACCOUNT,
        "terminationGracePeriodSeconds": 300,
    }


def cronjob(
    pg: dict,
    *,
    schedule: str = "0 * * * *",
    created: datetime | None = None,
    suspend: bool = False,
    last_schedule: datetime | None = None,
    last_successful: datetime | None = None,
    active: list[dict] | None = None,
    job_prefix: str = DEFAULT_JOB_PREFIX,
    image: str = DEFAULT_LOGICAL_BACKUP_IMAGE,
    env: dict[str, str] | None = None,
    uid: str | None = None,
) -> dict:
    """The logical-backup CronJob the operator creates for ``pg``.

    Labels: the CronJob carries the cluster's labels (``application: spilo``); its pod
    template adds ``application: spilo-logical-backup`` (that is what Jobs and pods carry).
    ``env`` replaces values of the operator's env vars by name, or appends new ones.
    ``active`` takes Job objects or ready ObjectReferences. ``created`` defaults to the
    cluster's creation plus 10 seconds.
    """
    pg_meta = pg["metadata"]
    name = logical_backup_job_name(pg_meta["name"], job_prefix)
    namespace = pg_meta["namespace"]
    created = created or created_at(pg) + timedelta(seconds=10)
    labels = cluster_labels(pg)
    template_labels = {**labels, "application": BACKUP_APPLICATION_LABEL}
    obj: dict = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": object_meta(
            name,
            namespace,
            kind="CronJob",
            uid=uid or str(uuid.uuid4()),
            created=created,
            labels=labels,
            owners=[owner_reference(pg, controller=True, block_owner_deletion=None)],
            generation=1,
        ),
        "spec": {
            "concurrencyPolicy": "Forbid",
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {},
                "spec": {
                    "template": {
                        "metadata": {"labels": template_labels, "namespace": namespace},
                        "spec": _logical_backup_pod_spec(pg, image, env),
                    }
                },
            },
            "schedule": schedule,
            "successfulJobsHistoryLimit": 3,
            "suspend": suspend,
        },
        "status": {},
    }
    st = obj["status"]
    if active:
        st["active"] = [a if "metadata" not in a else object_reference(a) for a in active]
    if last_schedule is not None:
        st["lastScheduleTime"] = rfc3339(last_schedule)
    if last_successful is not None:
        st["lastSuccessfulTime"] = rfc3339(last_successful)
    return obj


def job(
    cj: dict,
    *,
    started: datetime,
    finished: datetime | None = None,
    succeeded: bool | None = True,
    reason: str | None = None,
    message: str | None = None,
    name: str | None = None,
    uid: str | None = None,
) -> dict:
    """A Job the CronJob controller created at ``started``.

    ``succeeded`` None: running (``status.active`` 1, no completionTime). True: the
    ``SuccessCriteriaMet`` and ``Complete`` conditions (Kubernetes 1.31+), ``succeeded`` 1,
    completionTime. False: ``FailureTarget`` and ``Failed`` conditions with ``reason``
    (default BackoffLimitExceeded) and ``message``, ``failed`` 1. A finished Job without
    ``finished`` is taken to have run 2 minutes.
    """
    cj_meta = cj["metadata"]
    name = name or f"{cj_meta['name']}-{int(started.timestamp()) // 60}"
    uid = uid or str(uuid.uuid4())
    namespace = cj_meta["namespace"]
    template = copy.deepcopy(cj["spec"]["jobTemplate"]["spec"]["template"])
    job_labels = {
        **(template["metadata"].get("labels") or {}),
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    template["metadata"]["labels"] = dict(job_labels)
    template["metadata"].pop("namespace", None)
    obj: dict = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(
            name,
            namespace,
            kind="Job",
            uid=uid,
            created=started,
            labels=job_labels,
            annotations={"batch.kubernetes.io/cronjob-scheduled-timestamp": rfc3339(started)},
            owners=[owner_reference(cj)],
            generation=1,
        ),
        "spec": {
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "completions": 1,
            "manualSelector": False,
            "parallelism": 1,
            "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "suspend": False,
            "template": template,
        },
    }
    st: dict = {"startTime": rfc3339(started)}
    if succeeded is None:
        st.update(active=1, ready=1, terminating=0, uncountedTerminatedPods={})
    else:
        finished = finished or started + timedelta(minutes=2)
        at = rfc3339(finished)
        if succeeded:
            reason = reason or "CompletionsReached"
            message = message or "Reached expected number of succeeded pods"
            types = ("SuccessCriteriaMet", "Complete")
        else:
            reason = reason or "BackoffLimitExceeded"
            message = message or "Job has reached the specified backoff limit"
            types = ("FailureTarget", "Failed")
        st["conditions"] = [
            {
                "lastProbeTime": at,
                "lastTransitionTime": at,
                "message": message,
                "reason": reason,
                "status": "True",
                "type": t,
            }
            for t in types
        ]
        if succeeded:
            st.update(completionTime=at, ready=0, succeeded=1, terminating=0)
        else:
            st.update(failed=1, ready=0, terminating=0)
        st["uncountedTerminatedPods"] = {}
    obj["status"] = st
    return obj
