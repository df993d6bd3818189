"""The operator's custom resources (acid.zalan.do/v1): ``postgresql`` and OperatorConfiguration.

Also the labels the operator derives from a cluster (``labelsSet``), which its CronJobs,
Jobs and pods carry.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sandbox.kube.meta import (
    DEFAULT_CREATED,
    DEFAULT_SPILO_IMAGE,
    SERVICE_ACCOUNT,
    object_meta,
    stable_uid,
)
from services.operator import (
    API_GROUP,
    API_VERSION,
    DEFAULT_CLUSTER_NAME_LABEL,
)

PG_API_VERSION = f"{API_GROUP}/{API_VERSION}"
CLUSTER_APPLICATION_LABEL = "spilo"  # the operator's default cluster_labels


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
        "metadata": object_meta(
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


def operator_configuration(
    name: str, namespace: str, logical_backup: dict, *, created: datetime | None = None
) -> dict:
    """An OperatorConfiguration (acid.zalan.do/v1) with ``configuration.logical_backup``
    and a few of the other sections a real one has."""
    return {
        "apiVersion": PG_API_VERSION,
        "kind": "OperatorConfiguration",
        "metadata": object_meta(
            name,
            namespace,
            kind="OperatorConfiguration",
            uid=stable_uid("OperatorConfiguration", namespace, name),
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
