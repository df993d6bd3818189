"""The demo sandbox, built once for this module from real pg_dumpall output (no mocks)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services import demo, localpg
from services.errors import PgdeckError
from services.operator import backup_key, parse_backup_key

try:
    localpg.find_bindir()
    HAVE_PG = True
except PgdeckError:  # pragma: no cover - depends on the machine
    HAVE_PG = False

pytestmark = pytest.mark.skipif(not HAVE_PG, reason="PostgreSQL binaries not installed")

NOW = datetime(2026, 11, 20, 10, 17, 42, tzinfo=UTC)
TRAILER = "--\n-- PostgreSQL database cluster dump complete\n--"
LIVE = {"acid-orders": "shop", "acid-inventory": "shop", "acid-billing": "finance"}


@dataclass
class Built:
    sandbox: demo.Sandbox
    seconds: float
    messages: list[str]
    leftover_servers: set[str]


def _server_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("pgdeck-demo-pg-*")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("cache") / "demo"
    messages: list[str] = []
    before = _server_dirs()
    started = time.monotonic()
    sandbox = demo.prepare_sandbox(root, now=NOW, progress=messages.append)
    seconds = time.monotonic() - started
    return Built(sandbox, seconds, messages, _server_dirs() - before)


@pytest.fixture(scope="module")
def objects(built: Built) -> dict[str, dict[str, list[tuple[int, Path]]]]:
    """cluster -> uid -> [(epoch, path)] sorted by epoch, parsed with the operator's layout."""
    store = Path(built.sandbox.store_url.removeprefix("file://"))
    found: dict[str, dict[str, list[tuple[int, Path]]]] = defaultdict(lambda: defaultdict(list))
    for path in store.rglob("*"):
        if path.is_file():
            key = parse_backup_key(path.relative_to(store).as_posix())
            assert key is not None, f"not a backup key: {path}"
            found[key.cluster][key.uid].append((key.epoch, path))
    for uids in found.values():
        for items in uids.values():
            items.sort()
    return found


def _uids_by_age(objects: dict, cluster: str) -> list[str]:
    return sorted(objects[cluster], key=lambda uid: objects[cluster][uid][0][0])


def test_build_reports_progress_and_cleans_up(built: Built) -> None:
    sb = built.sandbox
    assert sb.clusters == ("acid-orders", "acid-inventory", "acid-billing", "acid-legacy")
    assert sb.config_path == sb.root / "config.yaml" and sb.manifests == sb.root / "manifests"
    assert sb.store_url == f"file://{sb.root}/store/spilo"
    assert built.seconds < 120, f"the build took {built.seconds:.0f} s"
    assert any("pg_dumpall" in m for m in built.messages)
    assert any(m.startswith("acid-billing: dump") for m in built.messages)
    assert built.leftover_servers == set(), "the throwaway servers' directories must be gone"
    # only the store, manifests, config and stamp; no build directories beside the root
    assert {p.name for p in sb.root.iterdir()} == {"store", "manifests", "config.yaml", "SANDBOX"}
    assert [p.name for p in sb.root.parent.iterdir()] == ["demo"]
    stamp = json.loads((sb.root / "SANDBOX").read_text())
    assert stamp["format"] == demo.FORMAT_VERSION


def test_four_clusters_a_month_of_hourly_backups(objects: dict) -> None:
    assert set(objects) == {"acid-orders", "acid-inventory", "acid-billing", "acid-legacy"}
    month_ago = NOW - timedelta(days=30)
    for cluster in LIVE:
        epochs = sorted(e for items in objects[cluster].values() for e, _ in items)
        assert abs(len(epochs) - 720) <= 1, cluster
        newest, oldest = (datetime.fromtimestamp(e, UTC) for e in (epochs[-1], epochs[0]))
        assert NOW - timedelta(hours=2) < newest <= NOW
        assert abs(oldest - month_ago) < timedelta(hours=2)
        for e in epochs:
            assert 0 < e % 3600 < 60, "written a few seconds after the full hour"
            assert len(str(e)) == 10
        # one per hour, none missing
        assert [b // 3600 - a // 3600 for a, b in zip(epochs, epochs[1:], strict=False)] == [1] * (
            len(epochs) - 1
        )
    for cluster in ("acid-orders", "acid-inventory"):
        assert len(objects[cluster]) == 1, cluster


def test_billing_recreated_nine_days_ago(objects: dict) -> None:
    old, new = _uids_by_age(objects, "acid-billing")
    boundary = NOW - timedelta(days=9)
    assert datetime.fromtimestamp(objects["acid-billing"][old][-1][0], UTC) < boundary
    assert datetime.fromtimestamp(objects["acid-billing"][new][0][0], UTC) > boundary
    assert objects["acid-billing"][new][0][0] - objects["acid-billing"][old][-1][0] < 3700
    assert len(objects["acid-billing"][new]) in (216, 217)


