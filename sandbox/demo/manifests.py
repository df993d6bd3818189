"""The demo's Kubernetes: ``kubectl get -o yaml`` Lists of what the story's clusters run.

postgresqls, CronJobs, the Jobs and pods Kubernetes keeps (three successful runs and the
planted failed one), the operator's configuration, and each pod's log under
``manifests/logs``. Built from sandbox.kube's objects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from sandbox import kube as ko
from sandbox.demo.pod_logs import backup_log, failed_log, patroni_log
from sandbox.demo.story import (
    BUCKET,
    FAILED_ATTEMPTS,
    OPERATOR_NAME,
    OPERATOR_NAMESPACE,
    SCHEDULE,
    Slot,
    Spec,
    random_uid,
    slot_at,
)
from services.operator import DEFAULT_S3_PREFIX


@dataclass(frozen=True)
class KubeRuns:
    """The Jobs Kubernetes keeps for one live cluster's CronJob (3 successful, 3 failed)."""

    succeeded: list[Slot]  # the newest three with an object, oldest first
    failed: Slot | None  # the planted failed run, kept within failedJobsHistoryLimit
    newest_size: int  # gzip bytes of the newest object: dump.sh's size estimate in the logs


def kube_runs(
    spec: Spec, stored: list[Slot], failed: datetime | None, newest_size: int
) -> KubeRuns:
    live = spec.live
    assert live is not None
    failed_slot = None
    if failed is not None:
        failed_slot = slot_at(spec, failed)
        failed_slot.uid = live.uid
    return KubeRuns([s for s in stored if s.uid == live.uid][-3:], failed_slot, newest_size)


def write_manifests(
    out: Path,
    specs: tuple[Spec, ...],
    runs: dict[str, KubeRuns],
    now: datetime,
) -> None:
    postgresqls: list[dict] = []
    cronjobs: list[dict] = []
    jobs: list[dict] = []
    pods: list[dict] = []
    logs: dict[tuple[str, str], str] = {}
    for spec in specs:
        live = spec.live
        if live is None:
            continue  # deleted: only its backups remain
        rng = random.Random(f"{spec.name}/kubernetes")
        kept = runs[spec.name]
        pg = ko.postgresql(
            spec.name,
            spec.namespace,
            created=live.created,
            uid=live.uid,
            instances=spec.instances,
            schedule=spec.schedule,
            retention=spec.retention,
            databases=spec.databases,
            users=spec.users,
            volume_size=spec.volume,
            labels={"environment": "demo"},
        )
        postgresqls.append(pg)
        newest = kept.succeeded[-1]
        env = {
            "LOGICAL_BACKUP_S3_BUCKET": BUCKET,
            "LOGICAL_BACKUP_S3_RETENTION_TIME": spec.retention or "",
        }
        cj = ko.cronjob(
            pg,
            schedule=spec.schedule or SCHEDULE,
            last_schedule=max(newest.hour, kept.failed.hour if kept.failed else newest.hour),
            last_successful=newest.finished,
            env=env,
            uid=random_uid(rng),
        )
        cronjobs.append(cj)
        db_size = _estimate_db_size(spec, kept.newest_size)
        db_pod = ko.database_pod(pg, 0, role="master")
        for slot in kept.succeeded:
            jb = ko.job(
                cj,
                started=slot.hour,
                finished=slot.finished + timedelta(seconds=1),
                uid=random_uid(rng),
            )
            node = f"node-{1 + rng.randrange(3)}"
            pd = ko.pod(
                jb, started=slot.pod_start, finished=slot.finished, uid=random_uid(rng), node=node
            )
            jobs.append(jb)
            pods.append(pd)
            logs[(spec.namespace, pd["metadata"]["name"])] = backup_log(spec, slot, db_size)
        if kept.failed is not None:
            failed_job, failed_pods = _failed_job(cj, kept.failed, rng)
            jobs.append(failed_job)
            text = failed_log(db_pod["status"]["podIP"])
            for pd in failed_pods:
                pods.append(pd)
                logs[(spec.namespace, pd["metadata"]["name"])] = text
        pods.append(db_pod)
        logs[(spec.namespace, db_pod["metadata"]["name"])] = patroni_log(
            db_pod["metadata"]["name"], now
        )
    operator = ko.operator_configuration(
        OPERATOR_NAME,
        OPERATOR_NAMESPACE,
        {
            "logical_backup_docker_image": ko.DEFAULT_LOGICAL_BACKUP_IMAGE,
            "logical_backup_job_prefix": "logical-backup-",
            "logical_backup_provider": "s3",
            "logical_backup_s3_bucket": BUCKET,
            "logical_backup_s3_bucket_prefix": DEFAULT_S3_PREFIX,
            "logical_backup_s3_endpoint": "",
            "logical_backup_s3_region": "eu-central-1",
            "logical_backup_s3_retention_time": "",
            "logical_backup_s3_sse": "AES256",
            "logical_backup_schedule": SCHEDULE,
        },
        created=now - timedelta(days=731),
    )

    def key(obj: dict) -> tuple[str, str]:
        return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    out.mkdir(parents=True)
    for name, items in (
        ("postgresqls.yaml", postgresqls),
        ("cronjobs.yaml", cronjobs),
        ("jobs.yaml", jobs),
        ("pods.yaml", pods),
        ("operator.yaml", [operator]),
    ):
        text = yaml.safe_dump(
            ko.kubectl_list(sorted(items, key=key)),
            sort_keys=True,
            default_flow_style=False,
            allow_unicode=True,
            width=1000,
        )
        (out / name).write_text(text, encoding="utf-8")
    for (namespace, pod_name), text in logs.items():
        path = out / "logs" / namespace / f"{pod_name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _estimate_db_size(spec: Spec, gz_size: int) -> int:
    """What dump.sh's ``sum(pg_database_size(...))`` would say: template dbs plus data."""
    return 7_700_000 * (3 + len(spec.databases)) + gz_size * 9


def _failed_job(cj: dict, slot: Slot, rng: random.Random) -> tuple[dict, list[dict]]:
    """A Job whose every pod failed (exit code 1) until its backoffLimit was exceeded.

    The Job controller waits 10 s, 20 s, 40 s ... (at most 6 min) before each new pod.
    """
    attempts: list[tuple[datetime, datetime]] = []
    t = slot.pod_start
    for k in range(FAILED_ATTEMPTS):
        end = t + timedelta(seconds=3 + rng.randint(0, 2))
        attempts.append((t, end))
        t = end + timedelta(seconds=min(360, 10 * 2**k) + rng.randint(0, 1))
    jb = ko.job(
        cj,
        started=slot.hour,
        finished=attempts[-1][1] + timedelta(seconds=1),
        succeeded=False,
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
        uid=random_uid(rng),
    )
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes draws generated names from
    pods = []
    for start, end in attempts:
        suffix = "".join(rng.choice(alphabet) for _ in range(5))
        pods.append(
            ko.pod(
                jb,
                started=start,
                finished=end,
                exit_code=1,
                name=f"{jb['metadata']['name']}-{suffix}",
                uid=random_uid(rng),
                node=f"node-{1 + rng.randrange(3)}",
            )
        )
    return jb, pods
