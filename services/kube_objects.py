"""Complete, real-shaped Kubernetes objects as plain dicts (what an API server returns).

Used by the tests' fake API server and by the demo sandbox builder, which writes them as
``kubectl get -o yaml`` would. Pure functions, no I/O. Every object carries what a real
server always sends (metadata.uid, resourceVersion, creationTimestamp, ownerReferences with
uid, a Job's full ``spec.template``, containers with name and image, ...), because the
kubernetes 37.x client validates objects with pydantic and rejects less.

Shapes follow the operator's ``pkg/cluster/k8sres.go`` (``generateLogicalBackupJob``,
``generateLogicalBackupPodEnvVars``, ``labelsSet``) and what Kubernetes 1.31 adds when it
defaults and runs the objects. One thing worth knowing when selecting by label: the operator
puts ``application: spilo-logical-backup`` only on the *pod template* (so on the Jobs and
their pods); the CronJob itself carries the cluster's labels, ``application: spilo``.

Outputs are deterministic when uids and names are given; otherwise uids are uuid4. Objects
without a uid parameter (database pods, ConfigMaps, Secrets, namespaces) get uuid5 uids
derived from their identity, so they are always deterministic.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

from services.operator import (
    API_GROUP,
    API_VERSION,
    BACKUP_APPLICATION_LABEL,
    DEFAULT_CLUSTER_NAME_LABEL,
    DEFAULT_JOB_PREFIX,
    DEFAULT_S3_PREFIX,
    DEFAULT_SSE,
    credentials_secret_name,
    logical_backup_job_name,
)

PG_API_VERSION = f"{API_GROUP}/{API_VERSION}"
DEFAULT_LOGICAL_BACKUP_IMAGE = "registry.opensource.zalan.do/acid/logical-backup:v1.10.1"
DEFAULT_SPILO_IMAGE = "ghcr.io/zalando/spilo-15:3.0-p1"
DEFAULT_CREATED = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)  # for objects given no time
SERVICE_ACCOUNT = "postgres-pod"
LOGICAL_BACKUP_CONTAINER = "logical-backup"
CLUSTER_APPLICATION_LABEL = "spilo"  # the operator's default cluster_labels

_UID_NAMESPACE = uuid.UUID("6f1c3d2e-8a57-4c1b-9d0e-5b7f2a4c8e11")
# The alphabet of k8s.io/apimachinery/pkg/util/rand.String: no vowels, no 0/1/3.
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- small helpers ---------------------------------------------------------------------


def rfc3339(dt: datetime) -> str:
    """``2025-01-06T09:00:00Z``: UTC, seconds precision, as the API server writes times."""
    if dt.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()


def _stable_uid(*parts: object) -> str:
    return str(uuid.uuid5(_UID_NAMESPACE, "/".join(str(p) for p in parts)))


def _resource_version(*parts: object) -> str:
    return str(100000 + int.from_bytes(_digest(*parts)[:4], "big") % 9_000_000)


def _rand_suffix(seed: str, n: int = 5) -> str:
    d = _digest(seed)
    return "".join(_RAND_ALPHABET[b % len(_RAND_ALPHABET)] for b in d[:n])


def _hex(seed: str, n: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _ip(seed: str, prefix: str) -> str:
    d = _digest(seed)
    return f"{prefix}.{d[0] % 250 + 2}.{d[1] % 250 + 2}"


def _meta(
    name: str,
    namespace: str | None,
    *,
    kind: str,
    uid: str,
    created: datetime,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[dict] | None = None,
    generation: int | None = None,
    generate_name: str | None = None,
) -> dict:
    meta: dict = {"name": name}
    if generate_name is not None:
        meta["generateName"] = generate_name
    if namespace is not None:
        meta["namespace"] = namespace
    meta["uid"] = uid
    meta["resourceVersion"] = _resource_version(kind, namespace, name, uid)
    if generation is not None:
        meta["generation"] = generation
    meta["creationTimestamp"] = rfc3339(created)
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owners:
        meta["ownerReferences"] = owners
    return meta


def owner_reference(
    obj: dict, *, controller: bool = True, block_owner_deletion: bool | None = True
) -> dict:
    """An ownerReference pointing at ``obj`` (a complete object with apiVersion and kind)."""
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
    }
    if block_owner_deletion is not None:
        ref["blockOwnerDeletion"] = block_owner_deletion
    return ref


def object_reference(obj: dict) -> dict:
    """A core/v1 ObjectReference to ``obj``, as in a CronJob's ``status.active``."""
    m = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", "batch/v1"),
        "kind": obj.get("kind", "Job"),
        "name": m["name"],
        "namespace": m.get("namespace"),
        "resourceVersion": m.get("resourceVersion"),
        "uid": m.get("uid"),
    }


