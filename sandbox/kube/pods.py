"""Pods: a backup Job's pod (running, succeeded or failed) and a Spilo database pod.

Both carry what the kubelet reports (conditions, container statuses, IPs) and the
projected service-account volume every pod gets.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta

from sandbox.kube.custom_resources import cluster_labels
from sandbox.kube.meta import (
    DEFAULT_SPILO_IMAGE,
    SERVICE_ACCOUNT,
    created_at,
    hex_id,
    ip_address,
    object_meta,
    owner_reference,
    rand_suffix,
    rfc3339,
    stable_uid,
)
from services.operator import (
    DEFAULT_CLUSTER_NAME_LABEL,
    credentials_secret_name,
)


def spilo_container_settings() -> dict:
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


def _container_id(seed: str) -> str:
    return "containerd://" + hex_id(seed)


def _image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hex_id(image)}"


def _kube_api_access(seed: str) -> tuple[dict, dict]:
    name = "kube-api-access-" + rand_suffix(seed + "/kube-api-access")
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
    name = name or f"{job_name}-{rand_suffix(job_name)}"
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
    host_ip = ip_address(node, "10.0")
    pod_ip = ip_address(name, "10.244")
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
        "metadata": object_meta(
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
        "metadata": {"name": cluster, "uid": stable_uid(pg_uid, "statefulset")},
    }
    revision = f"{cluster}-{hex_id(pg_uid + '/revision', 10)}"
    labels = {
        **cluster_labels(pg),
        "apps.kubernetes.io/pod-index": str(index),
        "controller-revision-hash": revision,
        "spilo-role": role,
        "statefulset.kubernetes.io/pod-name": name,
    }
    started = created_at(pg) + timedelta(seconds=30 + 60 * index)
    uid = stable_uid(pg_uid, "pod", index)
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
        **spilo_container_settings(),
        "volumeMounts": [
            {"mountPath": "/home/postgres/pgdata", "name": "pgdata"},
            {"mountPath": "/dev/shm", "name": "dshm"},
            mount,
        ],
    }
    host_ip = ip_address(f"node-{index % 3 + 1}", "10.0")
    pod_ip = ip_address(name + pg_uid, "10.244")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": object_meta(
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
