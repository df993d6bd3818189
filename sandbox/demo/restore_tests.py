"""The demo's restore-test history: a year of quarterly tests, archived as real reports.

The sandbox has no Kubernetes API to make staging clusters in, so its history is written
the way a run writes it (``services.restore_test_report`` documents, completed and audited
through ``Archive``), one report per cluster and quarter: ``acid-orders`` passes every
quarter with a time-to-restore that grows with its data, ``acid-inventory``'s last test
failed its validation, ``acid-billing`` was last tested more than a quarter ago, and
``acid-legacy`` (deleted) never was. The restore-tests screen (``t``) and the clusters
screen's marks then have something to show.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sandbox.demo.story import BUCKET, Spec
from services.archive import Archive
from services.archive_store import open_store
from services.backup_choice import LATEST, BackupChoice, Chosen
from services.clock import starting_at
from services.models import Backup, Cluster
from services.operator import backup_key
from services.report import PhaseTime, RestoreReport
from services.restore_test_report import (
    KIND,
    Teardown,
    TestFacts,
    audit_fields,
    document,
    markdown,
)
from services.staging import StagingCluster

STAGING_NS = "pgdeck-staging"
# Per cluster: (days before now of each test, oldest first; restore minutes of each; the
# last one's failure, if any).
HISTORY: dict[str, tuple[tuple[int, ...], tuple[float, ...], str | None]] = {
    "acid-orders": ((350, 259, 168, 77, 18), (9.5, 11.0, 13.5, 17.0, 22.5), None),
    "acid-inventory": (
        (80, 12),
        (4.0, 4.5),
        "validation failed: integrity (check stock_not_negative)",
    ),
    "acid-billing": ((300, 210, 118), (6.0, 7.5, 8.0), None),
}
RTO_MINUTES = {"acid-orders": 30.0}  # the rest: the default 60


def write_restore_tests(archive_dir: Path, specs: tuple[Spec, ...], now: datetime) -> int:
    """Write the history into the archive at ``archive_dir``; how many reports."""
    every = []
    for spec in specs:
        plan = HISTORY.get(spec.name)
        life = spec.live
        if plan is None or life is None:
            continue
        days, minutes, failure = plan
        for i, (ago, restore_min) in enumerate(zip(days, minutes, strict=True)):
            last = i == len(days) - 1
            started = (now - timedelta(days=ago)).replace(microsecond=0)
            every.append(_facts(spec, life.uid, started, restore_min, failure if last else None, i))
    every.sort(key=lambda f: f.test_finished_at)  # the audit log in the order it happened
    for facts in every:
        doc = document(facts)
        archive = Archive(open_store(archive_dir), clock=starting_at(facts.test_finished_at))
        archive.complete(None, KIND, facts.cluster, doc, markdown(doc), audit_fields(doc))
    return len(every)


def _facts(
    spec: Spec, uid: str, started: datetime, restore_min: float, failure: str | None, n: int
) -> TestFacts:
    run_id = f"{started:%Y%m%dt%H%M%S}-{n:02d}d3m0"
    staging_s = 95.0 + 7 * n
    restore_start = started + timedelta(seconds=staging_s)
    finished = restore_start + timedelta(minutes=restore_min)
    taken = started - timedelta(hours=2)
    key = backup_key(spec.name, uid, int(taken.timestamp()))
    backup = Backup(
        url=f"s3://{BUCKET}/spilo/{key}",
        location=f"s3://{BUCKET}/spilo",
        key=f"spilo/{key}",
        cluster=spec.name,
        uid=uid,
        time=taken,
        size=int(40_000_000 * spec.scale * (1 + n / 3)),
        sse="AES256",
    )
    staging = StagingCluster(
        context="demo",
        namespace=STAGING_NS,
        name=f"pgdeck-restore-test-{spec.name}-{n:02d}d3m0",
        uid=f"00000000-0000-4000-8000-{n:012d}",
        created=started,
        run_id=run_id,
        source=spec.name,
        version="16",
        volume="2Gi",
        status="Running",
    )
    restore_s = restore_min * 60
    report = RestoreReport(
        status="failed" if failure else "succeeded",
        backup=backup.url,
        target=f"postgres@{staging.name}.{STAGING_NS}.svc.cluster.local:5432/postgres",
        target_name=f"staging {staging.name}",
        started_at=restore_start,
        finished_at=finished,
        phases=(
            PhaseTime("preflight", 0.4),
            PhaseTime("restore", restore_s * 0.93),
            PhaseTime("validate", restore_s * 0.07 - 0.4),
        ),
        error=failure,
        compressed_bytes=backup.size,
        uncompressed_bytes=backup.size * 5,
        user="platform-oncall",
        os_user="pgdeck",
        host="pgdeck-restore-test-job",
    )
    return TestFacts(
        run_id=run_id,
        cluster=spec.name,
        rto_seconds=RTO_MINUTES.get(spec.name, 60.0) * 60,
        started_by={
            "user": "platform-oncall",
            "os_user": "pgdeck",
            "host": "pgdeck-restore-test-job",
            "command": "pgdeck restore-test --all",
            "in_cluster": True,
            "job": f"pgdeck-restore-test-{started:%Y%m%d}",
        },
        test_started_at=started,
        test_finished_at=finished + timedelta(seconds=4),
        source=Cluster(
            name=spec.name, namespace=spec.namespace, uid=uid, context="demo", version="16"
        ),
        chosen=Chosen(backup, BackupChoice(LATEST)),
        staging=staging,
        staging_seconds=staging_s,
        connect="service",
        address=f"{staging.name}.{STAGING_NS}.svc.cluster.local:5432",
        restore=report,
        teardown=Teardown("deleted"),
    )