def test_legacy_only_before_its_deletion(objects: dict) -> None:
    (uid,) = objects["acid-legacy"]
    epochs = [e for e, _ in objects["acid-legacy"][uid]]
    deleted = NOW - timedelta(days=12)
    assert datetime.fromtimestamp(epochs[-1], UTC) < deleted
    assert datetime.fromtimestamp(epochs[-1], UTC) > deleted - timedelta(hours=2)
    assert len(epochs) > 400


def test_every_object_is_a_complete_pg_dumpall(objects: dict) -> None:
    checked: dict[int, str] = {}
    for uids in objects.values():
        for items in uids.values():
            for _, path in items:
                inode = path.stat().st_ino
                if inode not in checked:  # hard links share their content
                    raw = path.read_bytes()
                    assert raw[:2] == b"\x1f\x8b", f"{path} is not gzip"
                    checked[inode] = gzip.decompress(raw).decode("utf-8")
                text = checked[inode]
                assert text.startswith("--\n-- PostgreSQL database cluster dump\n--\n"), path
                assert text.rstrip().endswith(TRAILER), path
    texts = list(checked.values())
    assert 40 <= len(texts) <= 100, "about 12-24 real dumps per cluster"
    sample = texts[-1]
    for needle in (
        "\\restrict ",
        "CREATE ROLE postgres;",
        "COPY public.",
        "FOREIGN KEY",
        "AS ENUM",
    ):
        assert needle in sample
    assert any(ord(ch) > 127 for ch in sample[:200000] if ch.isalpha())


def test_each_cluster_has_its_own_databases(objects: dict) -> None:
    expected = {
        "acid-orders": {"orders", "customers"},
        "acid-inventory": {"inventory"},
        "acid-billing": {"billing"},
        "acid-legacy": {"crm"},
    }
    for cluster, dbs in expected.items():
        items = next(iter(objects[cluster].values()))
        text = gzip.decompress(items[-1][1].read_bytes()).decode()
        created = {
            line.split()[2].strip('"')
            for line in text.splitlines()
            if line.startswith("CREATE DATABASE ")
        }
        assert created == dbs, cluster
        assert "ü" in text or "ø" in text or "ł" in text


def test_sizes_drift_upward(objects: dict) -> None:
    for cluster, uids in objects.items():
        for uid, items in uids.items():
            sizes = [path.stat().st_size for _, path in items]
            assert sizes == sorted(sizes), f"{cluster}/{uid} sizes do not grow"
            assert sizes[-1] > sizes[0] * 1.1, f"{cluster}/{uid}: {sizes[0]} -> {sizes[-1]}"
    old, new = _uids_by_age(objects, "acid-billing")
    last_old = objects["acid-billing"][old][-1][1].stat().st_size
    assert objects["acid-billing"][new][-1][1].stat().st_size > last_old


def test_hard_links_keep_disk_use_small(built: Built, objects: dict) -> None:
    inodes: dict[int, int] = {}
    for uids in objects.values():
        for items in uids.values():
            for epoch, path in items:
                st = path.stat()
                inodes[st.st_ino] = st.st_size
                # linked objects share one mtime: the newest epoch they serve
                assert epoch <= st.st_mtime < epoch + 3 * 86400
            newest_epoch, newest = items[-1]
            assert newest.stat().st_mtime == newest_epoch
    assert len(inodes) < 100
    assert sum(inodes.values()) < 60_000_000


def _load_list(path: Path) -> list[dict]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    return doc["items"]


