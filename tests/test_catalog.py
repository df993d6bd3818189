"""The catalog joined from a real-shaped Kubernetes API and moto's S3 server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.catalog import Catalog
from services.config import CatalogConfig, Config, KubernetesConfig, StorageLocation
from services.marks import HealthMark
from tests.conftest import seed

NOW = datetime(2026, 11, 20, 12, 0, 5, tzinfo=UTC)
T0 = int((NOW - timedelta(hours=48)).timestamp())
UID_ORDERS = "0a000000-0000-4000-8000-000000000001"
UID_ORDERS_OLD = "0a000000-0000-4000-8000-000000000000"
UID_BILLING = "0b000000-0000-4000-8000-000000000001"
UID_GONE = "0c000000-0000-4000-8000-000000000001"


def k(cluster: str, uid: str, epoch: int, prefix: str = "spilo") -> str:
    return f"{prefix}/{cluster}/{uid}/logical_backups/{epoch}.sql.gz"


def hourly(
    cluster: str, uid: str, start: int, hours: int, size: int = 1000, prefix: str = "spilo"
) -> dict[str, int]:
    return {k(cluster, uid, start + h * 3600, prefix): size + h for h in range(hours)}


def make_catalog(
    tmp_path: Path,
    *,
    kubeconfig: Path | None = None,
    storage: tuple[StorageLocation, ...] = (),
    namespaces: tuple[str, ...] = (),
    full_refresh_hours: float = 6,
    clock: Any = None,
) -> Catalog:
    cfg = Config(
        path=None,
        kubernetes=KubernetesConfig(
            kubeconfig=kubeconfig, namespaces=namespaces, enabled=kubeconfig is not None
        ),
        storage=storage,
        cache=tmp_path / "cache",
        archive=tmp_path / "archive",
        catalog=CatalogConfig(workers=8, full_refresh_hours=full_refresh_hours),
    )
    return Catalog(cfg, clock=clock) if clock else Catalog(cfg)


def add_cluster(
    kube: Any,
    name: str,
    namespace: str,
    uid: str,
    operator_schedule: str = "30 00 * * *",
    **kw: Any,
) -> dict[str, Any]:
    """A cluster and the CronJob the operator made for it: its own schedule, else the operator's."""
    pg = ko.postgresql(name, namespace, uid=uid, created=NOW - timedelta(days=30), **kw)
    cj = ko.cronjob(
        pg,
        schedule=kw.get("schedule") or operator_schedule,
        last_schedule=NOW - timedelta(minutes=5),
        last_successful=NOW - timedelta(minutes=4),
    )
    kube.add(pg, cj)
    return cj


def refresh_contexts(tmp_path: Path, servers: dict[str, Any]) -> Any:
    """A refreshed catalog over several Kubernetes contexts, one per fake API server."""
    from tests.fakekube import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kc", servers)
    cfg = Config(
        path=None,
        kubernetes=KubernetesConfig(kubeconfig=path, contexts=tuple(servers)),
        cache=tmp_path / "cache",
        catalog=CatalogConfig(workers=4),
    )
    return Catalog(cfg).refresh()


def by_name(state: Any) -> dict[tuple[str, str], Any]:
    return {(s.cluster.namespace, s.cluster.name): s for s in state.clusters}


@pytest.fixture
def world(kube: Any, bucket: str, s3_endpoint: str) -> dict[str, Any]:
    """Two live clusters (one re-created), one deleted cluster, WAL noise, an operator config."""
    add_cluster(kube, "acid-orders", "shop", UID_ORDERS, schedule="0 * * * *", retention="2 weeks")
    add_cluster(kube, "acid-billing", "finance", UID_BILLING)
    kube.add(ko.postgresql("acid-nobackup", "shop", created=NOW, enable_logical_backup=False))
    kube.add(
        ko.operator_configuration(
            "postgres-operator",
            "postgres-operator",
            {
                "logical_backup_s3_bucket": bucket,
                "logical_backup_s3_bucket_prefix": "spilo",
                "logical_backup_s3_endpoint": s3_endpoint,
                "logical_backup_schedule": "30 00 * * *",
                "logical_backup_s3_sse": "AES256",
            },
        )
    )
    seed(bucket, hourly("acid-orders", UID_ORDERS_OLD, T0 - 100 * 3600, 10))
    seed(bucket, hourly("acid-orders", UID_ORDERS, T0, 48, size=5000))
    seed(bucket, hourly("acid-billing", UID_BILLING, T0, 24))
    seed(bucket, hourly("acid-gone", UID_GONE, T0 - 500 * 3600, 5))
    seed(
        bucket,
        {
            f"spilo/acid-orders/{UID_ORDERS}/wal/15/wal_005/0000000100000000000000{i:02X}": 1
            for i in range(30)
        },
    )
    return {"bucket": bucket, "endpoint": s3_endpoint}


