"""The demo sandbox, built once for this module from real pg_dumpall output (no mocks)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from sandbox import demo, localpg
from sandbox.demo.target import demo_target
from sandbox.demo.target import dsn as target_dsn
from services.catalog import Catalog
from services.config import load_config
from services.errors import PgdeckError
from services.models import Backup
from services.operator import backup_key, parse_backup_key
from services.verify import verify_backup
from tui.cli import main

try:
    localpg.find_bindir()
    HAVE_PG = True
except PgdeckError:  # pragma: no cover - depends on the machine
    HAVE_PG = False

pytestmark = pytest.mark.skipif(not HAVE_PG, reason="PostgreSQL binaries not installed")

# Two days before the real clock (at a fixed minute), so that `pgdeck demo` run on a copy
# of this sandbox always rolls it forward by about two days, never builds it again.
NOW = (datetime.now(UTC) - timedelta(days=2)).replace(minute=17, second=42, microsecond=0)
HOUR_NOW = NOW.replace(minute=0, second=0)
TRAILER = "--\n-- PostgreSQL database cluster dump complete\n--"
LIVE = {"acid-orders": "shop", "acid-inventory": "shop", "acid-billing": "finance"}


@dataclass
class Built:
    sandbox: demo.Sandbox
    messages: list[str]
    leftover_servers: set[str]


def _server_dirs(where: Path) -> set[str]:
    return {p.name for p in where.glob("pgdeck-demo-pg-*")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("cache") / "demo"
    messages: list[str] = []
    # The build's throwaway servers go in a temp directory of this test's own: other
    # builds running at the same time (other workers, other checkouts) leave theirs in /tmp.
    # A short one: the servers' unix sockets live there (107 bytes at most for a path).
    with _own_tempdir() as temp:
        sandbox = demo.prepare_sandbox(root, now=NOW, progress=messages.append)
        return Built(sandbox, messages, _server_dirs(temp))


@contextlib.contextmanager
def _own_tempdir() -> Iterator[Path]:
    temp = Path(tempfile.mkdtemp(prefix="pgdeck-t-"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tempfile, "tempdir", str(temp))
            yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def objects(built: Built) -> dict[str, dict[str, list[tuple[int, Path]]]]:
    """cluster -> uid -> [(epoch, path)] sorted by epoch, parsed with the operator's layout."""
    store = Path(built.sandbox.store_url.removeprefix("file://"))
    found: dict[str, dict[str, list[tuple[int, Path]]]] = defaultdict(lambda: defaultdict(list))
    for path in store.rglob("*"):
        if path.is_file() and path.name != ".pgdeck-meta.json":
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
    assert any("pg_dumpall" in m for m in built.messages)
    assert any(m.startswith("acid-billing: dump") for m in built.messages)
    assert built.leftover_servers == set(), "the throwaway servers' directories must be gone"
    # only the store, manifests, archive, config and stamp; no build directories beside the root
    assert {p.name for p in sb.root.iterdir()} == {
        "store",
        "manifests",
        "archive",
        "config.yaml",
        "SANDBOX",
    }
    assert [p.name for p in sb.root.parent.iterdir()] == ["demo"]
    stamp = json.loads((sb.root / "SANDBOX").read_text())
    assert stamp["format"] == demo.FORMAT_VERSION