def _created(obj: dict) -> datetime:
    return parse_rfc3339(obj["metadata"]["creationTimestamp"])


def _image_has_bucket_prefix(image: str) -> bool:
    """Operator images before 1.11 know no LOGICAL_BACKUP_S3_BUCKET_PREFIX (always 'spilo')."""
    m = re.search(r":v?(\d+)\.(\d+)", image)
    return m is None or (int(m[1]), int(m[2])) >= (1, 11)


# --- the postgresql resource -----------------------------------------------------------


def postgresql(
    name: str,
    namespace: str,
    *,
    created: datetime,
    uid: str | None = None,
    team: str = "acid",
    version: str = "15",
    instances: int = 2,
    enable_logical_backup: bool = True,
    schedule: str | None = None,
    retention: str | None = None,
    status: str | None = "Running",
    databases: dict[str, str] | None = None,
    users: dict[str, list[str]] | None = None,
    volume_size: str = "10Gi",
    labels: dict[str, str] | None = None,
) -> dict:
    """A ``postgresql`` (acid.zalan.do/v1); ``status`` None omits the status entirely."""
    uid = uid or str(uuid.uuid4())
    if users is None:
        users = {"zalando": ["superuser", "createdb"], f"{name.replace('-', '_')}_user": []}
    if databases is None:
        databases = {"app": f"{name.replace('-', '_')}_user"}
    spec: dict = {
        "teamId": team,
        "numberOfInstances": instances,
        "postgresql": {"version": version},
        "volume": {"size": volume_size},
        "enableLogicalBackup": enable_logical_backup,
    }
    if schedule is not None:
        spec["logicalBackupSchedule"] = schedule
    if retention is not None:
        spec["logicalBackupRetention"] = retention
    spec["databases"] = dict(databases)
    spec["users"] = {k: list(v) for k, v in users.items()}
    obj: dict = {
        "apiVersion": PG_API_VERSION,
        "kind": "postgresql",
        "metadata": _meta(
            name,
            namespace,
            kind="postgresql",
            uid=uid,
            created=created,
            labels=labels,
            generation=1,
        ),
        "spec": spec,
    }
    if status is not None:
        obj["status"] = {"PostgresClusterStatus": status}
    return obj


def cluster_labels(pg: dict, *, cluster_name_label: str = DEFAULT_CLUSTER_NAME_LABEL) -> dict:
    """The operator's ``labelsSet(true)``: the cluster's (inherited) labels, then
    ``application: spilo``, the cluster name label and ``team``."""
    labels = dict(pg["metadata"].get("labels") or {})
    labels["application"] = CLUSTER_APPLICATION_LABEL
    labels[cluster_name_label] = pg["metadata"]["name"]
    labels["team"] = pg["spec"].get("teamId", "")
    return labels


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