def test_clusters_are_joined_with_their_backups(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any]
) -> None:
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    state = cat.refresh()
    assert not [p for p in state.problems if p.fatal_for_source], state.problems
    rows = by_name(state)
    orders = rows[("shop", "acid-orders")]
    assert orders.cluster.in_kubernetes and orders.cluster.uid == UID_ORDERS
    # The re-created cluster keeps its old uid's backups; the live uid comes first.
    assert orders.backups == 58
    assert orders.uids == (UID_ORDERS, UID_ORDERS_OLD)
    assert orders.last_backup is not None
    assert orders.last_backup.time == datetime.fromtimestamp(T0 + 47 * 3600, UTC)
    assert orders.last_backup.size == 5047
    assert orders.cluster.schedule == "0 * * * *"  # its own, not the operator's
    assert orders.cluster.retention == "2 weeks"
    assert (
        orders.cluster.cronjob is not None
        and orders.cluster.cronjob.name == "logical-backup-acid-orders"
    )
    billing = rows[("finance", "acid-billing")]
    assert billing.backups == 24 and billing.cluster.schedule == "30 00 * * *"  # the operator's
    gone = rows[("", "acid-gone")]
    assert not gone.cluster.in_kubernetes and gone.cluster.uid == UID_GONE and gone.backups == 5
    nob = rows[("shop", "acid-nobackup")]
    assert nob.backups == 0 and not nob.cluster.logical_backup and nob.last_backup is None
    assert len(orders.recent_sizes) == 58 and orders.recent_sizes[-1] == 5047


def test_a_re_created_cluster_is_judged_by_its_own_uid(
    tmp_path: Path, kubeconfig: Path, kube: Any, world: dict[str, Any]
) -> None:
    """Re-created 6 h ago, the new uid never backed up: "no backups", not late by the old
    uid's last object; re-created 20 minutes ago, its first run is not due yet."""
    reborn_old = "0d000000-0000-4000-8000-000000000000"
    reborn_new = "0d000000-0000-4000-8000-100000000000"
    young_old = "0e000000-0000-4000-8000-000000000000"
    young_new = "0e000000-0000-4000-8000-100000000000"
    for name, new, old, age in (
        ("acid-reborn", reborn_new, reborn_old, timedelta(hours=6)),
        ("acid-young", young_new, young_old, timedelta(minutes=20)),
    ):
        pg = ko.postgresql(name, "shop", uid=new, created=NOW - age, schedule="0 * * * *")
        kube.add(pg, ko.cronjob(pg, schedule="0 * * * *", last_schedule=None))
        last = int((NOW - age).timestamp()) - 3600
        seed(world["bucket"], hourly(name, old, last - 47 * 3600, 48))
    # Kubernetes still names the uid of 30 days ago, but storage holds the objects of a
    # re-creation 9 h ago, written every hour since: judged by time, it is fine.
    stale_old = "0f000000-0000-4000-8000-000000000000"
    stale_new = "0f000000-0000-4000-8000-100000000000"
    pg = ko.postgresql("acid-stale", "shop", uid=stale_old, created=NOW - timedelta(days=30))
    kube.add(pg, ko.cronjob(pg, schedule="0 * * * *"))
    hour = int(NOW.replace(minute=0, second=0).timestamp())
    seed(world["bucket"], hourly("acid-stale", stale_old, hour - 57 * 3600, 48))
    seed(world["bucket"], hourly("acid-stale", stale_new, hour - 9 * 3600 + 60, 9))
    rows = by_name(make_catalog(tmp_path, kubeconfig=kubeconfig, clock=lambda: NOW).refresh())
    reborn, young = rows[("shop", "acid-reborn")], rows[("shop", "acid-young")]
    assert rows[("shop", "acid-stale")].health.mark == HealthMark.OK
    assert reborn.health.mark == HealthMark.NO_BACKUPS and "re-created" in reborn.health.detail
    assert reborn.backups == 48 and reborn.uids == (reborn_old,)  # its history is still shown
    assert young.health.mark == HealthMark.OK and "not due" in young.health.detail


