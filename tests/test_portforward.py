"""A staging primary reached through a port-forward made with the Kubernetes API.

Real parts: the official client's port-forward over a WebSocket to the fake API server, which
forwards the pod's port 5432 to a real PostgreSQL standing in for the staging primary.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import websocket

from sandbox import localpg
from services.config import KubernetesConfig, StagingConfig
from services.errors import KubeError
from services.portforward import PortForward
from services.staging import StagingClusters
from tests.flakyproxy import FlakyProxy
from tests.standin_operator import StandinOperator

NS = "pgdeck-staging"
RUN = "20261201t043000-a1b2c3"
CONTEXT = "test"


@pytest.fixture
def kube_cfg(kubeconfig: Path) -> KubernetesConfig:
    return KubernetesConfig(kubeconfig=kubeconfig)


@pytest.fixture
def staging(kube_cfg: KubernetesConfig) -> StagingClusters:
    return StagingClusters(
        kube_cfg,
        StagingConfig(namespace=NS, team="pgdeck", ready_timeout_seconds=20),
        poll_seconds=0.05,
    )


def primary_pod(kube: Any, staging: StagingClusters, primary: tuple[str, int]) -> str:
    """A ready staging cluster whose master pod stands for ``primary``; its pod's name."""
    with StandinOperator(kube, primary=primary):
        cluster = staging.create(source="acid-main", version="16", dump_size=2**20, run_id=RUN)
        staging.wait_ready(cluster)
    pod = staging.master_pod(cluster.name)
    assert pod is not None
    return pod


@pytest.fixture
def pod(kube: Any, staging: StagingClusters, source_pg: Any) -> str:
    return primary_pod(kube, staging, ("127.0.0.1", source_pg.port))


def forward(kube_cfg: KubernetesConfig, pod: str, **kwargs: Any) -> PortForward:
    return PortForward(kube_cfg, CONTEXT, NS, pod, open_timeout=10, **kwargs)


def connect(fwd: PortForward, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=fwd.host, port=fwd.port, user="postgres", dbname=dbname, connect_timeout=10
    )


def our_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(("pgdeck port-forward", "Kubernetes port forward proxy"))
    ]


