"""``restore-test --in-cluster`` end to end: each Job's container is pgdeck itself (``python
-m tui.cli`` with the Job's arguments, run by the stand-in Job controller), restoring a real
backup from moto through the stand-in operator's staging cluster into a real PostgreSQL."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path
from typing import Any

from services import restore_test as rt
from services.archive import open_archive
from services.config import parse_config
from tests.conftest import seed, table_digests
from tests.standin_jobs import PodRun, StandinJobs
from tests.standin_operator import StandinOperator
from tests.test_restore_test import STAGING, backup_at
from tests.test_restore_test import setup as restore_test_setup
from tests.test_restore_test_jobs import IMAGE, RUN, jobs_of, launcher


def test_a_job_running_pgdeck_restores_and_its_report_is_collected(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_pg: Any,
    source_dump: bytes,
    target_pg: Any,
    capsys: Any,
) -> None:
    """End to end: the Job's container is pgdeck itself (restore-test with the launcher's
    arguments), restoring through the stand-in operator's staging cluster."""
    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    cfg = restore_test_setup(
        tmp_path,
        kube,
        kubeconfig,
        bucket,
        s3_endpoint,
        target_pg,
        restore_tests={"rto_minutes": 60, "image": IMAGE},
    )
    config = parse_config(cfg.read_text(), cfg)
    lines: list[str] = []
    with (
        StandinOperator(kube, username="postgres") as operator,
        StandinJobs(kube, plan=lambda job: PodRun(pgdeck_config=cfg)) as jobs,
    ):
        (outcome,) = launcher(config, open_archive(tmp_path / "archive")).run(
            [rt.TestRequest("acid-shop", "shop")],
            run_id=RUN,
            on_line=lambda cluster, line: lines.append(line),
            cancel=rt.TestsCancel(),
        )
    doc = outcome.document
    assert outcome.result == "passed", (doc.get("reasons"), outcome.error, lines)
    (job,) = jobs.seen
    assert doc["run_id"] == RUN and doc["source"]["cluster"] == "acid-shop"
    assert doc["started_by"]["job"] == job
    assert any("restore-test run " + RUN in line for line in lines)  # pgdeck's own log
    assert table_digests(target_pg, "shop") == table_digests(source_pg, "shop")
    assert kube.get("postgresql", STAGING, operator.seen[0]) is None
    assert jobs_of(kube) == []


def test_a_cancel_stops_pgdeck_in_the_job_which_deletes_its_staging_cluster(
    tmp_path: Path,
    kube: Any,
    kubeconfig: Path,
    bucket: str,
    s3_endpoint: str,
    source_dump: bytes,
    target_pg: Any,
) -> None:
    seed(bucket, {backup_at(1): gzip.compress(source_dump)})
    cfg = restore_test_setup(
        tmp_path,
        kube,
        kubeconfig,
        bucket,
        s3_endpoint,
        target_pg,
        restore_tests={"rto_minutes": 60, "image": IMAGE},
    )
    config = parse_config(cfg.read_text(), cfg)
    archive = open_archive(tmp_path / "archive")
    cancel = rt.TestsCancel()
    # The staging cluster never gets ready: pgdeck in the Job waits for it until cancelled.
    operator = StandinOperator(kube, username="postgres", ready_after=None).start()
    jobs = StandinJobs(kube, plan=lambda job: PodRun(pgdeck_config=cfg)).start()
    try:

        def cancel_once_staging_exists() -> None:
            while not operator.seen:
                time.sleep(0.05)
            cancel.cancel()

        threading.Thread(target=cancel_once_staging_exists, daemon=True).start()
        (outcome,) = launcher(config, archive).run(
            [rt.TestRequest("acid-shop", "shop")],
            run_id=RUN,
            on_line=lambda cluster, line: None,
            cancel=cancel,
        )
    finally:
        jobs.stop()  # waits for pgdeck, sent SIGTERM, to end
        operator.stop()
    assert outcome.result == "cancelled" and jobs.deleted == jobs.seen
    assert kube.get("postgresql", STAGING, operator.seen[0]) is None  # torn down inside
    (item,) = archive.list("restore-test")
    assert item.document["run_id"] == RUN and item.document["result"] == "cancelled"