def test_backups_of_a_cluster_newest_first_across_uids(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any]
) -> None:
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    cat.refresh()
    backups = cat.backups(cat.find("acid-orders"))
    assert len(backups) == 58
    times = [b.time for b in backups]
    assert times == sorted(times, reverse=True)
    assert (
        backups[0].url
        == f"s3://{world['bucket']}/spilo/acid-orders/{UID_ORDERS}/logical_backups/{T0 + 47 * 3600}.sql.gz"
    )
    assert backups[-1].uid == UID_ORDERS_OLD
    assert {b.cluster for b in backups} == {"acid-orders"}


def test_the_cache_answers_at_once_and_a_refresh_asks_only_for_what_is_new(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], s3: Any
) -> None:
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    first = cat.refresh()
    # A new process: the cache gives the same picture without any network.
    cached = make_catalog(tmp_path, kubeconfig=kubeconfig).load_cached()
    assert cached.from_cache
    assert {(s.cluster.name, s.backups) for s in cached.clusters} == {
        (s.cluster.name, s.backups) for s in first.clusters
    }

    seed(world["bucket"], {k("acid-orders", UID_ORDERS, T0 + 48 * 3600): 9999})
    again = make_catalog(tmp_path, kubeconfig=kubeconfig)
    calls: list[dict[str, Any]] = []
    store = again.store(again.locations()[0]) if again.locations() else None
    assert store is None  # locations come from the operator, known after Kubernetes is read
    again.load_cached()
    loc = again.locations()[0]
    again.store(loc).client.meta.events.register(  # type: ignore[attr-defined]
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    state = again.refresh()
    orders = by_name(state)[("shop", "acid-orders")]
    assert (
        orders.backups == 59 and orders.last_backup is not None and orders.last_backup.size == 9999
    )
    cluster_calls = [c for c in calls if "Delimiter" not in c]
    assert all("StartAfter" in c for c in cluster_calls), cluster_calls
    assert len(cluster_calls) <= 6  # one per cluster, plus a jump past acid-orders' WAL


def test_a_full_refresh_notices_deleted_objects(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], s3: Any
) -> None:
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    cat.refresh()
    s3.delete_object(Bucket=world["bucket"], Key=k("acid-billing", UID_BILLING, T0))
    assert (
        by_name(make_catalog(tmp_path, kubeconfig=kubeconfig).refresh())[
            ("finance", "acid-billing")
        ].backups
        == 24
    )
    full = make_catalog(tmp_path, kubeconfig=kubeconfig).refresh(full=True)
    assert by_name(full)[("finance", "acid-billing")].backups == 23


def test_configured_storage_wins_over_the_operator_and_1_10_layout(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str
) -> None:
    # Operator 1.10: a ConfigMap without a prefix setting; the job always writes "spilo".
    kube.add(
        ko.configmap(
            "postgres-operator",
            "default",
            {"logical_backup_s3_bucket": bucket, "logical_backup_s3_endpoint": s3_endpoint},
        )
    )
    add_cluster(kube, "acid-old", "shop", UID_ORDERS)
    seed(bucket, hourly("acid-old", UID_ORDERS, T0, 3))
    state = make_catalog(tmp_path, kubeconfig=kubeconfig).refresh()
    assert state.locations[0].storage.url == f"s3://{bucket}/spilo"
    assert "ConfigMap default/postgres-operator" in state.locations[0].origin
    assert by_name(state)[("shop", "acid-old")].backups == 3
    other = f"{bucket}-x"
    loc = StorageLocation(url=f"s3://{bucket}/elsewhere", endpoint_url=s3_endpoint)
    seed(bucket, hourly("acid-old", UID_ORDERS, T0, 7, prefix="elsewhere"))
    state = make_catalog(tmp_path / other, kubeconfig=kubeconfig, storage=(loc,)).refresh()
    assert by_name(state)[("shop", "acid-old")].backups == 7