def _hour(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch // 3600 * 3600, UTC)


def test_four_clusters_a_month_of_hourly_backups(objects: dict) -> None:
    assert set(objects) == {"acid-orders", "acid-inventory", "acid-billing", "acid-legacy"}
    month_ago = NOW - timedelta(days=30)
    planted = {"acid-orders": 3, "acid-inventory": 1, "acid-billing": 0}  # hours left empty
    for cluster in LIVE:
        epochs = sorted(e for items in objects[cluster].values() for e, _ in items)
        assert abs(len(epochs) + planted[cluster] - 720) <= 1, cluster
        newest, oldest = (datetime.fromtimestamp(e, UTC) for e in (epochs[-1], epochs[0]))
        assert NOW - timedelta(hours=2) < newest <= NOW
        assert abs(oldest - month_ago) < timedelta(hours=2)
        for e in epochs:
            assert 0 < e % 3600 < 60, "written a few seconds after the full hour"
            assert len(str(e)) == 10
        # one per hour, none missing but the planted gaps
        steps = [b // 3600 - a // 3600 for a, b in zip(epochs, epochs[1:], strict=False)]
        assert sum(step - 1 for step in steps) == planted[cluster], cluster
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
    sample = max(texts, key=len)
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
    small = HOUR_NOW - timedelta(hours=demo.SMALL_HOURS_AGO)
    for cluster, uids in objects.items():
        for uid, items in uids.items():
            sizes = [path.stat().st_size for epoch, path in items if _hour(epoch) != small]
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
    assert {j["kind"] for j in jobs} == {"Job"} and len(jobs) == 10  # 3 per cluster + 1 failed
    failed = [j for j in jobs if j["status"].get("failed")]
    assert [j["metadata"]["labels"]["cluster-name"] for j in failed] == ["acid-inventory"]
    assert all(j["status"].get("succeeded") == 1 for j in jobs if j not in failed)
    pods = _load_list(m / "pods.yaml")
    assert {p["kind"] for p in pods} == {"Pod"}
    backup_pods = [p for p in pods if p["metadata"]["labels"]["application"] != "spilo"]
    db_pods = [p for p in pods if p["metadata"]["labels"]["application"] == "spilo"]
    assert len(backup_pods) == 9 + demo.FAILED_ATTEMPTS and len(db_pods) == 3
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
        if p["status"]["phase"] == "Failed":
            assert "aws s3 cp -" not in text and "shutting down" in text
            continue
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
        "cache": str(sb.root / "cache"),
    }


def test_second_call_reuses(built: Built) -> None:
    sb = built.sandbox
    stamp = (sb.root / "SANDBOX").stat()
    messages: list[str] = []
    # later in the same hour: no job has run since, nothing to roll forward
    again = demo.prepare_sandbox(sb.root, now=NOW + timedelta(minutes=20), progress=messages.append)
    assert not any("pg_dumpall" in m or m.startswith("acid-") for m in messages), messages
    assert again == sb
    assert (sb.root / "SANDBOX").stat().st_ino == stamp.st_ino
    assert (sb.root / "SANDBOX").stat().st_mtime_ns == stamp.st_mtime_ns
    assert any("reusing" in msg for msg in messages)


# --------------------------------------------------------------------------- planted problems


@pytest.fixture(scope="module")
def catalog(built: Built) -> Catalog:
    """The sandbox as pgdeck sees it: its config, file:// storage and manifests."""
    cat = Catalog(load_config(str(built.sandbox.config_path)))
    state = cat.refresh()
    assert not state.problems, state.problems
    return cat


def _grid(catalog: Catalog, cluster: str) -> list[Backup]:
    """The backups of the last 14 days, as a 14-day x 24-hour coverage grid shows them."""
    since = HOUR_NOW - timedelta(days=14)
    return [b for b in catalog.backups(catalog.find(cluster)) if b.time >= since]


def _empty_hours(backups: list[Backup]) -> set[datetime]:
    hours = {b.time.replace(minute=0, second=0) for b in backups}
    first, last = min(hours), max(hours)
    span = int((last - first) / timedelta(hours=1))
    return {first + timedelta(hours=i) for i in range(span)} - hours


def test_acid_orders_misses_three_hours_two_of_them_adjacent(catalog: Catalog) -> None:
    empty = _empty_hours(_grid(catalog, "acid-orders"))
    assert empty == {HOUR_NOW - timedelta(hours=h) for h in demo.MISSING_HOURS_AGO}
    assert _empty_hours(_grid(catalog, "acid-billing")) == set()
    # Kubernetes keeps only the newest Jobs: nothing is left of the runs that never happened
    kept = {j.started for j in catalog.jobs(catalog.find("acid-orders"))}
    assert all(j is not None and j > HOUR_NOW - timedelta(hours=4) for j in kept)


def test_one_billing_backup_is_a_complete_dump_of_an_empty_server(catalog: Catalog) -> None:
    backups = _grid(catalog, "acid-billing")
    median = sorted(b.size for b in backups)[len(backups) // 2]
    small = [b for b in backups if b.size < median / 20]
    assert [b.time.replace(minute=0, second=0) for b in small] == [
        HOUR_NOW - timedelta(hours=demo.SMALL_HOURS_AGO)
    ]
    assert 500 < small[0].size < 4000 < median
    store, key, url = catalog.resolve(small[0].url)
    result = verify_backup(store, key)
    assert result.ok and result.summary.complete, result.problem
    assert result.summary.tables == []
    assert 1000 < result.summary.bytes < 10_000
    assert "standby" in result.summary.roles  # a Spilo, bootstrapped and empty


def test_inventory_newest_but_one_job_failed_and_left_no_object(catalog: Catalog) -> None:
    cluster = catalog.find("acid-inventory")
    jobs = catalog.jobs(cluster)
    assert [j.status for j in jobs] == ["succeeded", "failed", "succeeded", "succeeded"]
    failed = jobs[1]
    assert failed.reason == "BackoffLimitExceeded"
    assert len(failed.pods) == demo.FAILED_ATTEMPTS
    assert {(p.phase, p.exit_code) for p in failed.pods} == {("Failed", 1)}
    assert failed.started is not None and failed.finished is not None
    assert timedelta(minutes=5) < failed.finished - failed.started < timedelta(minutes=20)
    log = list(catalog.read_log(failed.context, failed.namespace, failed.pods[-1].name))
    assert log[-3].startswith('pg_dumpall: error: connection to server at "10.244.')
    assert log[-3].endswith("port 5432 failed: FATAL:  the database system is shutting down")
    assert log[-2].startswith("psql: error: connection to server at")
    assert "syntax error: operand expected" in log[-1]
    assert not any("aws s3 cp -" in line for line in log), "nothing was uploaded"
    hours = {b.time.replace(minute=0, second=0) for b in _grid(catalog, "acid-inventory")}
    assert failed.started not in hours
    assert failed.started + timedelta(hours=1) in hours
    assert failed.started - timedelta(hours=1) in hours


def test_one_recent_orders_object_is_stored_without_encryption(catalog: Catalog) -> None:
    seen: dict[str, list[Backup]] = {}
    for name in ("acid-orders", "acid-inventory", "acid-billing", "acid-legacy"):
        for b in catalog.with_sse(catalog.backups(catalog.find(name))):
            seen.setdefault("?" if b.sse is None else b.sse, []).append(b)
    assert set(seen) == {"AES256", ""}
    (plain,) = seen[""]
    assert plain.cluster == "acid-orders"
    assert plain.time.replace(minute=0, second=0) == HOUR_NOW - timedelta(hours=26)


# --------------------------------------------------------------------------- roll-forward


def _copy(sandbox: demo.Sandbox, root: Path) -> None:
    """A cheap copy (hard links) whose config names the copy; the newest object of each
    live uid is copied for real, so that the roll-forward's mtimes stay in the copy."""
    shutil.copytree(sandbox.root, root, copy_function=os.link)
    config = root / "config.yaml"
    text = config.read_text().replace(str(sandbox.root), str(root))
    config.unlink()
    config.write_text(text)
    for directory in (root / "store" / "spilo").glob("*/*/logical_backups"):
        newest = max(directory.iterdir())
        data = newest.read_bytes()
        mtime = newest.stat().st_mtime
        newest.unlink()
        newest.write_bytes(data)
        os.utime(newest, (mtime, mtime))


def test_a_stale_sandbox_is_rolled_forward(built: Built, tmp_path: Path) -> None:
    root = tmp_path / "demo"
    _copy(built.sandbox, root)
    later = NOW + timedelta(days=2, hours=3)
    messages: list[str] = []
    rolled = demo.prepare_sandbox(root, now=later, progress=messages.append)
    # rolled forward from the dumps it has: no server started, nothing dumped again
    assert not any("pg_dumpall" in m or m.startswith("acid-") for m in messages), messages
    assert rolled.root == root and any("rolled the demo sandbox forward" in m for m in messages)
    store = root / "store" / "spilo"
    sidecar = json.loads((store / ".pgdeck-meta.json").read_text())
    cat = Catalog(load_config(str(rolled.config_path)))
    assert not cat.refresh().problems
    month = later.replace(minute=0, second=0) - timedelta(hours=719)
    for name in LIVE:
        backups = cat.backups(cat.find(name))  # newest first
        live = [b for b in backups if b.uid == backups[0].uid]
        assert later - timedelta(hours=1) < live[0].time <= later
        assert min(b.time for b in live) >= month, "objects past the month are deleted"
        new = [b for b in live if b.time > NOW]
        assert len(new) == 51, name  # the hours from the build to `later`
        inodes = {os.stat(b.key).st_ino for b in new}
        assert len(inodes) == 1, "every new hour links the newest real dump"
        assert all(sidecar[_rel(b)] == {"sse": "AES256"} for b in new)
    assert set(sidecar) == {
        p.relative_to(store).as_posix() for p in store.glob("*/*/logical_backups/*")
    }
    # the planted problems are still there, older now
    assert _empty_hours(
        [b for b in cat.backups(cat.find("acid-orders")) if b.time >= later - timedelta(days=14)]
    ) == {HOUR_NOW - timedelta(hours=h) for h in demo.MISSING_HOURS_AGO}
    assert sum(1 for v in sidecar.values() if v == {"sse": ""}) == 1
    # the deleted cluster and the old uid are left alone
    for name in ("acid-legacy",):
        assert (
            len(cat.backups(cat.find(name)))
            == json.loads((built.sandbox.root / "SANDBOX").read_text())["backups"][name]
        )
    # Kubernetes: the newest three runs, and the failed Job kept among the failed ones
    jobs = cat.jobs(cat.find("acid-inventory"))
    assert [j.status for j in jobs] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert jobs[0].started == later.replace(minute=0, second=0)
    assert jobs[-1].started == HOUR_NOW - timedelta(hours=1)
    orders = cat.find("acid-orders")
    assert orders.cronjob is not None
    assert orders.cronjob.last_schedule == later.replace(minute=0, second=0)
    stamp = json.loads((root / "SANDBOX").read_text())
    assert stamp["now"] == NOW.isoformat() and stamp["until"] == later.isoformat()
    # within the same hour again: nothing to do
    again: list[str] = []
    demo.prepare_sandbox(root, now=later + timedelta(minutes=30), progress=again.append)
    assert any("reusing" in m for m in again)


def _rel(b: Backup) -> str:
    return "/".join(b.key.split("/")[-4:])


# --------------------------------------------------------------------------- pgdeck demo


@pytest.fixture
def demo_home(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sandbox where `pgdeck demo` looks for it (XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "xdg" / "pgdeck" / "demo"
    root.parent.mkdir(parents=True)
    _copy(built.sandbox, root)
    return root


def test_demo_print_prints_the_catalog_and_opens_nothing(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--print"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert {line.split()[1] for line in lines[1:]} == set(LIVE) | {"acid-legacy"}
    assert "rolled the demo sandbox forward" in err  # two days behind the real clock
    assert "not a terminal" not in err
    assert not (demo_home / "target-pg").exists(), "--print starts no target server"


def test_demo_without_a_terminal_prints_instead_of_opening_the_console(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert "stdout is not a terminal" in err
    assert "acid-inventory" in out
    assert main(["demo", "--prepare-only"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(demo_home / "config.yaml") and "reusing" in err


def test_demo_target_persists_and_is_reinitialised_when_broken(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    with demo_target(root) as pg:
        with psycopg.connect(target_dsn(pg), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
        datadir = pg.datadir
    assert not pg.running(), "stopped when the block ends"
    with demo_target(root) as pg:
        assert pg.datadir == datadir
        with psycopg.connect(target_dsn(pg), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    (datadir / "global" / "pg_control").unlink()  # broken
    messages: list[str] = []
    with pytest.raises(RuntimeError), demo_target(root, progress=messages.append) as pg:
        with psycopg.connect(target_dsn(pg), autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('kept')").fetchone() == (None,)
        raise RuntimeError("the console crashed")
    assert any("creating it again" in m for m in messages)
    assert not pg.running(), "stopped on an exception too"


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(PgdeckError, match="holds other files"):
        demo.prepare_sandbox(root, now=NOW)
    assert (root / "notes.txt").read_text() == "mine"


def test_interrupted_build_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "demo"

    def interrupt(message: str) -> None:
        if ": dump " in message:
            raise KeyboardInterrupt

    with _own_tempdir() as temp, pytest.raises(KeyboardInterrupt):
        try:
            demo.prepare_sandbox(root, now=NOW, progress=interrupt)
        finally:
            left = _server_dirs(temp)
    assert not root.exists()
    assert list((tmp_path / "cache").iterdir()) == []
    assert left == set()


def test_a_sandbox_older_than_a_week_is_built_again(built: Built, objects: dict) -> None:
    # runs last in this module: it replaces the module's sandbox
    sb = built.sandbox
    old_stamp = json.loads((sb.root / "SANDBOX").read_text())
    later = NOW + timedelta(days=7, hours=2)
    messages: list[str] = []
    rebuilt = demo.prepare_sandbox(sb.root, now=later, progress=messages.append)
    assert rebuilt == sb
    assert any("more than 7 days old" in m for m in messages)
    assert not any("rolled" in m for m in messages)
    stamp = json.loads((sb.root / "SANDBOX").read_text())
    assert stamp["now"] != old_stamp["now"]
    orders = sb.root / "store" / "spilo" / "acid-orders"
    (uid,) = [p.name for p in orders.iterdir()]
    newest = max(int(p.name[:10]) for p in (orders / uid / "logical_backups").iterdir())
    assert later - timedelta(hours=2) < datetime.fromtimestamp(newest, UTC) <= later
    assert [p.name for p in sb.root.parent.iterdir()] == ["demo"]
    assert os.path.isfile(sb.config_path)


@pytest.mark.serial
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_pgdeck_demo_in_a_real_terminal(demo_home: Path, tmp_path: Path) -> None:
    """`pgdeck demo` in tmux: the clusters, a cluster's coverage grid, the wizard, then quit."""
    import shlex
    import subprocess
    import sys

    session = f"pgdeck-test-{os.getpid()}"
    exe = Path(sys.executable).parent / "pgdeck"
    done = tmp_path / "exit-status"
    env = f"XDG_CACHE_HOME={shlex.quote(os.environ['XDG_CACHE_HOME'])} TERM=xterm-256color"
    command = f"env {env} {shlex.quote(str(exe))} demo; echo $? > {shlex.quote(str(done))}"

    def tmux(*args: str) -> str:
        return subprocess.run(
            ["tmux", *args], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def screen_shows(text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            pane = tmux("capture-pane", "-p", "-t", session)
            if text in pane:
                return pane
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{pane}")
            time.sleep(0.2)

    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
    try:
        pane = screen_shows("acid-inventory")
        assert "acid-legacy" in pane
        # The status shows in its column when it fits, else in the line of the selected
        # cluster: the last row, acid-legacy, is selected.
        tmux("send-keys", "-t", session, "Down", "Down", "Down")
        screen_shows("storage-only")
        screen_shows("refreshed")
        tmux("send-keys", "-t", session, "/", "orders", "Enter")
        screen_shows("acid-orders")
        tmux("send-keys", "-t", session, "Enter")
        screen_shows("Local time")
        tmux("send-keys", "-t", session, "g")
        pane = screen_shows("UTC hours")
        assert "✗" in pane  # the planted missing hours
        tmux("send-keys", "-t", session, "r")
        screen_shows("1 Backup")
        tmux("send-keys", "-t", session, "C-n")
        screen_shows("demo-local")
        screen_shows("✓ target answers")
        tmux("send-keys", "-t", session, "Escape")
        screen_shows("Local time")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.serial
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_pgdeck_demo_without_colour_in_a_real_terminal(demo_home: Path, tmp_path: Path) -> None:
    """`NO_COLOR=1 pgdeck demo` at 80x24: the timeline opens (it crashed on its first frame
    without colour), the wizard says its step and the highlighted target by signs."""
    import shlex
    import subprocess
    import sys

    session = f"pgdeck-nocolor-{os.getpid()}"
    exe = Path(sys.executable).parent / "pgdeck"
    done = tmp_path / "exit-status"
    env = (
        f"XDG_CACHE_HOME={shlex.quote(os.environ['XDG_CACHE_HOME'])} TERM=xterm-256color NO_COLOR=1"
    )
    command = f"env {env} {shlex.quote(str(exe))} demo; echo $? > {shlex.quote(str(done))}"

    def tmux(*args: str) -> str:
        return subprocess.run(
            ["tmux", *args], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def screen_shows(text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            pane = tmux("capture-pane", "-p", "-t", session)
            if text in pane:
                return pane
            if done.exists() or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{pane}")
            time.sleep(0.2)

    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        screen_shows("acid-inventory")
        tmux("send-keys", "-t", session, "Enter")  # at once: before the backups are read
        screen_shows("Local time")
        tmux("send-keys", "-t", session, "r")
        screen_shows("▸ 1 Backup")
        tmux("send-keys", "-t", session, "C-n")
        screen_shows("✓ 1 Backup  ›  ▸ 2 Target")
        screen_shows("┃ ▸ demo-local")  # the focused list (heavy border), its highlighted target
        screen_shows("✓ target answers")
        tmux("send-keys", "-t", session, "Escape")
        screen_shows("Local time")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_the_sandbox_has_a_year_of_restore_tests_archived_and_audited(built: Built) -> None:
    from services.archive import open_archive, verify_audit

    archive = open_archive(built.sandbox.root / "archive")
    assert verify_audit(archive).ok
    items = archive.list("restore-test")
    by_cluster: dict[str, list[dict]] = {}
    for item in items:  # newest first
        by_cluster.setdefault(item.document["source"]["cluster"], []).append(item.document)
    assert {c: len(d) for c, d in by_cluster.items()} == {
        "acid-orders": 5,
        "acid-inventory": 2,
        "acid-billing": 3,
    }
    assert by_cluster["acid-inventory"][0]["result"] == "failed"
    assert all(d["result"] == "passed" for d in by_cluster["acid-orders"])
    ttrs = [d["time_to_restore"]["total_seconds"] for d in reversed(by_cluster["acid-orders"])]
    assert ttrs == sorted(ttrs)  # grows with the data
