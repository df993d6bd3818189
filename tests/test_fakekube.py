"""The fake API server and the object builders, driven through the official client."""

# The client's models type every field Optional, and read_namespaced_pod_log is typed
# as returning str even with _preload_content=False (it returns a urllib3 response).
# mypy: disable-error-code="union-attr, index, arg-type, attr-defined, misc"

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes
import pytest
import urllib3
import yaml
from kubernetes.client import ApiException

from sandbox import kube as ko
from services.operator import logical_backup_job_name
from tests.fakekube import FakeKube, write_kubeconfig

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PG_UID = "3c1b7a52-9d4e-4f0a-8a11-6e2f5b0c9d01"


def api_client(kubeconfig: Path, context: str) -> kubernetes.client.ApiClient:
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kubeconfig), context=context, client_configuration=cfg
    )
    return kubernetes.client.ApiClient(cfg)


def world() -> dict[str, list[dict]]:
    """One of every builder's output, as a cluster with a backup history."""
    pgs = [
        ko.postgresql(
            "acid-main",
            "db",
            created=T0 - timedelta(days=30),
            uid=PG_UID,
            labels={"env": "prod"},
            schedule="0 * * * *",
            retention="2 weeks",
        ),
        ko.postgresql("acid-billing", "db", created=T0 - timedelta(days=3), status=None),
        ko.postgresql(
            "acid-test", "staging", created=T0, enable_logical_backup=False, status="Creating"
        ),
    ]
    main = pgs[0]
    cj = ko.cronjob(
        main,
        last_schedule=T0,
        last_successful=T0 - timedelta(hours=1),
        env={"LOGICAL_BACKUP_S3_BUCKET": "backups", "AWS_REGION": "eu-central-1"},
        uid="0d7e3c11-5a0b-4f44-9d5e-0b9d7b1a2c33",
    )
    ok = ko.job(cj, started=T0 - timedelta(hours=1), finished=T0 - timedelta(minutes=58))
    bad = ko.job(cj, started=T0 - timedelta(hours=2), succeeded=False)
    running = ko.job(cj, started=T0, succeeded=None)
    cj = ko.cronjob(
        main,
        last_schedule=T0,
        last_successful=T0 - timedelta(hours=1),
        active=[running],
        uid="0d7e3c11-5a0b-4f44-9d5e-0b9d7b1a2c33",
    )
    cj2 = ko.cronjob(
        pgs[1], suspend=True, image="ghcr.io/zalando/postgres-operator/logical-backup:v1.13.0"
    )
    pods = [
        ko.pod(ok, started=T0 - timedelta(hours=1), finished=T0 - timedelta(minutes=58)),
        ko.pod(
            bad,
            started=T0 - timedelta(hours=2),
            finished=T0 - timedelta(hours=2) + timedelta(seconds=40),
            exit_code=1,
        ),
        ko.pod(running, started=T0),
        ko.database_pod(main, 0, role="master"),
        ko.database_pod(main, 1, role="replica"),
    ]
    return {
        "postgresql": pgs,
        "cronjob": [cj, cj2],
        "job": [ok, bad, running],
        "pod": pods,
        "configmap": [
            ko.configmap(
                "postgres-operator",
                "operators",
                {"logical_backup_s3_bucket": "backups", "logical_backup_schedule": "0 * * * *"},
            )
        ],
        "operatorconfiguration": [
            ko.operator_configuration(
                "postgres-operator",
                "operators",
                {"logical_backup_s3_bucket": "backups", "logical_backup_s3_sse": "AES256"},
            )
        ],
        "secret": [
            ko.secret(
                "postgres.acid-main.credentials.postgresql.acid.zalan.do",
                "db",
                {"username": "postgres", "password": "s3cr3t"},
            )
        ],
    }


@pytest.fixture
def kube():
    k = FakeKube().start()
    yield k
    k.stop()


@pytest.fixture
def client(kube, tmp_path):
    for objs in world().values():
        kube.add(*objs)
    path = write_kubeconfig(tmp_path / "kubeconfig", {"prod": kube})
    c = api_client(path, "prod")
    yield c
    c.close()