def wait_for(predicate: Callable[[], bool], seconds: float = 10) -> bool:
    """True once ``predicate`` holds, polled until ``seconds`` have passed (a bound only)."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        threading.Event().wait(0.02)
    return predicate()


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    yield
    assert wait_for(lambda: not our_threads()), our_threads()


@pytest.fixture
def stalling_kube(kube: Any, tmp_path: Path) -> Iterator[tuple[FlakyProxy, KubernetesConfig]]:
    """The fake API behind a proxy that can leave a request unanswered; a config for it."""
    from urllib.parse import urlsplit

    from tests.fakekube import write_kubeconfig

    url = urlsplit(kube.url)
    assert url.hostname and url.port
    proxy = FlakyProxy(url.hostname, url.port).start()
    behind = SimpleNamespace(url=proxy.url, token=kube.token)
    config = write_kubeconfig(tmp_path / "kubeconfig-proxy", {CONTEXT: behind})  # type: ignore[dict-item]
    yield proxy, KubernetesConfig(kubeconfig=config)
    proxy.stop()  # ends the unanswered requests, so their threads end too


def test_the_master_pod_is_found_by_its_labels(kube: Any, staging: StagingClusters) -> None:
    pod = primary_pod(kube, staging, ("127.0.0.1", 1))
    assert pod is not None and pod.startswith("pgdeck-restore-test-acid-main-")
    assert pod.endswith("-a1b2c3-0")
    assert staging.master_pod("pgdeck-restore-test-other-a1b2c3") is None


def test_the_primary_answers_on_several_connections_at_once(
    kube: Any, kube_cfg: KubernetesConfig, pod: str
) -> None:
    answers: dict[str, tuple[str, int]] = {}
    failures: list[BaseException] = []

    def one(dbname: str) -> None:
        try:
            with connect(fwd, dbname) as conn:
                row = conn.execute("SELECT current_database(), pg_backend_pid()").fetchone()
                assert row is not None
                answers[dbname] = (row[0], row[1])
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    with forward(kube_cfg, pod) as fwd:
        assert fwd.address == f"127.0.0.1:{fwd.port}"
        threads = [threading.Thread(target=one, args=(d,)) for d in ("postgres", "shop") * 3]
        threads += [threading.Thread(target=one, args=("Ünïcode db",))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # more than a frame's worth each way, in one statement
        with connect(fwd, "shop") as conn:
            big = "ü" * 700_000
            row = conn.execute("SELECT length(%s::text), repeat('x', 3000000)", (big,)).fetchone()
            assert row is not None and row[0] == 700_000 and row[1] == "x" * 3_000_000
            assert conn.execute("SELECT count(*) FROM customers").fetchone() == (50,)
        assert fwd.error is None

    assert failures == []
    assert {db for db, _ in answers.values()} == {"postgres", "shop", "Ünïcode db"}
    streams = [p for m, p in kube.requests if m == "GET" and "/portforward" in p]
    assert streams[0] == f"/api/v1/namespaces/{NS}/pods/{pod}/portforward?ports=5432"
    assert len(streams) == 1 + 7 + 1  # the check on entering, then one per connection


def test_a_forbidden_port_forward_is_one_clear_line(
    kube: Any, kube_cfg: KubernetesConfig, pod: str
) -> None:
    kube.forbid(r"/pods/[^/]+/portforward$")
    with pytest.raises(KubeError) as exc:
        forward(kube_cfg, pod).start()
    message = str(exc.value)
    assert "\n" not in message
    assert f"cannot port-forward to pod {NS}/{pod} port 5432: forbidden (403)" in message
    assert 'cannot get resource "pods/portforward"' in message
    assert "grant get and create on pods/portforward" in message
    assert kube.token not in message


def test_a_missing_pod_is_one_clear_line(kube_cfg: KubernetesConfig, kube: Any) -> None:
    with pytest.raises(KubeError) as exc:
        forward(kube_cfg, "acid-gone-0").start()
    message = str(exc.value)
    assert "\n" not in message
    assert 'not found (404): pods "acid-gone-0" not found' in message
    assert "is the staging cluster still there?" in message


def test_an_unreachable_api_server_is_one_clear_line(tmp_path: Path) -> None:
    from tests.fakekube import FakeKube, write_kubeconfig

    gone = FakeKube().start()
    config = write_kubeconfig(tmp_path / "kubeconfig", {CONTEXT: gone})
    gone.stop()
    with pytest.raises(KubeError, match="API server unreachable"):
        forward(KubernetesConfig(kubeconfig=config), "acid-main-0").start()


def test_a_pod_gone_later_ends_new_connections_at_once_with_one_line(
    kube: Any, kube_cfg: KubernetesConfig, pod: str
) -> None:
    seen: list[KubeError] = []
    with forward(kube_cfg, pod, on_error=seen.append) as fwd:
        kube.remove("Pod", NS, pod)
        with pytest.raises(psycopg.OperationalError):
            connect(fwd)
    assert fwd.error is not None and seen[0] is fwd.error  # libpq may try twice
    assert all("not found (404)" in str(e) and "\n" not in str(e) for e in seen)


def test_the_pods_error_channel_ends_the_connection_and_is_kept(
    kube: Any, kube_cfg: KubernetesConfig, staging: StagingClusters
) -> None:
    pod = primary_pod(kube, staging, ("127.0.0.1", localpg.free_port()))  # nothing listens
    with forward(kube_cfg, pod) as fwd, pytest.raises(psycopg.OperationalError):
        connect(fwd)
    assert fwd.error is not None
    message = str(fwd.error)
    assert f"the port-forward to pod {NS}/{pod} port 5432 ended: error forwarding port 5432" in (
        message
    )
    assert "connection refused" in message and "\n" not in message


def test_an_api_server_that_never_answers_the_check_fails_it_in_time(
    pod: str, stalling_kube: tuple[FlakyProxy, KubernetesConfig]
) -> None:
    proxy, behind = stalling_kube
    proxy.stall_after(0, match=f"GET /api/v1/namespaces/{NS}/pods/{pod}/portforward".encode())
    fwd = PortForward(behind, CONTEXT, NS, pod, open_timeout=0.5)
    with pytest.raises(KubeError) as exc:
        fwd.start()
    assert "the API server did not answer within 0.5 s" in str(exc.value)
    assert proxy.stalls == 1
    fwd.close()


def test_close_from_another_thread_cancels_a_check_that_waits(
    pod: str, stalling_kube: tuple[FlakyProxy, KubernetesConfig]
) -> None:
    proxy, behind = stalling_kube
    proxy.stall_after(0, match=b"GET /api/v1/namespaces/")
    fwd = PortForward(behind, CONTEXT, NS, pod, open_timeout=60, join_timeout=0.5)
    threading.Thread(target=lambda: wait_for(lambda: proxy.stalls > 0) and fwd.close()).start()
    with pytest.raises(KubeError, match="was cancelled before it started"):
        fwd.start()


def test_a_stream_the_api_server_never_answers_ends_its_connection(
    pod: str, stalling_kube: tuple[FlakyProxy, KubernetesConfig]
) -> None:
    proxy, behind = stalling_kube
    # join_timeout: the unanswered stream's thread waits on the proxy until the test's end
    with PortForward(behind, CONTEXT, NS, pod, open_timeout=0.5, join_timeout=0.5) as fwd:
        proxy.stall_after(0, match=b"GET /api/v1/namespaces/")
        with pytest.raises(psycopg.OperationalError):
            connect(fwd)
        assert proxy.stalls == 1
        with connect(fwd) as conn:  # the next stream is answered
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert fwd.error is not None
    assert "the API server did not answer within 0.5 s" in str(fwd.error)


def test_closing_the_forward_ends_live_connections_and_its_threads(
    kube_cfg: KubernetesConfig, pod: str
) -> None:
    fwd = forward(kube_cfg, pod).start()
    idle = connect(fwd)
    assert idle.execute("SELECT 1").fetchone() == (1,)
    ended: list[BaseException] = []

    def busy() -> None:
        try:
            with connect(fwd) as conn:
                conn.execute("SELECT pg_sleep(5)")
        except psycopg.OperationalError as exc:
            ended.append(exc)

    sleeper = threading.Thread(target=busy)
    sleeper.start()
    wait_for(lambda: len(our_threads()) >= 5)  # the listener, two pumps, two client proxies
    fwd.close()
    sleeper.join(10)
    assert not sleeper.is_alive() and len(ended) == 1
    with pytest.raises(psycopg.OperationalError):
        idle.execute("SELECT 1")
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((fwd.host, fwd.port), timeout=2).close()
    fwd.close()  # twice is fine
    assert fwd.error is None


def test_the_fake_api_speaks_the_kubelets_port_forward_protocol(
    kube: Any, pod: str, source_pg: Any
) -> None:
    ws = websocket.create_connection(
        kube.url.replace("http://", "ws://") + f"/api/v1/namespaces/{NS}/pods/{pod}/portforward"
        "?ports=5432",
        header=[
            f"Authorization: Bearer {kube.token}",
            "Sec-WebSocket-Protocol: v5.channel.k8s.io,v4.channel.k8s.io",
        ],
        timeout=10,
    )
    try:
        assert ws.getsubprotocol() == "v4.channel.k8s.io" or (
            ws.getheaders().get("sec-websocket-protocol") == "v4.channel.k8s.io"
        )
        first = [ws.recv_data_frame()[1].data for _ in range(2)]
        assert first == [b"\x00\x38\x15", b"\x01\x38\x15"]  # 5432, little-endian, per channel
        # an SSLRequest on the data channel: PostgreSQL answers N (no TLS here)
        ws.send_binary(b"\x00" + (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        opcode, answer = ws.recv_data_frame()
        assert (opcode, answer.data) == (websocket.ABNF.OPCODE_BINARY, b"\x00N")
    finally:
        ws.close()


def test_the_fake_api_refuses_a_port_forward_it_cannot_serve(kube: Any, pod: str) -> None:
    import json
    import urllib.error
    import urllib.request

    def status(query: str, **headers: str) -> tuple[int, str]:
        req = urllib.request.Request(
            f"{kube.url}/api/v1/namespaces/{NS}/pods/{pod}/portforward{query}",
            headers={"Authorization": f"Bearer {kube.token}", **headers},
        )
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        return exc.value.code, json.loads(exc.value.read())["message"]

    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "a2V5"}
    assert status("?ports=5432") == (400, "Upgrade request required")
    assert status("", **upgrade) == (400, 'query parameter "ports" is required')
    assert status("?ports=x", **upgrade) == (400, 'unable to parse "x" as a port')
    code, message = status(
        "?ports=5432", **upgrade, **{"Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
    )
    assert code == 400 and "requested protocol(s) are not supported" in message
