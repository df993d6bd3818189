"""A counting HTTP proxy in front of the S3 test server, for the catalog and review benches.

The measured process reaches it through ``endpoint_url`` exactly as it would reach moto.
For each request it records the start and end (``time.monotonic``, one clock for every
process on Linux), the kind (LIST, HEAD, GET, PUT, ...), the listing's prefix and
delimiter, the keys a LIST answered, and the bytes in and out; ``_s3model.py`` turns
that trace into what the same requests would cost against S3. It can also hold every
request for a fixed delay before forwarding it, so that a run's wall time can be
checked against the model where moto is not the bottleneck.

Control requests (never counted) under ``/__trace__``: ``GET /__trace__`` answers the
requests recorded so far as JSON and forgets them; ``GET /__trace__/delay?ms=N`` sets
the injected delay.

Run alone (``python bench/_s3proxy.py --upstream URL``), it prints its URL on one line
and serves until its stdin closes; ``TraceProxy`` runs it in a thread (the tests).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CONTROL = "/__trace__"
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def kind_of(method: str, path: str, query: dict[str, list[str]]) -> str:
    """LIST for a bucket-level GET that lists (V2 ``list-type=2`` or V1), else the method."""
    bucket_level = "/" not in path.strip("/")
    if method == "GET" and bucket_level and path.strip("/"):
        subresources = set(query) - {"list-type", "prefix", "delimiter", "start-after"}
        subresources -= {"continuation-token", "max-keys", "encoding-type", "fetch-owner"}
        subresources -= {"marker"}
        if "list-type" in query or not subresources:
            return "LIST"
    return method


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the client, as S3 allows
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _control(self, parts: Any) -> None:
        if parts.path.endswith("/delay"):
            ms = float(parse_qs(parts.query).get("ms", ["0"])[0])
            self.server.delay = ms / 1000
            body = b"{}"
        else:
            body = json.dumps(self.server.take()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith(CONTROL):
            self._control(parts)
            return
        start = time.monotonic()
        with self.server.lock:
            self.server.busy += 1
        try:
            self._relay(parts, start)
        finally:
            with self.server.lock:
                self.server.busy -= 1
                self.server.lock.notify_all()

    def _relay(self, parts: Any, start: float) -> None:
        body = self._body()
        if self.server.delay:
            time.sleep(self.server.delay)
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body or None, headers)
            resp = conn.getresponse()
            out = resp.read()
            status, answer = resp.status, resp.getheaders()
        finally:
            conn.close()
        self.send_response_only(status)
        for k, v in answer:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            length = next((v for k, v in answer if k.lower() == "content-length"), "0")
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)
        self.wfile.flush()
        query = parse_qs(parts.query, keep_blank_values=True)
        kind = kind_of(self.command, parts.path, query)
        record: dict[str, Any] = {
            "start": start,
            "end": time.monotonic(),
            "kind": kind,
            "bucket": parts.path.strip("/").split("/", 1)[0],
            "bytes_in": len(body),
            "bytes_out": len(out),
            "status": status,
        }
        if kind == "LIST":
            record["prefix"] = query.get("prefix", [""])[0]
            record["delimiter"] = query.get("delimiter", [""])[0]
            record["keys"] = out.count(b"<Key>")
        with self.server.lock:
            self.server.trace.append(record)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many clients' threads connect at once (pgdeck's pool): the default backlog of 5
    # would make some wait for a SYN retry, a second, as time the model never sees.
    request_queue_size = 256

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.delay = delay
        self.lock = threading.Condition()
        self.trace: list[dict[str, Any]] = []
        self.busy = 0  # requests being relayed

    def take(self) -> list[dict[str, Any]]:
        """The trace so far, forgotten here, once no request is half-way through (the
        client may have its answer a moment before the request is recorded)."""
        with self.lock:
            self.lock.wait_for(lambda: self.busy == 0, timeout=30)
            taken, self.trace = self.trace, []
        return taken


class TraceProxy:
    """The proxy in a thread of this process: ``start()``, ``url``, ``take()``, ``stop()``."""

    def __init__(self, upstream_url: str, delay: float = 0.0) -> None:
        parts = urlsplit(upstream_url)
        assert parts.hostname and parts.port
        self._server = _Server((parts.hostname, parts.port), delay)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> TraceProxy:
        self._thread.start()
        return self

    def take(self) -> list[dict[str, Any]]:
        return self._server.take()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def take(url: str) -> list[dict[str, Any]]:
    """The trace recorded so far by the proxy at ``url`` (another process), forgotten there."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request("GET", CONTROL)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def set_delay(url: str, seconds: float) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request("GET", f"{CONTROL}/delay?ms={seconds * 1000:g}")
        conn.getresponse().read()
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    args = ap.parse_args(argv)
    proxy = TraceProxy(args.upstream, args.delay_ms / 1000).start()
    print(json.dumps({"url": proxy.url}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or exits)
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