def _spilo_container_settings() -> dict:
    """What the operator gives every Spilo-image container: the logical-backup pod reuses
    the database pod's template."""
    return {
        "ports": [
            {"containerPort": 8008, "protocol": "TCP"},
            {"containerPort": 5432, "protocol": "TCP"},
            {"containerPort": 8080, "protocol": "TCP"},
        ],
        "resources": {
            "limits": {"cpu": "1", "memory": "500Mi"},
            "requests": {"cpu": "100m", "memory": "100Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": True,
            "privileged": False,
            "readOnlyRootFilesystem": False,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def _logical_backup_pod_spec(pg: dict, image: str, env: dict[str, str] | None) -> dict:
    """The pod spec the operator generates, with the defaults the API server adds."""
    return {
        "containers": [
            {
                "name": LOGICAL_BACKUP_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "env": _logical_backup_env(pg, image, env),
                **_spilo_container_settings(),
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


# --- CronJob, Job, Pod -----------------------------------------------------------------


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
    created = created or _created(pg) + timedelta(seconds=10)
    labels = cluster_labels(pg)
    template_labels = {**labels, "application": BACKUP_APPLICATION_LABEL}
    obj: dict = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(
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
        "metadata": _meta(
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


def _container_id(seed: str) -> str:
    return "containerd://" + _hex(seed)


def _image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{_hex(image)}"


def _kube_api_access(seed: str) -> tuple[dict, dict]:
    name = "kube-api-access-" + _rand_suffix(seed + "/kube-api-access")
    volume = {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        "name": "kube-root-ca.crt",
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.namespace",
                                },
                                "path": "namespace",
                            }
                        ]
                    }
                },
            ],
        },
    }
    mount = {
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "name": name,
        "readOnly": True,
    }
    return volume, mount


_TOLERATIONS = [
    {
        "effect": "NoExecute",
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "tolerationSeconds": 300,
    },
    {
        "effect": "NoExecute",
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "tolerationSeconds": 300,
    },
]


def _pod_conditions(started: datetime, finished: datetime | None, phase: str) -> list[dict]:
    def cond(t: str, status: bool, at: datetime, reason: str | None = None) -> dict:
        c = {
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(at),
            "status": "True" if status else "False",
            "type": t,
        }
        if reason:
            c["reason"] = reason
        return c

    ready_at = started + timedelta(seconds=2)
    if phase == "Running":
        return [
            cond("PodReadyToStartContainers", True, ready_at),
            cond("Initialized", True, started),
            cond("Ready", True, ready_at),
            cond("ContainersReady", True, ready_at),
            cond("PodScheduled", True, started),
        ]
    assert finished is not None
    why = "PodCompleted" if phase == "Succeeded" else "PodFailed"
    return [
        cond("PodReadyToStartContainers", False, finished),
        cond("Initialized", True, started, "PodCompleted" if phase == "Succeeded" else None),
        cond("Ready", False, finished, why),
        cond("ContainersReady", False, finished, why),
        cond("PodScheduled", True, started),
    ]


def pod(
    jb: dict,
    *,
    started: datetime,
    finished: datetime | None = None,
    exit_code: int | None = 0,
    reason: str | None = None,
    name: str | None = None,
    uid: str | None = None,
    node: str = "node-1",
) -> dict:
    """The pod of Job ``jb``. Running when ``finished`` is None; else Succeeded for exit code 0,
    Failed otherwise (termination reason default Completed / Error)."""
    job_meta = jb["metadata"]
    job_name = job_meta["name"]
    name = name or f"{job_name}-{_rand_suffix(job_name)}"
    uid = uid or str(uuid.uuid4())
    namespace = job_meta["namespace"]
    template = jb["spec"]["template"]
    labels = {
        **(template["metadata"].get("labels") or {}),
        **(job_meta.get("labels") or {}),
        "batch.kubernetes.io/controller-uid": job_meta["uid"],
        "batch.kubernetes.io/job-name": job_name,
        "controller-uid": job_meta["uid"],
        "job-name": job_name,
    }
    spec = copy.deepcopy(template["spec"])
    volume, mount = _kube_api_access(name)
    for c in spec["containers"]:
        c.setdefault("volumeMounts", []).append(mount)
    spec.setdefault("volumes", []).append(volume)
    spec.update(
        enableServiceLinks=True,
        nodeName=node,
        preemptionPolicy="PreemptLowerPriority",
        priority=0,
        tolerations=copy.deepcopy(_TOLERATIONS),
    )
    container = spec["containers"][0]
    if finished is None:
        phase = "Running"
        state: dict = {"running": {"startedAt": rfc3339(started + timedelta(seconds=1))}}
        ready = True
    else:
        code = 0 if exit_code is None else exit_code
        phase = "Succeeded" if code == 0 else "Failed"
        state = {
            "terminated": {
                "containerID": _container_id(name),
                "exitCode": code,
                "finishedAt": rfc3339(finished),
                "reason": reason or ("Completed" if code == 0 else "Error"),
                "startedAt": rfc3339(started + timedelta(seconds=1)),
            }
        }
        ready = False
    host_ip = _ip(node, "10.0")
    pod_ip = _ip(name, "10.244")
    status: dict = {
        "conditions": _pod_conditions(started, finished, phase),
        "containerStatuses": [
            {
                "containerID": _container_id(name),
                "image": container["image"],
                "imageID": _image_id(container["image"]),
                "lastState": {},
                "name": container["name"],
                "ready": ready,
                "restartCount": 0,
                "started": ready,
                "state": state,
                "volumeMounts": [
                    {
                        "mountPath": mount["mountPath"],
                        "name": mount["name"],
                        "readOnly": True,
                        "recursiveReadOnly": "Disabled",
                    }
                ],
            }
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "phase": phase,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "qosClass": "Burstable",
        "startTime": rfc3339(started),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name,
            namespace,
            kind="Pod",
            uid=uid,
            created=started,
            labels=labels,
            owners=[owner_reference(jb)],
            generate_name=f"{job_name}-",
        ),
        "spec": spec,
        "status": status,
    }


def database_pod(pg: dict, index: int, *, role: str) -> dict:
    """A running Spilo pod ``<name>-<index>`` of the cluster's StatefulSet; ``role`` is
    ``master`` or ``replica`` (the ``spilo-role`` label)."""
    pg_meta = pg["metadata"]
    cluster = pg_meta["name"]
    namespace = pg_meta["namespace"]
    name = f"{cluster}-{index}"
    pg_uid = pg_meta["uid"]
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": cluster, "uid": _stable_uid(pg_uid, "statefulset")},
    }
    revision = f"{cluster}-{_hex(pg_uid + '/revision', 10)}"
    labels = {
        **cluster_labels(pg),
        "apps.kubernetes.io/pod-index": str(index),
        "controller-revision-hash": revision,
        "spilo-role": role,
        "statefulset.kubernetes.io/pod-name": name,
    }
    started = _created(pg) + timedelta(seconds=30 + 60 * index)
    uid = _stable_uid(pg_uid, "pod", index)
    volume, mount = _kube_api_access(name)
    version = str(pg["spec"].get("postgresql", {}).get("version", ""))
    container = {
        "env": [
            {"name": "SCOPE", "value": cluster},
            {"name": "PGROOT", "value": "/home/postgres/pgdata/pgroot"},
            {
                "name": "POD_IP",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
            },
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
            {"name": "PGUSER_SUPERUSER", "value": "postgres"},
            {"name": "KUBERNETES_SCOPE_LABEL", "value": DEFAULT_CLUSTER_NAME_LABEL},
            {"name": "KUBERNETES_ROLE_LABEL", "value": "spilo-role"},
            {
                "name": "PGPASSWORD_SUPERUSER",
                "valueFrom": {
                    "secretKeyRef": {"key": "password", "name": credentials_secret_name(cluster)}
                },
            },
            {"name": "PGVERSION", "value": version},
        ],
        "image": DEFAULT_SPILO_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "name": "postgres",
        **_spilo_container_settings(),
        "volumeMounts": [
            {"mountPath": "/home/postgres/pgdata", "name": "pgdata"},
            {"mountPath": "/dev/shm", "name": "dshm"},
            mount,
        ],
    }
    host_ip = _ip(f"node-{index % 3 + 1}", "10.0")
    pod_ip = _ip(name + pg_uid, "10.244")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name,
            namespace,
            kind="Pod",
            uid=uid,
            created=started,
            labels=labels,
            owners=[owner_reference(sts)],
            generate_name=f"{cluster}-",
        ),
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "hostname": name,
            "nodeName": f"node-{index % 3 + 1}",
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 103},
            "serviceAccount": SERVICE_ACCOUNT,
            "serviceAccountName": SERVICE_ACCOUNT,
            "subdomain": f"{cluster}-config",
            "terminationGracePeriodSeconds": 300,
            "tolerations": copy.deepcopy(_TOLERATIONS),
            "volumes": [
                {
                    "name": "pgdata",
                    "persistentVolumeClaim": {"claimName": f"pgdata-{name}"},
                },
                {"emptyDir": {"medium": "Memory"}, "name": "dshm"},
                volume,
            ],
        },
        "status": {
            "conditions": _pod_conditions(started, None, "Running"),
            "containerStatuses": [
                {
                    "containerID": _container_id(name + pg_uid),
                    "image": DEFAULT_SPILO_IMAGE,
                    "imageID": _image_id(DEFAULT_SPILO_IMAGE),
                    "lastState": {},
                    "name": "postgres",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": rfc3339(started + timedelta(seconds=5))}},
                }
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "phase": "Running",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "qosClass": "Burstable",
            "startTime": rfc3339(started),
        },
    }


