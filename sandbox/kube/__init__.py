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

Callers import the package (``from sandbox import kube as ko``); the modules split it by
kind of object: ``meta`` (metadata, ids, times), ``custom_resources`` (postgresql,
OperatorConfiguration), ``backup_jobs`` (CronJob, Job), ``pods`` (a Job's pod, a Spilo
database pod), ``core`` (ConfigMap, Secret, Namespace, lists, Status).
"""

from sandbox.kube.backup_jobs import (
    DEFAULT_LOGICAL_BACKUP_IMAGE,
    LOGICAL_BACKUP_CONTAINER,
    cronjob,
    job,
)
from sandbox.kube.core import configmap, kubectl_list, namespace, object_list, secret, status
from sandbox.kube.custom_resources import (
    CLUSTER_APPLICATION_LABEL,
    PG_API_VERSION,
    cluster_labels,
    operator_configuration,
    postgresql,
)
from sandbox.kube.meta import (
    DEFAULT_CREATED,
    DEFAULT_SPILO_IMAGE,
    SERVICE_ACCOUNT,
    object_reference,
    owner_reference,
    parse_rfc3339,
    rfc3339,
)
from sandbox.kube.pods import database_pod, pod

__all__ = [
    "CLUSTER_APPLICATION_LABEL",
    "DEFAULT_CREATED",
    "DEFAULT_LOGICAL_BACKUP_IMAGE",
    "DEFAULT_SPILO_IMAGE",
    "LOGICAL_BACKUP_CONTAINER",
    "PG_API_VERSION",
    "SERVICE_ACCOUNT",
    "cluster_labels",
    "configmap",
    "cronjob",
    "database_pod",
    "job",
    "kubectl_list",
    "namespace",
    "object_list",
    "object_reference",
    "operator_configuration",
    "owner_reference",
    "parse_rfc3339",
    "pod",
    "postgresql",
    "rfc3339",
    "secret",
    "status",
]
