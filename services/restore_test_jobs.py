"""What a restore test run in the cluster is: one Kubernetes Job per source cluster.

Plain functions, no I/O: ``services.restore_test_launcher`` creates what these describe, and
``restore-test --in-cluster --dry-run`` prints it. A Job is shaped like the jobTemplate of
``deploy/cronjob-restore-test.yaml`` (non-root, read-only root filesystem, no privileges,
``backoffLimit`` 0 because pgdeck cleans up after itself and a retry would test again, an
active deadline) and runs in the staging namespace beside pgdeck's service account. Its
container runs ``pgdeck restore-test CLUSTER --run-id RUN --backup CHOICE [--namespace NS]
[--seed N] [--keep] [--jobs N]``, so the report it archives carries the run id the launcher looks for. Credentials
come from the pod's identity or a Secret named in the config (``envFrom``): only names ever
appear in a Job, never a value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import yaml

from services.config import RestoreTestsConfig
from services.errors import ConfigError
from services.staging_spec import labels

GRACE_SECONDS = 120

CONTAINER = "pgdeck"
CONFIG_DIR = "/etc/pgdeck"
RUN_AS = 10001  # the Dockerfile's user
NAME_MAX = 63  # the Job's name is also the value of its pods' job-name label
JOB_ENV = "PGDECK_JOB"  # tells the pgdeck inside which Job it runs as (the report's started_by)


def require_image(cfg: RestoreTestsConfig) -> str:
    """The image the Jobs run; a ``ConfigError`` (exit 2) when the config names none."""
    if not cfg.image:
        raise ConfigError(
            "restore_tests.image is not set: --in-cluster runs each test in pgdeck's image",
            "build it from the Dockerfile (deploy/README.md) and set restore_tests.image",
        )
    return cfg.image


def job_name(source: str, run_id: str, source_namespace: str = "") -> str:
    """``pgdeck-restore-test-{source}-{run}-{hash}``: a DNS-1123 label of at most 63
    characters. The source's name is reduced and cut; the hash of namespace and name keeps
    two sources apart whose cut names are the same."""
    run = re.sub(r"[^a-z0-9]", "", run_id.lower())[-6:] or "0"
    tag = hashlib.sha256(f"{source_namespace}/{source}".encode()).hexdigest()[:4]
    head, tail = "pgdeck-restore-test-", f"-{run}-{tag}"
    middle = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", source.lower())).strip("-")
    middle = middle[: NAME_MAX - len(head) - len(tail)].rstrip("-") or "db"
    return head + middle + tail


def job_args(
    source: str,
    run_id: str,
    backup: str,
    seed: int | None = None,
    keep: bool = False,
    source_namespace: str = "",
    jobs: int | None = None,
) -> list[str]:
    """The container's arguments: the image's entry point is ``pgdeck``. ``jobs``: the
    data sessions of its restore, carried so that the pod restores as the launcher was told
    whatever ``restore.jobs`` the pod's own config says."""
    args = ["restore-test", source, "--run-id", run_id, "--backup", backup]
    if source_namespace:
        args += ["--namespace", source_namespace]
    if seed is not None:
        args += ["--seed", str(seed)]
    if keep:
        args.append("--keep")
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    return args


def job_manifest(
    cfg: RestoreTestsConfig,
    namespace: str,
    *,
    source: str,
    run_id: str,
    backup: str,
    seed: int | None = None,
    keep: bool = False,
    source_namespace: str = "",
    jobs: int | None = None,
) -> dict[str, Any]:
    """The ``batch/v1`` Job that tests ``source`` for run ``run_id`` in ``namespace``."""
    image = require_image(cfg)
    name = job_name(source, run_id, source_namespace)
    meta_labels = {
        "app.kubernetes.io/name": "pgdeck",
        **labels(run_id, source, source_namespace),
    }
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "args": job_args(source, run_id, backup, seed, keep, source_namespace, jobs),
        "env": [
            {"name": "PGDECK_CONFIG", "value": f"{CONFIG_DIR}/{cfg.config_file}"},
            {"name": "HOME", "value": "/tmp"},
            {"name": JOB_ENV, "value": name},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if cfg.secret:
        # As the CronJob: present or not, the pod starts (a missing Secret would leave it
        # waiting in CreateContainerConfigError until the deadline).
        container["envFrom"] = [{"secretRef": {"name": cfg.secret, "optional": True}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(meta_labels)},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": cfg.job_deadline_seconds,
            "template": {
                "metadata": {"labels": dict(meta_labels)},
                "spec": {
                    "serviceAccountName": cfg.service_account,
                    "restartPolicy": "Never",
                    # On SIGTERM (a cancel, the deadline) pgdeck archives its reports and
                    # deletes its staging cluster: room for that before SIGKILL.
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": cfg.config_map}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
                    ],
                },
            },
        },
    }


def yaml_stream(objects: Iterable[dict[str, Any]]) -> str:
    """The objects as one YAML stream, ``---`` between them: what ``kubectl apply -f -``
    takes."""
    return yaml.safe_dump_all(list(objects), sort_keys=False, explicit_start=True)