def test_manifests_describe_the_live_clusters(built: Built, objects: dict) -> None:
    m = built.sandbox.manifests
    pgs = _load_list(m / "postgresqls.yaml")
    assert {p["kind"] for p in pgs} == {"postgresql"}
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pgs} == {
        (ns, name) for name, ns in LIVE.items()
    }
    by_name = {p["metadata"]["name"]: p for p in pgs}
    for name in LIVE:
        newest_uid = _uids_by_age(objects, name)[-1]
        assert by_name[name]["metadata"]["uid"] == newest_uid
        assert by_name[name]["spec"]["enableLogicalBackup"] is True
    orders = by_name["acid-orders"]["spec"]
    assert orders["logicalBackupRetention"] == "1 month"
    assert set(orders["databases"]) == {"orders", "customers"}

    cronjobs = _load_list(m / "cronjobs.yaml")
    assert {c["kind"] for c in cronjobs} == {"CronJob"} and len(cronjobs) == 3
    for cj in cronjobs:
        cluster = cj["metadata"]["name"].removeprefix("logical-backup-")
        newest = objects[cluster][by_name[cluster]["metadata"]["uid"]][-1][0]
        assert cj["spec"]["schedule"] == "0 * * * *"
        last_schedule = datetime.strptime(cj["status"]["lastScheduleTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert int(last_schedule.replace(tzinfo=UTC).timestamp()) == newest // 3600 * 3600
        last_ok = datetime.strptime(cj["status"]["lastSuccessfulTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert 0 < last_ok.replace(tzinfo=UTC).timestamp() - newest < 120

    jobs = _load_list(m / "jobs.yaml")
    assert {j["kind"] for j in jobs} == {"Job"} and len(jobs) == 9
    assert all(j["status"].get("succeeded") == 1 for j in jobs)
    pods = _load_list(m / "pods.yaml")
    assert {p["kind"] for p in pods} == {"Pod"}
    backup_pods = [p for p in pods if p["metadata"]["labels"]["application"] != "spilo"]
    db_pods = [p for p in pods if p["metadata"]["labels"]["application"] == "spilo"]
    assert len(backup_pods) == 9 and len(db_pods) == 3
    assert {p["metadata"]["name"] for p in db_pods} == {f"{name}-0" for name in LIVE}
    job_names = {j["metadata"]["name"] for j in jobs}
    assert {p["metadata"]["labels"]["job-name"] for p in backup_pods} == job_names

    operator = _load_list(m / "operator.yaml")
    assert [o["kind"] for o in operator] == ["OperatorConfiguration"]
    lb = operator[0]["configuration"]["logical_backup"]
    assert operator[0]["metadata"]["name"] == operator[0]["metadata"]["namespace"]
    assert lb["logical_backup_s3_bucket"] == "demo-backups"
    assert lb["logical_backup_s3_bucket_prefix"] == "spilo"
    assert lb["logical_backup_schedule"] == "0 * * * *"
    assert lb["logical_backup_s3_sse"] == "AES256"
    assert lb["logical_backup_s3_retention_time"] == ""


def test_a_log_file_per_pod(built: Built, objects: dict) -> None:
    m = built.sandbox.manifests
    pods = _load_list(m / "pods.yaml")
    logs = {p.relative_to(m / "logs").as_posix() for p in (m / "logs").rglob("*.log")}
    assert logs == {f"{p['metadata']['namespace']}/{p['metadata']['name']}.log" for p in pods}
    for p in pods:
        if p["metadata"]["labels"]["application"] == "spilo":
            continue
        cluster = p["metadata"]["labels"]["cluster-name"]
        uid = _uids_by_age(objects, cluster)[-1]
        text = (
            m / "logs" / p["metadata"]["namespace"] / f"{p['metadata']['name']}.log"
        ).read_text()
        assert "pg_dumpall" in text and "pigz" in text and "aws s3 cp -" in text
        epochs = {e for e, _ in objects[cluster][uid]}
        keys = [
            backup_key(cluster, uid, e)
            for e in epochs
            if f"s3://demo-backups/spilo/{backup_key(cluster, uid, e)}" in text
        ]
        assert len(keys) == 1, "the log names the object its run uploaded"


def test_config_points_at_the_sandbox(built: Built) -> None:
    sb = built.sandbox
    config = yaml.safe_load(sb.config_path.read_text())
    assert config == {
        "kubernetes": {"manifests": str(sb.root / "manifests")},
        "storage": [{"url": f"file://{sb.root}/store/spilo"}],
        "archive": str(sb.root / "archive"),
    }


def test_second_call_reuses(built: Built) -> None:
    sb = built.sandbox
    stamp = (sb.root / "SANDBOX").stat()
    messages: list[str] = []
    started = time.monotonic()
    again = demo.prepare_sandbox(sb.root, now=NOW + timedelta(days=3), progress=messages.append)
    assert time.monotonic() - started < 2
    assert again == sb
    assert (sb.root / "SANDBOX").stat().st_ino == stamp.st_ino
    assert (sb.root / "SANDBOX").stat().st_mtime_ns == stamp.st_mtime_ns
    assert any("reusing" in msg for msg in messages)


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(PgdeckError, match="holds other files"):
        demo.prepare_sandbox(root, now=NOW)
    assert (root / "notes.txt").read_text() == "mine"


def test_interrupted_build_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "demo"
    before = _server_dirs()

    def interrupt(message: str) -> None:
        if ": dump " in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.prepare_sandbox(root, now=NOW, progress=interrupt)
    assert not root.exists()
    assert list((tmp_path / "cache").iterdir()) == []
    assert _server_dirs() - before == set()


def test_rebuild_replaces_the_sandbox(built: Built, objects: dict) -> None:
    # runs last in this module: it replaces the module's sandbox
    sb = built.sandbox
    old_stamp = json.loads((sb.root / "SANDBOX").read_text())
    later = NOW + timedelta(days=2)
    rebuilt = demo.prepare_sandbox(sb.root, now=later, rebuild=True)
    assert rebuilt == sb
    stamp = json.loads((sb.root / "SANDBOX").read_text())
    assert stamp["now"] != old_stamp["now"]
    orders = sb.root / "store" / "spilo" / "acid-orders"
    (uid,) = [p.name for p in orders.iterdir()]
    newest = max(int(p.name[:10]) for p in (orders / uid / "logical_backups").iterdir())
    assert later - timedelta(hours=2) < datetime.fromtimestamp(newest, UTC) <= later
    assert [p.name for p in sb.root.parent.iterdir()] == ["demo"]
    assert os.path.isfile(sb.config_path)