def test_cluster_scope_forbidden_falls_back_to_the_namespace_and_says_so(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], kube: Any
) -> None:
    kube.forbid(r"^/apis/acid\.zalan\.do/v1/postgresqls")
    state = make_catalog(tmp_path, kubeconfig=kubeconfig).refresh()
    notes = [p for p in state.problems if "forbidden" in p.message]
    assert notes and not notes[0].fatal_for_source
    assert "'shop'" in notes[0].message
    rows = by_name(state)
    assert ("shop", "acid-orders") in rows
    assert ("finance", "acid-billing") not in rows
    assert not rows[("", "acid-billing")].cluster.in_kubernetes  # its backups are still listed


def test_configured_namespaces_are_read_one_by_one(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], kube: Any
) -> None:
    kube.forbid(
        r"^/apis/acid\.zalan\.do/v1/postgresqls"
    )  # cluster scope refused, namespaces allowed
    state = make_catalog(tmp_path, kubeconfig=kubeconfig, namespaces=("shop", "finance")).refresh()
    rows = by_name(state)
    assert rows[("finance", "acid-billing")].cluster.in_kubernetes
    assert rows[("shop", "acid-orders")].cluster.in_kubernetes
    assert not [p for p in state.problems if p.fatal_for_source]


def test_unreachable_api_is_clear_and_storage_still_works(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    from tests.fakekube import FakeKube, write_kubeconfig

    dead = FakeKube().start()
    path = write_kubeconfig(tmp_path / "kc", {"prod": dead})
    dead.stop()
    seed(bucket, hourly("acid-orders", UID_ORDERS, T0, 4))
    loc = StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=s3_endpoint)
    state = make_catalog(tmp_path, kubeconfig=path, storage=(loc,)).refresh()
    problems = [p for p in state.problems if p.fatal_for_source]
    assert len(problems) == 1
    assert "kubernetes context 'prod'" in problems[0].message
    assert "unreachable" in problems[0].message
    assert by_name(state)[("", "acid-orders")].backups == 4


def test_wrong_token_is_a_clear_message(
    tmp_path: Path, kube: Any, bucket: str, s3_endpoint: str
) -> None:
    import yaml

    from tests.fakekube import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kc", {"prod": kube})
    data = yaml.safe_load(path.read_text())
    data["users"][0]["user"]["token"] = "expired-token-value"
    path.write_text(yaml.safe_dump(data))
    loc = StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=s3_endpoint)
    state = make_catalog(tmp_path, kubeconfig=path, storage=(loc,)).refresh()
    text = " ".join(p.message for p in state.problems)
    assert "unauthorized (401)" in text
    assert "expired-token-value" not in text


def test_jobs_and_their_pod_logs(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], kube: Any
) -> None:
    cj = add_cluster(kube, "acid-orders", "shop", UID_ORDERS, schedule="0 * * * *")
    ok = ko.job(
        cj,
        started=NOW - timedelta(hours=2),
        finished=NOW - timedelta(hours=2) + timedelta(minutes=3),
    )
    bad = ko.job(
        cj, started=NOW - timedelta(hours=1), succeeded=False, reason="BackoffLimitExceeded"
    )
    ok_pod = ko.pod(
        ok,
        started=NOW - timedelta(hours=2),
        finished=NOW - timedelta(hours=2) + timedelta(minutes=3),
    )
    bad_pod = ko.pod(
        bad, started=NOW - timedelta(hours=1), finished=NOW - timedelta(minutes=55), exit_code=1
    )
    kube.add(ok, bad, ok_pod, bad_pod)
    kube.set_log(
        "shop", bad_pod["metadata"]["name"], "pg_dumpall: error: connection failed\nupload failed\n"
    )
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    cat.refresh()
    jobs = cat.jobs(cat.find("acid-orders"))
    assert [j.status for j in jobs] == ["failed", "succeeded"]
    assert jobs[0].reason == "BackoffLimitExceeded"
    assert jobs[0].pods[0].exit_code == 1
    lines = list(cat.read_log("test", "shop", bad_pod["metadata"]["name"]))
    assert lines == ["pg_dumpall: error: connection failed", "upload failed"]


def test_a_pod_log_is_followed_live(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], kube: Any
) -> None:
    kube.stream_log(
        "shop",
        "logical-backup-acid-orders-1-abcde",
        ["start\n", "dumping\n", "upl", "oaded\n"],
        delay=0.05,
    )
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    lines = list(
        cat.kube_sources[0].read_log("shop", "logical-backup-acid-orders-1-abcde", follow=True)
    )
    assert lines == ["start", "dumping", "uploaded"]


