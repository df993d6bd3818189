"""The fake Kubernetes API's port-forward: a pod's ports over a WebSocket, as the kubelet serves them.

``GET /api/v1/namespaces/{ns}/pods/{name}/portforward?ports=5432`` with a WebSocket upgrade,
answered as the API server (which proxies it to the kubelet's
``pkg/kubelet/cri/streaming/portforward/websocket.go``) does: subprotocol
``v4.channel.k8s.io`` (or none, which means the same binary framing; the base64 variant is not
served here), two channels per port in the order asked (``2i`` data, ``2i+1`` error), each
first sent the port as two little-endian bytes in a binary frame whose first byte is the
channel. Data then flows both ways on the data channel; a failure to reach the port is written
as text on the error channel, and the WebSocket ends once every port is done, with a close
frame. Frames from the client are masked, ours are not.

A pod's port is a real TCP endpoint: ``status.podIP`` and the port in the pod's
``pgdeck.io/test-port`` annotation (``tests/standin_operator.py`` writes both for the port
5432 of a staging primary). Any other port, or a pod without the annotation, is refused as a
container with nothing listening refuses it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import selectors
import socket
import struct
import threading
from typing import Any

TEST_PORT_ANNOTATION = "pgdeck.io/test-port"
PROTOCOL = "v4.channel.k8s.io"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FORWARDED_PORT = 5432  # the pod port the annotation stands for


class Refused(Exception):
    """The request cannot be upgraded: (HTTP status, reason, message)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def ports_of(query: dict[str, list[str]]) -> list[int]:
    """The ``ports`` query parameter(s) as the kubelet parses them; ``Refused`` when bad."""
    values = query.get("ports") or []
    if not values:
        raise Refused(400, "BadRequest", 'query parameter "ports" is required')
    ports: list[int] = []
    for value in values:
        if not value:
            raise Refused(400, "BadRequest", 'query parameter "ports" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or not 0 < int(part) < 65536:
                raise Refused(400, "BadRequest", f'unable to parse "{value}" as a port')
            ports.append(int(part))
    return ports


def choose_protocol(header: str | None) -> str:
    """The subprotocol the server picks from the client's list, in the client's order."""
    if not header:
        return ""
    offered = [p.strip() for p in header.split(",") if p.strip()]
    if PROTOCOL in offered:
        return PROTOCOL
    raise Refused(
        400,
        "BadRequest",
        f"requested protocol(s) are not supported: {offered}; supports [{PROTOCOL}]",
    )


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def target_of(pod: dict[str, Any], port: int) -> tuple[str, int] | None:
    """Where the pod's ``port`` really is, or None when nothing listens there."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    ip = (pod.get("status") or {}).get("podIP")
    test_port = str(annotations.get(TEST_PORT_ANNOTATION) or "")
    if port != _FORWARDED_PORT or not ip or not test_port.isdigit():
        return None
    return str(ip), int(test_port)


# --- frames ------------------------------------------------------------------------------


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def read_frame(rfile: Any) -> tuple[int, bool, bytes] | None:
    """(opcode, final, payload) of the next frame, unmasked; None at the end of the stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    first, second = head
    n = second & 0x7F
    if n == 126:
        n = struct.unpack("!H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if second & 0x80 else b""
    payload = rfile.read(n)
    if len(payload) < n:
        return None
    if mask and n:
        key = (mask * (n // 4 + 1))[:n]  # one big-integer XOR: byte by byte is far too slow
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return first & 0x0F, bool(first & 0x80), payload


# --- one forwarded WebSocket ------------------------------------------------------------


class Session:
    """The forward of one upgraded connection: ``run`` returns when it is over."""

    def __init__(self, sock: socket.socket, rfile: Any, pod: dict[str, Any], ports: list[int]):
        self.sock = sock
        self.rfile = rfile
        self.pod = pod
        self.ports = ports
        self.name = str((pod.get("metadata") or {}).get("name") or "")
        self.uid = str((pod.get("metadata") or {}).get("uid") or "")
        self._write_lock = threading.Lock()
        self._targets: dict[int, socket.socket] = {}  # data channel -> the pod's port
        self._closed = threading.Event()
        self._close_sent = False

    def send(self, opcode: int, payload: bytes) -> None:
        with self._write_lock:
            if self._close_sent:
                return  # nothing may follow a close frame
            self._close_sent = opcode == _CLOSE
            with contextlib.suppress(OSError):
                self.sock.sendall(frame(opcode, payload))

    def run(self) -> None:
        for i, port in enumerate(self.ports):
            for channel in (2 * i, 2 * i + 1):
                self.send(_BINARY, bytes([channel]) + struct.pack("<H", port))
        for i, port in enumerate(self.ports):
            where = target_of(self.pod, port)
            try:
                if where is None:
                    raise ConnectionRefusedError("connect: connection refused")
                self._targets[2 * i] = socket.create_connection(where, timeout=2)
                self._targets[2 * i].settimeout(None)
            except OSError as exc:
                self._error(2 * i + 1, port, exc)
        pump = threading.Thread(target=self._from_pod, name="fakekube portforward", daemon=True)
        pump.start()
        try:
            self._from_client()
        finally:
            self._closed.set()
            for target in list(self._targets.values()):
                with contextlib.suppress(OSError):
                    target.shutdown(socket.SHUT_RDWR)
            pump.join(5)
            for target in list(self._targets.values()):
                target.close()

    def _error(self, channel: int, port: int, exc: OSError) -> None:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()  # as Go says it
        message = (
            f"error forwarding port {port} to pod {self.name}, uid {self.uid}: failed to "
            f"connect to localhost:{port} inside namespace of the pod: dial tcp "
            f"127.0.0.1:{port}: connect: {reason.removeprefix('connect: ')}"
        )
        self.send(_BINARY, bytes([channel]) + message.encode())

    def _from_client(self) -> None:
        """Client frames to the pod's ports until the client closes or goes."""
        pending: list[bytes] = []
        while True:
            got = read_frame(self.rfile)
            if got is None:
                return
            opcode, final, payload = got
            if opcode == _CLOSE:
                self.send(_CLOSE, payload[:2])
                return
            if opcode == _PING:
                self.send(_PONG, payload)
                continue
            if opcode in (_TEXT, _BINARY, _CONTINUATION):
                pending.append(payload)
                if not final:
                    continue
                data, pending = b"".join(pending), []
                if data and (target := self._targets.get(data[0])) is not None:
                    try:
                        target.sendall(data[1:])
                    except OSError:
                        self._targets.pop(data[0], None)

    def _from_pod(self) -> None:
        """The pods' bytes to the client; once every port is done, the closing handshake."""
        with selectors.DefaultSelector() as sel:
            for channel, target in self._targets.items():
                sel.register(target, selectors.EVENT_READ, channel)
            while sel.get_map() and not self._closed.is_set():
                for key, _ in sel.select(0.2):
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if data:
                        self.send(_BINARY, bytes([key.data]) + data)
                    else:
                        sel.unregister(key.fileobj)
        if not self._closed.is_set():
            # the kubelet closes the WebSocket when every port's forward has returned
            self.send(_CLOSE, struct.pack("!H", 1000))