# --- builders ----------------------------------------------------------------------------


def test_builders_round_trip_through_yaml():
    objs = [o for group in world().values() for o in group]
    objs += [
        ko.namespace("db"),
        ko.kubectl_list(objs[:3]),
        ko.object_list(objs[:2], api_version="v1", kind="PodList", continue_token="x", remaining=3),
        ko.status(404, "NotFound", 'pods "x" not found', details={"name": "x", "kind": "pods"}),
    ]
    for obj in objs:
        assert yaml.safe_load(yaml.safe_dump(obj)) == obj
        assert json.loads(json.dumps(obj)) == obj


def test_builders_are_deterministic_with_uids_and_names():
    a, b = world(), world()
    for kind in ("configmap", "operatorconfiguration", "secret"):
        assert a[kind] == b[kind]
    # the first CronJob has a uid; its status.active names a Job with a random uid
    assert a["cronjob"][0]["spec"] == b["cronjob"][0]["spec"]
    assert a["cronjob"][0]["metadata"] == b["cronjob"][0]["metadata"]
    assert a["cronjob"][1]["metadata"]["uid"] != b["cronjob"][1]["metadata"]["uid"]
    assert a["postgresql"][0] == b["postgresql"][0]
    assert a["pod"][3:] == b["pod"][3:]  # database pods derive everything from the cluster
    # pod names derive from the job name, uids are random unless given
    assert a["pod"][0]["metadata"]["name"] == b["pod"][0]["metadata"]["name"]
    assert a["pod"][0]["metadata"]["uid"] != b["pod"][0]["metadata"]["uid"]


