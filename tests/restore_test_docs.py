"""Restore-test reports as the runner archives them (the contract's document), written into
a real archive with ``Archive.complete``: the history's tests read them back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.archive import Archive
from services.jsonable import iso


def document(
    cluster: str,
    finished: datetime,
    result: str = "passed",
    *,
    ttr: float = 812.4,
    rto: float = 3600.0,
    namespace: str = "shop",
    context: str = "test",
    uid: str = "u",
    teardown: str = "deleted",
) -> dict[str, Any]:
    started = finished - timedelta(seconds=ttr + 20)
    return {
        "status": "succeeded" if result == "passed" else "failed",
        "ttr_seconds": ttr - 30,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "kind": "restore-test",
        "run_id": f"{finished:%Y%m%dt%H%M%S}-a1b2c3",
        "result": result,
        "reasons": [] if result == "passed" else [f"the test {result}"],
        "started_by": {"user": "ada", "command": "pgdeck restore-test --all"},
        "source": {"cluster": cluster, "namespace": namespace, "uid": uid, "context": context},
        "backup_object": {
            "url": f"s3://b/spilo/{cluster}/u/logical_backups/1763640000.sql.gz",
            "time": iso(finished - timedelta(hours=3)),
            "size": 123,
        },
        "staging": {"name": f"pgdeck-restore-test-{cluster}-a1b2c3", "namespace": "staging"},
        "test_started_at": iso(started),
        "test_finished_at": iso(finished),
        "objective": {"rto_seconds": rto, "measured_seconds": ttr, "met": ttr <= rto},
        "time_to_restore": {
            "staging_seconds": 30.0,
            "restore_seconds": ttr - 30,
            "total_seconds": ttr,
        },
        "errors": {"expected": [], "unexpected": []},
        "teardown": {"status": teardown, "error": None},
    }


def archive_test(archive: Archive, doc: dict[str, Any], markdown: str | None = None) -> None:
    source = doc.get("source")
    cluster = str(source.get("cluster", "unknown")) if isinstance(source, dict) else "unknown"
    archive.complete(
        None,
        "restore-test",
        f"{cluster}-restore-test",
        doc,
        markdown or f"# Restore test {doc.get('result')}: {cluster}\n",
        {"outcome": doc.get("result")},
    )
