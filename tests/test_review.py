"""The weekly review against moto's S3 server and the fake Kubernetes API: every planted
problem is found with its evidence, and clean clusters (hourly and daily) raise nothing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.archive import os_user
from services.catalog import Catalog
from services.config import load_config
from services.review import (
    CHECK_NAMES,
    Review,
    ReviewFailed,
    list_reviews,
    load_review,
    run_review,
    sign_off,
)
from tests.conftest import seed, storage_config, write_config
from tui.cli import main

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
TOP = NOW.replace(minute=0)
H = timedelta(hours=1)
D = timedelta(days=1)
DUMP = (
    b"--\n-- PostgreSQL database cluster dump\n--\n\n"
    b"-- Dumped from database version 15.18\n-- Dumped by pg_dumpall version 15.18\n\n"
    b"SET default_transaction_read_only = off;\n\n"
    b"--\n-- PostgreSQL database cluster dump complete\n--\n\n"
)
REAL = gzip.compress(DUMP)
SIZE = len(REAL)  # the usual object in this world: a dump's size
DAYS = 4  # of hourly objects
WINDOW_DAYS = 3  # reviewed


def uid(n: int) -> str:
    return f"0e{n:06d}-0000-4000-8000-000000000000"


class World:
    def __init__(self, kube: Any, bucket: str) -> None:
        self.kube, self.bucket = kube, bucket
        self.n = 0

    def cluster(
        self,
        name: str,
        *,
        schedule: str = "0 * * * *",
        created: datetime = NOW - timedelta(days=60),
        retention: str | None = None,
        enabled: bool = True,
        last_successful: datetime | None = NOW - timedelta(minutes=18),
    ) -> tuple[str, dict[str, Any]]:
        self.n += 1
        u = uid(self.n)
        pg = ko.postgresql(
            name,
            "shop",
            uid=u,
            created=created,
            schedule=schedule,
            retention=retention,
            enable_logical_backup=enabled,
        )
        cj = ko.cronjob(pg, schedule=schedule, last_schedule=TOP, last_successful=last_successful)
        self.kube.add(pg, cj)
        return u, cj

    def objects(
        self,
        name: str,
        u: str,
        times: list[datetime],
        *,
        sizes: dict[int, Any] | None = None,
        plain: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        """Objects at ``times`` (oldest first); the newest holds a real, complete dump."""
        sizes = sizes or {}
        body: dict[str, bytes | int] = {}
        unencrypted: dict[str, bytes | int] = {}
        for i, t in enumerate(times):
            key = f"spilo/{name}/{u}/logical_backups/{int(t.timestamp())}.sql.gz"
            value: bytes | int = sizes.get(i, REAL if i == len(times) - 1 else SIZE + i)
            (unencrypted if i in plain else body)[key] = value
        seed(self.bucket, body)
        seed(self.bucket, unencrypted, sse=None)

    def job(
        self, cj: dict[str, Any], at: datetime, *, ok: bool = True, log: str = "done\n"
    ) -> None:
        if ok:
            jb = ko.job(cj, started=at, finished=at + timedelta(seconds=40))
            pod = ko.pod(jb, started=at, finished=at + timedelta(seconds=40))
        else:
            jb = ko.job(cj, started=at, succeeded=False, reason="BackoffLimitExceeded")
            pod = ko.pod(jb, started=at, finished=at + timedelta(seconds=30), exit_code=1)
        self.kube.add(jb, pod)
        self.kube.set_log("shop", pod["metadata"]["name"], log)


def hourly(days: float, *, skip: tuple[int, ...] = ()) -> list[datetime]:
    """Objects 3 minutes after each hourly run, oldest first; ``skip`` counts runs back
    from the newest judged one (1 = the run of an hour before TOP)."""
    n = int(days * 24)
    return [TOP - k * H + timedelta(minutes=3) for k in range(n, 0, -1) if k not in skip]


def daily(days: int) -> list[datetime]:
    return [(TOP - k * D).replace(hour=1, minute=31) for k in range(days, -1, -1)]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, kube_server: Any, s3_endpoint: str
) -> Iterator[Catalog]:
    """One world for the module (a review of it takes seconds against moto): the session's
    Kubernetes API emptied for it, and a bucket of its own."""
    import boto3

    from tests.fakekube import write_kubeconfig

    root = tmp_path_factory.mktemp("review")
    bucket = "review-world"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    kube_server.clear()
    kube_server.allow_all()
    w = World(kube_server, bucket)
    kube_server.add(
        ko.operator_configuration(
            "postgres-operator",
            "postgres-operator",
            {"logical_backup_s3_bucket": bucket, "logical_backup_s3_sse": "AES256"},
        )
    )
    u, cj = w.cluster("acid-clean-hourly")
    w.objects("acid-clean-hourly", u, hourly(DAYS))
    w.job(cj, TOP - H)
    u, cj = w.cluster(
        "acid-clean-daily", schedule="30 1 * * *", last_successful=TOP.replace(hour=1, minute=32)
    )
    w.objects("acid-clean-daily", u, daily(12))
    w.job(cj, TOP.replace(hour=1, minute=30))
    u, _ = w.cluster("acid-gaps")
    w.objects("acid-gaps", u, hourly(DAYS, skip=(30, 31, 60)))
    u, _ = w.cluster("acid-late", last_successful=TOP - 4 * H + timedelta(minutes=2))
    w.objects("acid-late", u, hourly(DAYS, skip=(1, 2, 3)))
    u, cj = w.cluster("acid-failed", last_successful=TOP - 2 * H + timedelta(minutes=2))
    w.objects("acid-failed", u, hourly(DAYS, skip=(1,)))
    w.job(cj, TOP - 2 * H)
    w.job(
        cj,
        TOP - H,
        ok=False,
        log="+ pg_dumpall\npg_dumpall: error: connection to server failed: FATAL:  the database "
        "system is shutting down\n+ exit 1\n",
    )
    n = len(hourly(DAYS))
    u, _ = w.cluster("acid-sizes")
    w.objects("acid-sizes", u, hourly(DAYS), sizes={n - 30: 50, n - 20: SIZE * 5})
    u, _ = w.cluster("acid-plain")
    w.objects("acid-plain", u, hourly(DAYS), plain={n - 5})
    u, _ = w.cluster("acid-retention", retention="1 day")
    w.objects("acid-retention", u, hourly(DAYS))
    u, cj = w.cluster("acid-noisy")
    w.objects("acid-noisy", u, hourly(DAYS))
    w.job(cj, TOP - H, log="+ aws s3 cp\nERROR: upload slow, retried 3 times\ndone\n")
    w.cluster("acid-off", enabled=False)
    u, _ = w.cluster("acid-damaged")
    w.objects("acid-damaged", u, hourly(DAYS), sizes={n - 1: b"not gzip at all"})
    kubeconfig = write_kubeconfig(root / "kubeconfig", {"test": kube_server}, namespace="shop")
    config = storage_config(
        root,
        bucket,
        s3_endpoint,
        kubernetes={"kubeconfig": str(kubeconfig)},
        review={"near_empty_bytes": 100, "since_days": WINDOW_DAYS},
    )
    yield Catalog(load_config(str(config)), clock=lambda: NOW)
    kube_server.clear()


@pytest.fixture(scope="module")
def review(world: Catalog) -> Review:
    return run_review(world, verify=True)


def findings(review: Review, cluster: str, check: str | None = None) -> list[Any]:
    return [
        f for f in review.findings if f.cluster == cluster and (check is None or f.check == check)
    ]


def marks(review: Review, cluster: str) -> dict[str, str]:
    return next(c.marks for c in review.clusters if c.cluster == cluster)


def test_clean_hourly_and_daily_clusters_raise_nothing(review: Review) -> None:
    for name in ("acid-clean-hourly", "acid-clean-daily"):
        assert findings(review, name) == [], name
        assert set(marks(review, name).values()) == {"ok"}, name
        assert set(marks(review, name)) == set(CHECK_NAMES)


def test_missing_runs_are_named_and_the_newest_missing_is_critical(review: Review) -> None:
    (gaps,) = findings(review, "acid-gaps", "missing_backup")
    # 72 runs in the window; the newest (12:00, 20 minutes ago) is still within its grace.
    assert gaps.severity == "warning" and gaps.detail.startswith("3 of 71 runs")
    assert [e.ref for e in gaps.evidence] == [
        "2026-11-18T00:00:00Z",  # 60 runs before TOP
        "2026-11-19T05:00:00Z",
        "2026-11-19T06:00:00Z",
    ]
    (late,) = findings(review, "acid-late", "missing_backup")
    assert late.severity == "critical" and "the latest among them" in late.detail
    assert len(late.evidence) == 3


def test_a_failed_job_with_its_reason_and_log_lines(review: Review) -> None:
    failed = findings(review, "acid-failed", "job_failed")
    job = next(f for f in failed if f.detail.startswith("job "))
    assert job.severity == "critical" and "BackoffLimitExceeded" in job.detail
    logs = [e.detail for e in job.evidence if e.kind == "log"]
    assert logs == [
        "pg_dumpall: error: connection to server failed: FATAL:  the database system is "
        "shutting down"
    ]
    cron = next(f for f in failed if f.detail.startswith("CronJob"))
    assert cron.severity == "critical" and "older than its schedule allows" in cron.detail
    # The failed run also left no object.
    assert findings(review, "acid-failed", "missing_backup")[0].severity == "critical"


def test_sizes_far_from_the_norm(review: Review) -> None:
    found = findings(review, "acid-sizes", "size_anomaly")
    assert sorted((f.severity, f.detail.split(":")[0]) for f in found) == [
        ("critical", "near-empty"),
        ("warning", "a sudden jump"),
    ]
    assert all(f.evidence[0].kind == "object" for f in found)
    # A steadily growing cluster (every other one here grows by a byte an hour) raises nothing.
    assert not findings(review, "acid-gaps", "size_anomaly")


def test_an_object_without_encryption(review: Review) -> None:
    (plain,) = findings(review, "acid-plain", "unencrypted")
    assert plain.severity == "warning" and "expected AES256" in plain.detail
    assert len(plain.evidence) == 1 and plain.evidence[0].ref.startswith("s3://")


def test_objects_older_than_the_retention(review: Review) -> None:
    (stale,) = findings(review, "acid-retention", "retention")
    assert stale.severity == "warning" and "deletion is not working" in stale.detail
    # Objects back to 96 h ago against a day kept and a day's slack: those of 48 to 96 h ago.
    assert stale.detail.startswith("49 object(s)")


def test_integrity_of_the_newest_backup_with_verify(review: Review) -> None:
    (bad,) = findings(review, "acid-damaged", "integrity")
    assert bad.severity == "critical" and "damaged" in bad.detail
    assert marks(review, "acid-clean-hourly")["integrity"] == "ok"


def test_error_lines_in_the_log_of_a_job_that_succeeded(review: Review) -> None:
    (noisy,) = findings(review, "acid-noisy", "log_anomaly")
    assert noisy.severity == "warning"
    assert [e.detail for e in noisy.evidence if e.kind == "log"] == [
        "ERROR: upload slow, retried 3 times"
    ]
    assert noisy.evidence[0].kind == "job"


def test_clusters_without_logical_backups_are_listed_as_such(review: Review) -> None:
    (off,) = findings(review, "acid-off")
    assert off.severity == "info" and "not enabled" in off.detail
    assert marks(review, "acid-off")["job_failed"] == "skipped"
    assert "Without logical backups: shop/acid-off" in review.to_markdown()


def test_sign_off_archives_json_markdown_and_an_audit_line(review: Review, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    signed = sign_off(review, "Ada Lovelace", "checked with the on-call", archive)
    assert signed.archived is not None
    data = json.loads(Path(signed.archived["json"]).read_text())
    assert data["signed_off"]["reviewer"] == "Ada Lovelace"
    assert len(data["findings"]) == len(review.findings)
    md = Path(signed.archived["markdown"]).read_text()
    assert "Signed off by Ada Lovelace" in md and "acid-gaps" in md
    audit = [json.loads(line) for line in (archive / "audit.log").read_text().splitlines()]
    assert audit[-1]["action"] == "review" and audit[-1]["reviewer"] == "Ada Lovelace"
    assert audit[-1]["os_user"] == os_user()  # the typed name is beside it, not instead
    (earlier,) = list_reviews(archive)
    again = load_review(archive, earlier.location)
    assert again.reviewer == "Ada Lovelace" and len(again.findings) == len(review.findings)
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in review.findings]


def test_review_cli_exit_status_json_and_markdown(
    world: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(world.config.path)
    md = tmp_path / "review.md"
    code = main(
        ["--config", config, "review", "--json", "--markdown", str(md), "--since", "7d"],
        clock=lambda: NOW,
    )
    out, err = capsys.readouterr()
    assert code == 1, err  # there are warnings and worse
    data = json.loads(out)
    assert data["summary"]["critical"] >= 3
    assert {f["check"] for f in data["findings"]} >= {
        "missing_backup",
        "job_failed",
        "size_anomaly",
        "unencrypted",
        "retention",
        "log_anomaly",
    }
    assert md.read_text().startswith("# pgdeck weekly backup review")
    with pytest.raises(SystemExit) as usage:
        main(["--config", config, "review", "--since", "soon"])
    assert usage.value.code == 2
    assert "is not an age" in capsys.readouterr().err


def test_a_failed_source_makes_the_review_impossible(
    tmp_path: Path, bucket: str, s3_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kubernetes": {"enabled": False},
            "storage": [{"url": "s3://no-such-bucket-here/spilo", "endpoint_url": s3_endpoint}],
            "cache": str(tmp_path / "cache"),
        },
    )
    with pytest.raises(ReviewFailed):
        run_review(Catalog(load_config(str(config))))
    assert main(["--config", str(config), "review"]) == 2
    err = capsys.readouterr().err
    assert "the review could not be made" in err and "no-such-bucket-here" in err
    assert "Traceback" not in err


def test_log_lines_quoted_as_evidence_have_secret_values_masked() -> None:
    from services.review import scrub

    assert scrub("+ export PGPASSWORD=s3cr3t") == "+ export PGPASSWORD=***"
    assert scrub("AWS_SECRET_ACCESS_KEY=abc/d+e") == "AWS_SECRET_ACCESS_KEY=***"
    assert scrub('password: "hunter2" then') == 'password: "***" then'
    kept = 'FATAL:  password authentication failed for user "postgres"'
    assert scrub(kept) == kept