def test_builder_shapes_follow_the_operator():
    w = world()
    cj, (ok, bad, running) = w["cronjob"][0], w["job"]
    assert (
        cj["metadata"]["name"] == logical_backup_job_name("acid-main") == "logical-backup-acid-main"
    )
    assert cj["metadata"]["ownerReferences"][0]["uid"] == PG_UID
    # the CronJob has the cluster's labels; its pod template (so Jobs and pods) the backup one
    assert cj["metadata"]["labels"] == {
        "env": "prod",
        "application": "spilo",
        "cluster-name": "acid-main",
        "team": "acid",
    }
    assert ok["metadata"]["labels"]["application"] == "spilo-logical-backup"
    assert ok["metadata"]["labels"]["job-name"] == ok["metadata"]["name"]
    assert (
        ok["metadata"]["name"]
        == f"logical-backup-acid-main-{int((T0 - timedelta(hours=1)).timestamp()) // 60}"
    )
    assert [c["type"] for c in ok["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert [c["type"] for c in bad["status"]["conditions"]] == ["FailureTarget", "Failed"]
    assert bad["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert running["status"]["active"] == 1 and "completionTime" not in running["status"]
    assert cj["status"]["active"][0]["name"] == running["metadata"]["name"]
    env = {
        e["name"]: e
        for e in cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SCOPE"]["value"] == "acid-main"
    assert env["LOGICAL_BACKUP_S3_BUCKET_SCOPE_SUFFIX"]["value"] == f"/{PG_UID}"
    assert env["LOGICAL_BACKUP_S3_RETENTION_TIME"]["value"] == "2 weeks"
    assert "LOGICAL_BACKUP_S3_BUCKET_PREFIX" not in env  # a v1.10 image has no such setting
    env2 = {
        e["name"]
        for e in w["cronjob"][1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    }
    assert "LOGICAL_BACKUP_S3_BUCKET_PREFIX" in env2
    pods = w["pod"]
    assert [p["status"]["phase"] for p in pods] == [
        "Succeeded",
        "Failed",
        "Running",
        "Running",
        "Running",
    ]
    assert pods[1]["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"
    assert pods[0]["metadata"]["name"].startswith(ok["metadata"]["name"] + "-")
    assert len(pods[0]["metadata"]["name"]) == len(ok["metadata"]["name"]) + 6
    assert pods[3]["metadata"]["labels"]["spilo-role"] == "master"
    assert "status" not in w["postgresql"][1]
    secret = w["secret"][0]
    assert base64.b64decode(secret["data"]["password"]) == b"s3cr3t"


# --- typed deserialization ---------------------------------------------------------------


def test_lists_deserialize_into_typed_models(client):
    core = kubernetes.client.CoreV1Api(client)
    batch = kubernetes.client.BatchV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)

    pods = core.list_pod_for_all_namespaces()
    assert isinstance(pods, kubernetes.client.V1PodList)
    assert len(pods.items) == 5
    by_name = {p.metadata.name: p for p in pods.items}
    failed = next(p for p in pods.items if p.status.phase == "Failed")
    term = failed.status.container_statuses[0].state.terminated
    assert term.exit_code == 1 and term.reason == "Error"
    assert term.finished_at.tzinfo is not None
    assert failed.metadata.owner_references[0].kind == "Job"
    assert by_name["acid-main-0"].metadata.labels["spilo-role"] == "master"
    assert pods.items[0].kind is None  # list items of built-in types carry no TypeMeta

    cjs = batch.list_cron_job_for_all_namespaces()
    assert isinstance(cjs, kubernetes.client.V1CronJobList)
    cj = next(c for c in cjs.items if c.metadata.name == "logical-backup-acid-main")
    assert cj.spec.concurrency_policy == "Forbid"
    assert cj.spec.job_template.spec.template.spec.containers[0].name == "logical-backup"
    assert cj.status.last_schedule_time == T0
    assert cj.status.active[0].kind == "Job"
    assert cj.metadata.owner_references[0].uid == PG_UID

    jobs = batch.list_namespaced_job("db")
    assert isinstance(jobs, kubernetes.client.V1JobList)
    assert {j.metadata.name for j in jobs.items} == {j["metadata"]["name"] for j in world()["job"]}
    failed_job = next(j for j in jobs.items if j.status.failed)
    assert failed_job.status.conditions[-1].type == "Failed"
    assert failed_job.spec.template.spec.restart_policy == "Never"

    one_pod = core.read_namespaced_pod("acid-main-1", "db")
    assert isinstance(one_pod, kubernetes.client.V1Pod) and one_pod.kind == "Pod"

    cm = core.read_namespaced_config_map("postgres-operator", "operators")
    assert cm.data["logical_backup_s3_bucket"] == "backups"
    assert len(core.list_config_map_for_all_namespaces().items) == 1
    sec = core.read_namespaced_secret(
        "postgres.acid-main.credentials.postgresql.acid.zalan.do", "db"
    )
    assert base64.b64decode(sec.data["password"]) == b"s3cr3t"
    ns = core.list_namespace()
    assert {n.metadata.name for n in ns.items} >= {"db", "staging", "operators", "default"}
    assert kubernetes.client.AppsV1Api(client).list_deployment_for_all_namespaces().items == []

    pgs = custom.list_cluster_custom_object("acid.zalan.do", "v1", "postgresqls")
    assert pgs["kind"] == "PostgresqlList"
    assert [p["metadata"]["name"] for p in pgs["items"]] == [
        "acid-billing",
        "acid-main",
        "acid-test",
    ]
    assert pgs["items"][0]["kind"] == "postgresql"  # CRD list items keep apiVersion/kind
    pg = custom.get_namespaced_custom_object(
        "acid.zalan.do", "v1", "db", "postgresqls", "acid-main"
    )
    assert pg["metadata"]["uid"] == PG_UID
    assert (
        len(
            custom.list_namespaced_custom_object("acid.zalan.do", "v1", "db", "postgresqls")[
                "items"
            ]
        )
        == 2
    )
    oc = custom.list_cluster_custom_object("acid.zalan.do", "v1", "operatorconfigurations")
    assert (
        oc["items"][0]["configuration"]["logical_backup"]["logical_backup_s3_bucket"] == "backups"
    )

    version = kubernetes.client.VersionApi(client).get_code()
    assert version.git_version.startswith("v1.")


def test_every_builder_validates_as_its_model():
    """from_dict on each object (not only through lists): every field a real server sends."""
    w = world()
    models = {
        "cronjob": kubernetes.client.V1CronJob,
        "job": kubernetes.client.V1Job,
        "pod": kubernetes.client.V1Pod,
        "configmap": kubernetes.client.V1ConfigMap,
        "secret": kubernetes.client.V1Secret,
    }
    for kind, model in models.items():
        for obj in w[kind]:
            m = model.from_dict(obj)
            assert m.metadata.uid == obj["metadata"]["uid"]
            assert m.to_dict()["metadata"]["name"] == obj["metadata"]["name"]
    kubernetes.client.V1Namespace.from_dict(ko.namespace("db"))
    for pg in w["postgresql"] + w["operatorconfiguration"]:
        kubernetes.client.V1ObjectMeta.from_dict(pg["metadata"])
    kubernetes.client.V1Status.from_dict(ko.status(403, "Forbidden", "no"))


# --- selectors and pagination ------------------------------------------------------------


def test_label_selectors(client):
    core = kubernetes.client.CoreV1Api(client)
    batch = kubernetes.client.BatchV1Api(client)

    def names(sel: str) -> list[str]:
        return [p.metadata.name for p in core.list_pod_for_all_namespaces(label_selector=sel).items]

    assert names("application=spilo,spilo-role=master") == ["acid-main-0"]
    assert names("application==spilo") == ["acid-main-0", "acid-main-1"]
    assert len(names("application=spilo-logical-backup,cluster-name=acid-main")) == 3
    assert names("spilo-role") == ["acid-main-0", "acid-main-1"]
    assert len(names("!spilo-role")) == 3
    assert names("spilo-role in (master, replica)") == ["acid-main-0", "acid-main-1"]
    assert len(names("spilo-role notin (master)")) == 4
    assert len(names("spilo-role!=master")) == 4
    assert names("cluster-name=nope") == []
    cjs = batch.list_cron_job_for_all_namespaces(
        label_selector="cluster-name in (acid-main,acid-billing)"
    )
    assert len(cjs.items) == 2
    # the operator labels CronJobs with the cluster's labels, not spilo-logical-backup
    assert (
        batch.list_cron_job_for_all_namespaces(
            label_selector="application=spilo-logical-backup"
        ).items
        == []
    )
    with pytest.raises(ApiException) as e:
        names("a in (b")
    assert e.value.status == 400


def test_field_selectors(client):
    core = kubernetes.client.CoreV1Api(client)
    batch = kubernetes.client.BatchV1Api(client)
    one = batch.list_job_for_all_namespaces(
        field_selector="metadata.name=" + world()["job"][0]["metadata"]["name"]
    )
    assert len(one.items) == 1
    assert len(batch.list_job_for_all_namespaces(field_selector="metadata.namespace=db").items) == 3
    assert (
        len(batch.list_job_for_all_namespaces(field_selector="metadata.namespace!=db").items) == 0
    )
    assert len(core.list_namespaced_pod("db", field_selector="status.phase=Running").items) == 3
    with pytest.raises(ApiException) as e:
        core.list_namespaced_pod("db", field_selector="spec.foo=bar")
    assert e.value.status == 400
    assert "field label not supported" in json.loads(e.value.body)["message"]


def test_pagination(kube, client):
    pg = world()["postgresql"][0]
    cj = ko.cronjob(pg)
    kube.add(*[ko.job(cj, started=T0 - timedelta(hours=h)) for h in range(3, 10)])  # 10 jobs now
    batch = kubernetes.client.BatchV1Api(client)
    seen: list[str] = []
    page = batch.list_namespaced_job("db", limit=4)
    pages = 1
    assert page.metadata.remaining_item_count == 6
    while True:
        seen += [j.metadata.name for j in page.items]
        if not page.metadata._continue:
            break
        page = batch.list_namespaced_job("db", limit=4, _continue=page.metadata._continue)
        pages += 1
    assert pages == 3
    assert seen == sorted(seen) and len(set(seen)) == 10
    assert page.metadata.remaining_item_count is None
    # with a selector the server gives no remainingItemCount (as a real one), but pages
    sel = batch.list_namespaced_job("db", limit=2, label_selector="cluster-name=acid-main")
    assert sel.metadata._continue and sel.metadata.remaining_item_count is None
    custom = kubernetes.client.CustomObjectsApi(client)
    first = custom.list_cluster_custom_object("acid.zalan.do", "v1", "postgresqls", limit=2)
    assert first["metadata"]["remainingItemCount"] == 1
    rest = custom.list_cluster_custom_object(
        "acid.zalan.do", "v1", "postgresqls", limit=2, _continue=first["metadata"]["continue"]
    )
    assert [p["metadata"]["name"] for p in rest["items"]] == ["acid-test"]
    assert "continue" not in rest["metadata"]
    with pytest.raises(ApiException) as e:
        batch.list_namespaced_job("db", limit=2, _continue="garbage")
    assert e.value.status == 400


# --- errors ------------------------------------------------------------------------------


def test_forbidden_raises_403_with_a_status_body(kube, client):
    kube.forbid(r"^/apis/acid\.zalan\.do/v1/postgresqls$")
    custom = kubernetes.client.CustomObjectsApi(client)
    with pytest.raises(ApiException) as e:
        custom.list_cluster_custom_object("acid.zalan.do", "v1", "postgresqls")
    assert e.value.status == 403
    assert isinstance(e.value, kubernetes.client.exceptions.ForbiddenException)
    body = json.loads(e.value.body)
    assert body["kind"] == "Status" and body["reason"] == "Forbidden"
    assert (
        'cannot list resource "postgresqls" in API group "acid.zalan.do" at the cluster scope'
        in body["message"]
    )
    # namespaced access still works, as RBAC with a RoleBinding would allow
    assert (
        len(
            custom.list_namespaced_custom_object("acid.zalan.do", "v1", "db", "postgresqls")[
                "items"
            ]
        )
        == 2
    )
    kube.allow_all()
    assert (
        len(custom.list_cluster_custom_object("acid.zalan.do", "v1", "postgresqls")["items"]) == 3
    )


def test_wrong_token_raises_401(kube, tmp_path):
    other = FakeKube(token="other")
    other.url = kube.url  # same server, wrong token in the kubeconfig
    path = write_kubeconfig(tmp_path / "kc", {"bad": other})
    with api_client(path, "bad") as c, pytest.raises(ApiException) as e:
        kubernetes.client.CoreV1Api(c).list_namespace()
    assert e.value.status == 401
    assert json.loads(e.value.body)["reason"] == "Unauthorized"


def test_missing_object_and_unknown_path_are_404(client):
    core = kubernetes.client.CoreV1Api(client)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("nope", "db")
    assert e.value.status == 404
    body = json.loads(e.value.body)
    assert body["details"] == {"name": "nope", "kind": "pods"}
    assert body["message"] == 'pods "nope" not found'
    custom = kubernetes.client.CustomObjectsApi(client)
    with pytest.raises(ApiException) as e:
        custom.get_namespaced_custom_object("acid.zalan.do", "v1", "db", "postgresqls", "nope")
    assert json.loads(e.value.body)["details"] == {
        "name": "nope",
        "group": "acid.zalan.do",
        "kind": "postgresqls",
    }
    with pytest.raises(ApiException) as e:
        custom.list_cluster_custom_object("example.com", "v1", "widgets")
    assert e.value.status == 404


def test_multiple_contexts_and_requests_are_recorded(tmp_path):
    with FakeKube() as a, FakeKube(token="t2") as b:
        a.add(ko.postgresql("one", "db", created=T0))
        b.add(ko.postgresql("two", "db", created=T0), ko.postgresql("three", "db", created=T0))
        path = write_kubeconfig(tmp_path / "kc", {"a": a, "b": b}, current="b", namespace="db")
        contexts, active = kubernetes.config.list_kube_config_contexts(str(path))
        assert active["name"] == "b" and active["context"]["namespace"] == "db"
        assert [c["name"] for c in contexts] == ["a", "b"]
        for ctx, n in (("a", 1), ("b", 2)):
            with api_client(path, ctx) as c:
                got = kubernetes.client.CustomObjectsApi(c).list_cluster_custom_object(
                    "acid.zalan.do", "v1", "postgresqls", label_selector="x!=y"
                )
                assert len(got["items"]) == n
        assert ("GET", "/apis/acid.zalan.do/v1/postgresqls?labelSelector=x%21%3Dy") in b.requests


# --- logs --------------------------------------------------------------------------------


def test_pod_log_whole(kube, client):
    pod = world()["pod"][0]
    name = pod["metadata"]["name"]
    text = "".join(f"line {i}\n" for i in range(1000))
    kube.set_log("db", name, text)
    core = kubernetes.client.CoreV1Api(client)
    resp = core.read_namespaced_pod_log(
        name, "db", container="logical-backup", _preload_content=False
    )
    try:
        assert isinstance(resp, urllib3.HTTPResponse)
        assert resp.headers["Content-Type"] == "text/plain"
        assert b"".join(resp.stream(4096)).decode() == text
    finally:
        resp.release_conn()
    resp = core.read_namespaced_pod_log(name, "db", tail_lines=2, _preload_content=False)
    assert resp.data.decode() == "line 998\nline 999\n"
    resp.release_conn()
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log("nope", "db", _preload_content=False)
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(name, "db", container="other", _preload_content=False)
    assert e.value.status == 400


def test_pod_log_followed_in_chunks(kube, client):
    pod = world()["pod"][2]
    name = pod["metadata"]["name"]
    chunks = ["starting dump\n", "uploading\n", "done\n"]
    kube.stream_log("db", name, chunks, delay=0.1)
    core = kubernetes.client.CoreV1Api(client)
    t0 = time.monotonic()
    resp = core.read_namespaced_pod_log(name, "db", follow=True, _preload_content=False)
    got: list[tuple[float, bytes]] = []
    try:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        for data in resp.stream(1024):
            got.append((time.monotonic() - t0, data))
    finally:
        resp.release_conn()
    assert b"".join(d for _, d in got).decode() == "".join(chunks)
    assert len(got) == 3  # one read per chunk: they arrive as they are written
    # the server waits 0.1 s between chunks: the first was read before the last was written
    assert got[-1][0] - got[0][0] >= 0.19
    # a whole (non-follow) read of a streamed log gives all of it at once
    whole = core.read_namespaced_pod_log(name, "db", _preload_content=False)
    assert whole.data.decode() == "".join(chunks)
    whole.release_conn()


# --- speed and connection reuse ----------------------------------------------------------


def test_lists_reuse_one_keep_alive_connection(kube, client):
    batch = kubernetes.client.BatchV1Api(client)
    batch.list_job_for_all_namespaces()
    for _ in range(50):
        batch.list_job_for_all_namespaces(label_selector="application=spilo-logical-backup")
    pool = next(iter(client.rest_client.pool_manager.pools._container.values()))
    assert pool.num_connections == 1  # every call reused one keep-alive connection


# --- raw HTTP: headers, discovery, content management ------------------------------------


def test_raw_http_answers(kube):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(kube.url.rsplit(":", 1)[1]))
    auth = {"Authorization": "Bearer test-token"}

    def get(path: str, headers: dict | None = None) -> tuple[int, dict, dict]:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        assert r.getheader("Content-Type") == "application/json"
        assert int(r.getheader("Content-Length")) == len(body)
        return r.status, dict(r.getheaders()), json.loads(body)

    status, _, body = get("/api/v1/pods")  # no token at all
    assert status == 401 and body["kind"] == "Status" and body["code"] == 401
    status, _, body = get("/api", auth)
    assert status == 200 and body["versions"] == ["v1"]
    status, _, body = get("/apis", auth)
    assert "acid.zalan.do" in {g["name"] for g in body["groups"]}
    status, _, body = get("/apis/acid.zalan.do/v1", auth)
    assert {r["name"] for r in body["resources"]} >= {"postgresqls", "operatorconfigurations"}
    status, _, body = get("/version", auth)
    assert body["major"] == "1"
    status, _, body = get("/nope", auth)
    assert status == 404 and body["reason"] == "NotFound"
    # all on one keep-alive connection
    assert conn.sock is not None
    conn.close()


def test_add_remove_clear(kube, client):
    w = world()
    kube.add(ko.kubectl_list(w["postgresql"]))  # a kubectl List adds its items
    custom = kubernetes.client.CustomObjectsApi(client)
    batch = kubernetes.client.BatchV1Api(client)

    def pg_names() -> list[str]:
        items = custom.list_cluster_custom_object("acid.zalan.do", "v1", "postgresqls")["items"]
        return [p["metadata"]["name"] for p in items]

    assert pg_names() == ["acid-billing", "acid-main", "acid-test"]
    changed = ko.postgresql("acid-main", "db", created=T0, uid="1" * 32, status="SyncFailed")
    kube.add(changed)  # same name replaces
    got = custom.get_namespaced_custom_object(
        "acid.zalan.do", "v1", "db", "postgresqls", "acid-main"
    )
    assert got["status"]["PostgresClusterStatus"] == "SyncFailed"
    kube.remove("postgresql", "db", "acid-main")
    kube.remove("cronjobs", "db", "logical-backup-acid-main")
    assert pg_names() == ["acid-billing", "acid-test"]
    assert [c.metadata.name for c in batch.list_namespaced_cron_job("db").items] == [
        "logical-backup-acid-billing"
    ]
    kube.clear()
    assert pg_names() == [] and kube.requests[-1][0] == "GET"


def test_create_and_delete_answer_as_the_real_server(kube, client):
    custom = kubernetes.client.CustomObjectsApi(client)
    body = {
        "apiVersion": "acid.zalan.do/v1",
        "kind": "postgresql",
        "metadata": {"name": "new-one", "labels": {"a": "b"}},
        "spec": {"teamId": "acid", "numberOfInstances": 1},
    }
    created = custom.create_namespaced_custom_object(
        "acid.zalan.do", "v1", "db", "postgresqls", body
    )
    md = created["metadata"]
    assert md["namespace"] == "db" and md["uid"] and md["resourceVersion"]
    assert md["creationTimestamp"].endswith("Z") and md["generation"] == 1
    assert kube.get("postgresql", "db", "new-one")["spec"] == body["spec"]
    assert ("POST", "/apis/acid.zalan.do/v1/namespaces/db/postgresqls") in kube.requests

    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object("acid.zalan.do", "v1", "db", "postgresqls", body)
    assert e.value.status == 409
    status = json.loads(e.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "AlreadyExists", 409)
    assert status["message"] == 'postgresqls.acid.zalan.do "new-one" already exists'

    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(
            "acid.zalan.do",
            "v1",
            "other",
            "postgresqls",
            {**body, "metadata": {"name": "x", "namespace": "db"}},
        )
    assert e.value.status == 400

    gone = custom.delete_namespaced_custom_object(
        "acid.zalan.do", "v1", "db", "postgresqls", "new-one"
    )
    assert (gone["status"], gone["details"]["uid"]) == ("Success", md["uid"])
    assert kube.get("postgresql", "db", "new-one") is None
    with pytest.raises(ApiException) as e:
        custom.delete_namespaced_custom_object(
            "acid.zalan.do", "v1", "db", "postgresqls", "new-one"
        )
    assert e.value.status == 404
    assert json.loads(e.value.body)["reason"] == "NotFound"

    core = kubernetes.client.CoreV1Api(client)
    pod = core.delete_namespaced_pod("acid-main-0", "db")
    assert pod.metadata.deletion_timestamp is not None
