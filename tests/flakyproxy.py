"""A TCP proxy on loopback that drops connections on purpose, in front of a real server.

It forwards bytes both ways unchanged. ``cut_after(n)`` arms a rule: the next connection
whose first request matches gets the upstream's response only up to ``n`` bytes (status
line and headers included); once the client's side has acknowledged those bytes, both
of its sockets are closed abruptly (an RST, with SO_LINGER 0), as a load balancer or a
dying network path would. (Without that wait the RST would throw away whatever still sat
in the kernel's buffers, and the client would see far less than ``n`` bytes.) Rules are
checked in the order they were armed; the first one with cuts left that matches applies.

The decision is made once per connection, on its first request: HTTP clients keep
connections alive and send several requests on one, and a connection that was cut is
never reused, so a client's resume arrives on a fresh connection and is judged anew.
One thread per connection moves both directions with ``select``, so a cut closes the
sockets at once (no other thread is blocked reading them).

``stall_after(n)`` arms the other failure: the connection forwards ``n`` bytes of the
response and then sends nothing more while keeping the connection open (a hung server,
or a path that silently drops packets), until the client gives up and closes it.
"""

from __future__ import annotations

import fcntl
import select
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

_HEADERS_END = b"\r\n\r\n"
_MAX_HEAD = 64 << 10  # judge a request on at most this much of its start
_TICK = 0.1  # how often idle threads look at the stop flag
_SIOCOUTQ = 0x5411  # Linux: bytes in a socket's send queue not yet acknowledged


@dataclass
class _Rule:
    nbytes: int
    left: int
    match: bytes
    only_unranged: bool
    reset: bool
    stall: bool = False

    def matches(self, head: bytes) -> bool:
        if self.left <= 0 or not head.startswith(self.match):
            return False
        if self.only_unranged:
            headers = head.split(_HEADERS_END, 1)[0].lower()
            if b"\r\nrange:" in headers:
                return False
        return True


class FlakyProxy:
    """``FlakyProxy(host, port).start()``; point the client at ``proxy.url``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.connections = 0  # connections accepted
        self.cuts = 0  # connections cut short
        self.stalls = 0  # connections that went silent
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- control --------------------------------------------------------------------------
    def cut_after(
        self,
        nbytes: int,
        times: int = 1,
        match: bytes = b"GET ",
        *,
        only_unranged: bool = True,
        reset: bool = True,
    ) -> None:
        """Cut the next ``times`` matching connections after ``nbytes`` of response.

        A connection matches when its first request starts with ``match`` and, with
        ``only_unranged``, carries no ``Range:`` header. ``reset=False`` closes with a
        FIN instead of an RST (every forwarded byte then reaches the client).
        """
        with self._lock:
            self._rules.append(_Rule(nbytes, times, match, only_unranged, reset))

    def stall_after(
        self,
        nbytes: int,
        times: int = 1,
        match: bytes = b"GET ",
        *,
        only_unranged: bool = True,
    ) -> None:
        """Stall the next ``times`` matching connections after ``nbytes`` of response
        (0: the request is taken and never answered); matching as for ``cut_after``."""
        with self._lock:
            self._rules.append(_Rule(nbytes, times, match, only_unranged, False, stall=True))

    def clear(self) -> None:
        """Forget the armed rules (the counters stay)."""
        with self._lock:
            self._rules.clear()

    def start(self) -> FlakyProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_TICK)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "flakyproxy-accept")
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=2)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FlakyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the work -------------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            self._spawn(self._serve, "flakyproxy-conn", client)

    def _decide(self, head: bytes) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(head):
                    rule.left -= 1
                    return rule
        return None

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _abort(client, reset=True)
            return
        client.settimeout(10)  # bounds a sendall to a client that stopped reading
        upstream.settimeout(10)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ)
        sel.register(upstream, selectors.EVENT_READ)
        head = b""  # the first request's start, held back until it can be judged
        judged = False
        rule: _Rule | None = None
        sent = 0  # response bytes forwarded on this connection
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(_TICK):
                    src = cast(socket.socket, key.fileobj)
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client:
                        if not judged:
                            head += data
                            if _HEADERS_END not in head and len(head) < _MAX_HEAD:
                                continue
                            judged = True
                            rule = self._decide(head)
                            data, head = head, b""
                        upstream.sendall(data)
                        continue
                    if rule is not None and rule.stall and sent + len(data) >= rule.nbytes:
                        client.sendall(data[: rule.nbytes - sent])
                        with self._lock:
                            self.stalls += 1
                        self._hold(client)
                        return
                    if rule is not None and sent + len(data) >= rule.nbytes:
                        client.sendall(data[: rule.nbytes - sent])
                        with self._lock:
                            self.cuts += 1
                        _abort(client, reset=rule.reset, drain=True)
                        _abort(upstream, reset=True)
                        return
                    client.sendall(data)
                    sent += len(data)
        except OSError:
            return
        finally:
            sel.close()
            _abort(client, reset=False)
            _abort(upstream, reset=False)

    def _hold(self, client: socket.socket) -> None:
        """Send nothing more; read and drop what the client sends until it closes."""
        while not self._stop.is_set():
            ready, _, _ = select.select([client], [], [], _TICK)
            if not ready:
                continue
            try:
                if not client.recv(65536):
                    return
            except OSError:
                return


def _drain(sock: socket.socket, timeout: float = 2.0) -> None:
    """Wait (bounded) until the peer has acknowledged everything sent on ``sock``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            unsent = struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return
        if unsent == 0:
            return
        time.sleep(0.005)


def _abort(sock: socket.socket, *, reset: bool, drain: bool = False) -> None:
    """Close ``sock``; with ``reset``, at once with an RST (SO_LINGER on, timeout 0)."""
    if sock.fileno() < 0:
        return
    if drain:
        _drain(sock)
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