# --- configuration objects -------------------------------------------------------------


def configmap(
    name: str, namespace: str, data: dict[str, str], *, created: datetime | None = None
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(
            name,
            namespace,
            kind="ConfigMap",
            uid=_stable_uid("ConfigMap", namespace, name),
            created=created or DEFAULT_CREATED,
        ),
        "data": {k: str(v) for k, v in data.items()},
    }


def operator_configuration(
    name: str, namespace: str, logical_backup: dict, *, created: datetime | None = None
) -> dict:
    """An OperatorConfiguration (acid.zalan.do/v1) with ``configuration.logical_backup``
    and a few of the other sections a real one has."""
    return {
        "apiVersion": PG_API_VERSION,
        "kind": "OperatorConfiguration",
        "metadata": _meta(
            name,
            namespace,
            kind="OperatorConfiguration",
            uid=_stable_uid("OperatorConfiguration", namespace, name),
            created=created or DEFAULT_CREATED,
            labels={"app.kubernetes.io/name": "postgres-operator"},
            generation=1,
        ),
        "configuration": {
            "docker_image": DEFAULT_SPILO_IMAGE,
            "enable_crd_registration": True,
            "enable_spilo_wal_path_compat": False,
            "etcd_host": "",
            "max_instances": -1,
            "min_instances": -1,
            "repair_period": "5m",
            "resync_period": "30m",
            "workers": 8,
            "users": {"replication_username": "standby", "super_username": "postgres"},
            "kubernetes": {
                "cluster_domain": "cluster.local",
                "cluster_labels": {"application": CLUSTER_APPLICATION_LABEL},
                "cluster_name_label": DEFAULT_CLUSTER_NAME_LABEL,
                "enable_pod_antiaffinity": False,
                "oauth_token_secret_name": "postgresql-operator",
                "pod_role_label": "spilo-role",
                "pod_service_account_name": SERVICE_ACCOUNT,
                "pod_terminate_grace_period": "5m",
                "secret_name_template": "{username}.{cluster}.credentials.{tprkind}.{tprgroup}",
                "spilo_privileged": False,
                "watched_namespace": "*",
            },
            "postgres_pod_resources": {
                "default_cpu_limit": "1",
                "default_cpu_request": "100m",
                "default_memory_limit": "500Mi",
                "default_memory_request": "100Mi",
            },
            "load_balancer": {"enable_master_load_balancer": False},
            "aws_or_gcp": {"aws_region": "eu-central-1", "enable_ebs_gp3_migration": False},
            "logical_backup": dict(logical_backup),
            "debug": {"debug_logging": True, "enable_database_access": True},
            "teams_api": {"enable_teams_api": False},
        },
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> dict:
    """An Opaque Secret; values are base64-encoded as the API serves them."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(
            name,
            namespace,
            kind="Secret",
            uid=_stable_uid("Secret", namespace, name),
            created=DEFAULT_CREATED,
        ),
        "data": {k: base64.b64encode(v.encode()).decode("ascii") for k, v in data.items()},
        "type": "Opaque",
    }


def namespace(name: str, *, created: datetime | None = None) -> dict:
    """A Namespace as the API server returns it (phase Active)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(
            name,
            None,
            kind="Namespace",
            uid=_stable_uid("Namespace", name),
            created=created or DEFAULT_CREATED,
            labels={"kubernetes.io/metadata.name": name},
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


# --- lists and Status ------------------------------------------------------------------


def object_list(
    items: list[dict],
    *,
    api_version: str,
    kind: str,
    resource_version: str = "1000",
    continue_token: str | None = None,
    remaining: int | None = None,
) -> dict:
    """A list answer such as ``PodList``; ``metadata.continue`` / ``remainingItemCount``
    only when given."""
    meta: dict = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"apiVersion": api_version, "items": items, "kind": kind, "metadata": meta}


def kubectl_list(items: list[dict]) -> dict:
    """What ``kubectl get -o yaml`` writes for several objects."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def status(code: int, reason: str, message: str, *, details: dict | None = None) -> dict:
    """A metav1 Status body, as the API server sends with an error."""
    body: dict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if 200 <= code < 300 else "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body