def test_closing_a_followed_log_ends_a_read_blocked_on_a_quiet_pod(
    tmp_path: Path, kubeconfig: Path, world: dict[str, Any], kube: Any
) -> None:
    """The pod says nothing for a minute: close() from another thread ends the read now."""
    import threading

    kube.stream_log("shop", "logical-backup-acid-orders-1-abcde", ["late line\n"], delay=60)
    cat = make_catalog(tmp_path, kubeconfig=kubeconfig)
    stream = cat.kube_sources[0].read_log("shop", "logical-backup-acid-orders-1-abcde", follow=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    reader.join(0.5)
    assert reader.is_alive()  # blocked on the quiet pod
    stream.close()
    reader.join(10)  # far below the pod's minute of silence
    assert not reader.is_alive() and lines == []
    unread = cat.kube_sources[0].read_log("shop", "logical-backup-acid-orders-1-abcde", follow=True)
    unread.close()  # never iterated: its connection is given back, and it reads as empty
    assert list(unread) == []


def test_several_contexts_each_with_its_operators_bucket(
    tmp_path: Path, bucket: str, s3: Any, s3_endpoint: str
) -> None:
    from tests.fakekube import FakeKube

    other_bucket = bucket + "-eu"
    s3.create_bucket(Bucket=other_bucket)
    servers = {"us": FakeKube().start(), "eu": FakeKube().start()}
    try:
        for ctx, bkt, uid in (("us", bucket, UID_ORDERS), ("eu", other_bucket, UID_BILLING)):
            servers[ctx].add(
                ko.configmap(
                    "postgres-operator",
                    "default",
                    {
                        "logical_backup_s3_bucket": bkt,
                        "logical_backup_s3_endpoint": s3_endpoint,
                        "logical_backup_s3_bucket_prefix": "spilo",
                    },
                )
            )
            # The same cluster name in both Kubernetes clusters, each with its own bucket.
            add_cluster(servers[ctx], "acid-main", "db", uid)
            seed(bkt, hourly("acid-main", uid, T0, 3 if ctx == "us" else 5))
        state = refresh_contexts(tmp_path, servers)
    finally:
        for s in servers.values():
            s.stop()
    assert not [p for p in state.problems if p.fatal_for_source], state.problems
    rows = {(s.cluster.context, s.cluster.name): s.backups for s in state.clusters}
    assert rows == {("us", "acid-main"): 3, ("eu", "acid-main"): 5}


def test_two_contexts_sharing_one_bucket_list_it_once_and_invent_no_phantoms(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    from tests.fakekube import FakeKube

    servers = {"a": FakeKube().start(), "b": FakeKube().start()}
    try:
        for ctx, uid in (("a", UID_ORDERS), ("b", UID_BILLING)):
            servers[ctx].add(
                ko.configmap(
                    "postgres-operator",
                    "default",
                    {
                        "logical_backup_s3_bucket": bucket,
                        "logical_backup_s3_endpoint": s3_endpoint,
                    },
                )
            )
            add_cluster(servers[ctx], f"acid-{ctx}", "db", uid)
            seed(bucket, hourly(f"acid-{ctx}", uid, T0, 2))
        state = refresh_contexts(tmp_path, servers)
    finally:
        for s in servers.values():
            s.stop()
    assert len(state.locations) == 1 and state.locations[0].contexts == {"a", "b"}
    rows = sorted((s.cluster.context, s.cluster.name, s.backups) for s in state.clusters)
    assert rows == [("a", "acid-a", 2), ("b", "acid-b", 2)]


def test_sse_skips_objects_deleted_since_the_last_listing(
    tmp_path: Path, bucket: str, s3_endpoint: str, s3: Any
) -> None:
    seed(bucket, hourly("acid-r", UID_ORDERS, T0, 3))
    loc = StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=s3_endpoint)
    cat = make_catalog(tmp_path, storage=(loc,))
    cat.refresh()
    s3.delete_object(Bucket=bucket, Key=k("acid-r", UID_ORDERS, T0))  # retention at work
    backups = cat.with_sse(cat.backups(cat.find("acid-r")))
    assert len(backups) == 2 and {b.sse for b in backups} == {"AES256"}
