"""A pod's port on this machine, through the Kubernetes API: a port-forward, as kubectl makes.

From a workstation a staging cluster's primary is not reachable at its service address, but
the API server is, and it forwards a pod's port over a WebSocket (``pods/portforward``).

    with PortForward(kube_cfg, context, namespace, pod) as fwd:
        psycopg.connect(host=fwd.host, port=fwd.port, ...)

``PortForward`` listens on 127.0.0.1 (an ephemeral port) and gives every accepted connection
its own forward stream, made with the official client's ``kubernetes.stream.portforward``, so
the several connections of one restore (identify, one per database, validation) each have
one. Entering opens one stream and closes it again, so a missing pod, a 403 or an API server
that refuses the WebSocket is a ``KubeError`` there, in the caller's thread. A later stream
that fails (the pod went, the pod's side wrote on the error channel) closes its local
connection at once, so the client using it sees the connection end instead of waiting, and
leaves the one line in ``fwd.error`` (and hands it to ``on_error``). Leaving, or ``close()``
from any thread, ends the listener, every stream and every thread (each joined with a bound).
Nothing here logs; the token stays in the client's configuration.

Two things about the client shape this: its ``portforward`` swaps ``call_api`` on the
``ApiClient`` it is given while it connects, so concurrent opens on one client would trip over
each other (each stream gets its own ``ApiClient`` on the one loaded configuration); and its
WebSocket handshake has no timeout of its own, so an open that does not finish within
``open_timeout`` is abandoned: on entering that is a ``KubeError`` (``close()`` from another
thread ends the wait too), later the local connection is closed and the error recorded.
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from services.config import KubernetesConfig
from services.errors import KubeError
from services.kube import LiveSource
from services.text import safe_text

_BUFFER = 256 * 1024
_TICK = 0.25  # how often a blocked loop looks whether it should stop
_REASON_LIMIT = 300


class PortForward:
    """``remote_port`` of ``namespace/pod`` at ``host:port`` on this machine, while entered."""

    host = "127.0.0.1"

    def __init__(
        self,
        kube_cfg: KubernetesConfig,
        context: str,
        namespace: str,
        pod: str,
        remote_port: int = 5432,
        *,
        open_timeout: float = 20.0,
        join_timeout: float = 5.0,
        on_error: Callable[[KubeError], None] | None = None,
    ) -> None:
        self.kube_cfg = kube_cfg
        self.context = context
        self.namespace = namespace
        self.pod = pod
        self.remote_port = remote_port
        self.open_timeout = open_timeout
        self.join_timeout = join_timeout
        self.on_error = on_error
        self.port = 0
        self._configuration: Any = None
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()  # re-entrant: close() may run in a signal handler
        self._threads: list[threading.Thread] = []
        self._streams: dict[socket.socket, Any] = {}  # local connection -> its stream or None
        self._errors: list[KubeError] = []

    # --- the caller's side ----------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def where(self) -> str:
        return f"pod {self.namespace}/{self.pod} port {self.remote_port}"

    @property
    def error(self) -> KubeError | None:
        """The first failure of a stream since entering, or None."""
        with self._lock:
            return self._errors[0] if self._errors else None

    def __enter__(self) -> PortForward:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> PortForward:
        """Check that the pod's port can be forwarded, then listen; a ``KubeError`` if not."""
        try:
            self._configuration = LiveSource(self.kube_cfg, self.context).api().configuration
            _end_stream(self._check(), self.remote_port)
            listener = socket.create_server((self.host, 0))
            listener.settimeout(_TICK)
            self._listener = listener
            self.port = listener.getsockname()[1]
            self._spawn(self._accept, "pgdeck port-forward listener")
        except BaseException:  # Ctrl-C included: no `with` body runs, so no __exit__ either
            self.close()
            raise
        return self

    def close(self) -> None:
        """End the listener, every stream and every thread; safe to call twice, from any thread.

        Sockets other threads use are shut down here, not closed: each thread closes its own,
        so no descriptor is reused while a thread still waits on it."""
        self._stop.set()
        with self._lock:
            listener = self._listener
            live = list(self._streams.items())
            threads = list(self._threads)
        if listener is not None:
            _shut(listener)
        for conn, stream in live:
            _shut(conn)
            if stream is not None:
                _cut(stream, self.remote_port)
        deadline = time.monotonic() + self.join_timeout
        for thread in threads:
            if thread is not threading.current_thread() and thread.ident:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:  # the pumps' last streams' proxies, kept while close() joined
            late = [t for t in self._threads if t not in threads and t.ident]
        for thread in late:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- streams --------------------------------------------------------------------
    def _open(self) -> Any:
        """A new forward stream of the pod's port (the client's ``PortForward``)."""
        from kubernetes import client
        from kubernetes.stream import portforward

        api = client.ApiClient(self._configuration)
        try:
            stream = portforward(
                client.CoreV1Api(api).connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.remote_port),
            )
        except Exception as exc:
            raise self._open_error(exc) from None
        finally:
            api.close()
        self._keep(_proxy_thread(stream))
        return stream

    def _check(self) -> Any:
        """``_open`` within ``open_timeout``, and cancelable by ``close()``: the handshake
        cannot be interrupted, so it runs in a thread that is left behind when it hangs
        (and closes its stream, should one ever come)."""
        got: dict[str, Any] = {}
        lock = threading.Lock()
        done = threading.Event()

        def attempt() -> None:
            try:
                result: Any = self._open()
            except KubeError as exc:
                result = exc
            with lock:
                got["result"] = result
                abandoned = got.get("abandoned", False)
            done.set()
            if abandoned and not isinstance(result, KubeError):
                _end_stream(result, self.remote_port)

        threading.Thread(target=attempt, name="pgdeck port-forward check", daemon=True).start()
        deadline = time.monotonic() + self.open_timeout
        try:
            while not done.wait(_TICK):
                if self._stop.is_set() or time.monotonic() >= deadline:
                    break
        finally:
            with lock:
                if "result" not in got:
                    got["abandoned"] = True
        if got.get("abandoned"):
            if self._stop.is_set():
                raise KubeError(
                    f"kubernetes context {self.context!r}: the port-forward to {self.where} "
                    "was cancelled before it started"
                )
            raise self._late()
        if isinstance(got["result"], KubeError):
            raise got["result"]
        return got["result"]

    def _late(self) -> KubeError:
        return KubeError(
            f"kubernetes context {self.context!r}: cannot port-forward to {self.where}: "
            f"the API server did not answer within {self.open_timeout:g} s",
            "check the network or try again",
        )

    def _open_error(self, exc: BaseException) -> KubeError:
        """One line for a stream that could not be opened; never the request's headers."""
        where = f"kubernetes context {self.context!r}: cannot port-forward to {self.where}"
        cause = exc.__context__ if getattr(exc, "status", None) == 0 else exc
        status = getattr(cause, "status_code", None)
        if status is None:
            m = re.match(r"Handshake status (\d{3})", str(getattr(exc, "reason", "") or ""))
            status = int(m[1]) if m else None
        if status is not None:
            message = _status_message(getattr(cause, "resp_body", None))
            if status == 401:
                return KubeError(
                    f"{where}: unauthorized (401)", "log in again or refresh the kubeconfig's token"
                )
            if status == 403:
                return KubeError(
                    f"{where}: forbidden (403): {message}",
                    f"grant get and create on pods/portforward in {self.namespace}, or reach "
                    "the primary at staging.address instead",
                )
            if status == 404:
                return KubeError(
                    f"{where}: not found (404): {message or 'no such pod'}",
                    "the pod is gone; is the staging cluster still there?",
                )
            return KubeError(f"{where}: HTTP {status}: {message or 'the WebSocket was refused'}")
        text = str(getattr(exc, "reason", None) or exc)
        if "refused" in text.lower() or "Name or service not known" in text:
            return KubeError(
                f"{where}: API server unreachable",
                "check the network, VPN or kubeconfig server URL",
            )
        if "timed out" in text.lower():
            return KubeError(f"{where}: API server timed out", "check the network or try again")
        first = safe_text(text.splitlines()[0] if text else type(exc).__name__)
        return KubeError(f"{where}: {first[:_REASON_LIMIT]}")

    def _fail(self, error: KubeError) -> None:
        with self._lock:
            self._errors.append(error)
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(error)

    # --- threads --------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        self._keep(thread)
        thread.start()

    def _keep(self, thread: threading.Thread | None) -> None:
        """Remember a thread for ``close()`` to join (the finished ones are forgotten)."""
        if thread is None:
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident]
            self._threads.append(thread)

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        try:
            self._accept_from(listener)
        finally:
            with self._lock:
                self._listener = None
            listener.close()

    def _accept_from(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # shut down by close()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._streams[conn] = None
            self._spawn(self._serve, f"pgdeck port-forward {conn.fileno()}", conn)

    def _serve(self, conn: socket.socket) -> None:
        """One local connection: open its stream, pump both ways, record how it ended."""
        stream = None
        late = threading.Timer(self.open_timeout, self._abandon, (conn,))
        late.daemon = True
        late.start()
        try:
            try:
                stream = self._open()
            except KubeError as exc:
                if not self._stop.is_set():
                    self._fail(exc)
                return
            finally:
                late.cancel()
            with self._lock:
                if self._stop.is_set() or conn not in self._streams:
                    return  # closed or abandoned while it was opening
                self._streams[conn] = stream
            self._pump(conn, stream.socket(self.remote_port), stream)
            reason = stream.error(self.remote_port)
            if reason and not self._stop.is_set():
                self._fail(
                    KubeError(
                        f"kubernetes context {self.context!r}: the port-forward to {self.where} "
                        f"ended: {safe_text(str(reason).strip())[:_REASON_LIMIT]}",
                        "is PostgreSQL up in the pod? see the pod's log",
                    )
                )
        finally:
            with self._lock:
                self._streams.pop(conn, None)
            _shut(conn)
            conn.close()
            if stream is not None:
                if self._stop.is_set():
                    _cut(stream, self.remote_port)
                _end_stream(stream, self.remote_port)

    def _abandon(self, conn: socket.socket) -> None:
        with self._lock:
            if self._streams.get(conn, "") is not None:
                return  # opened in time, or finished
            self._streams.pop(conn, None)
        _shut(conn)
        self._fail(self._late())

    def _pump(self, conn: socket.socket, remote: Any, stream: Any) -> None:
        """Bytes both ways until either side ends or the forward closes."""
        ends = {conn: remote, remote: conn}
        idle_unconnected = 0
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            sel.register(remote, selectors.EVENT_READ)
            while not self._stop.is_set():
                ready = sel.select(_TICK)
                if not ready:
                    # The client's proxy thread closes ``remote`` when its WebSocket ends;
                    # should that thread die instead, do not wait for it forever.
                    idle_unconnected = 0 if stream.connected else idle_unconnected + 1
                    if idle_unconnected * _TICK >= 2.0:
                        return
                    continue
                for key, _ in ready:
                    source = key.fileobj
                    try:
                        data = source.recv(_BUFFER)  # type: ignore[union-attr]
                        if not data:
                            return
                        ends[source].sendall(data)  # type: ignore[index]
                    except OSError:
                        return


def _status_message(body: Any) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, made safe; "" when there is none."""
    try:
        message = json.loads(body or b"{}").get("message", "")
    except (ValueError, AttributeError, TypeError):
        return ""
    return safe_text(str(message))[:_REASON_LIMIT] if message else ""


def _shut(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _end_stream(stream: Any, port: int) -> None:
    """Close the application's end of a stream; the client's proxy thread then closes the
    WebSocket with the closing handshake."""
    with contextlib.suppress(Exception):
        local = stream.socket(port)
        _shut(local)
        local.close()


def _cut(stream: Any, port: int) -> None:
    """Shut a stream down at once, both ends, so nothing waits for the server's answer."""
    with contextlib.suppress(Exception):
        _shut(stream.socket(port))
    with contextlib.suppress(Exception):
        _shut(stream.websocket.sock)


def _proxy_thread(stream: Any) -> threading.Thread | None:
    """The client's proxy thread of ``stream``: the client keeps no handle on it, so it is
    found by the bound method it runs."""
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        if getattr(target, "__self__", None) is stream:
            return thread
    return None
