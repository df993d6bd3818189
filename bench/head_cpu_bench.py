"""Benchmark: what one HEAD costs pgdeck's own process, signed (``SignedHead``) against
boto3's ``head_object``, at S3's latency with the review's requests in flight.

The cold weekly review of 500 clusters x 168 hourly objects makes 84,000 HEADs. Under the
S3 model (bench/README.md) their latency is hidden by ``catalog.workers`` in flight; what
is left is the client's own CPU per HEAD, in one process under one GIL. The catalog and
review benches cannot tell it well: moto spends ~3 ms of CPU per HEAD on the same two
cores, and closes every connection. So this bench measures it alone, against a server
that costs little and behaves as S3 does:

* the server (a child process): HTTP/1.1 with keep-alive, every HEAD answered after
  ``--latency-ms`` (100, the S3 model's latency) with the headers S3 sends for an
  object (``x-amz-server-side-encryption``, ETag, Last-Modified, Content-Length, ...),
  one thread per connection. It checks no signature: that the signed requests are right
  is tests/test_signed_head.py's work, against moto with its signature checks on.
* the client (this process): an ``S3Store`` as the catalog builds it, HEADing
  ``--heads`` keys with ``S3Store.heads``, ``--threads`` (``catalog.workers``, 200 by
  default) in flight, as ``services/sse_check.py`` does. **signed**: the store's own
  (its first HEAD, untimed, is the client's; then each is signed by botocore and sent
  by aiohttp from one event loop). **boto3** (the baseline): the same store built around
  a given client, so that every HEAD is boto3's ``head_object``, one per thread.

Each round runs both, alternating which goes first, and reports per HEAD the client's CPU
(``time.process_time``: all its threads) and wall, and the server's CPU (``/proc``). The
figure: the 84,000 HEADs' wall at this latency and this many in flight, taken from the
measured rate (it is whichever is larger of the latency's bound, 84,000 x latency /
threads, and the client's CPU, 84,000 x CPU per HEAD), beside the bound alone.

Usage::

    .venv/bin/python bench/head_cpu_bench.py                  # 10,000 HEADs x 2, 3 rounds
    .venv/bin/python bench/head_cpu_bench.py --heads 3000 --rounds 1   # quick

Exits 0 whatever the timings; 1 when an answer was wrong (then its figures mean nothing).
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._s3server import cpu_seconds, fake_aws_env  # noqa: E402

FIGURE_HEADS = 84_000  # 500 clusters x 168 hourly objects
BUCKET = "backups"
SIZE = 123_456_789
ETAG = "0123456789abcdef0123456789abcdef-12"


class _Head(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 allows
    latency = 0.1

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        time.sleep(self.latency)
        self.send_response(200)
        for name, value in (
            ("x-amz-id-2", "Dqf0lM1K2pXqCZ0x9s2kLq3pW7yYfGmGk6r8lSxw5vA="),
            ("x-amz-request-id", "4QJZ8W0TQ6J7R2BN"),
            ("Date", self.date_time_string()),
            ("Last-Modified", "Tue, 01 Dec 2026 23:00:07 GMT"),
            ("ETag", f'"{ETAG}"'),
            ("x-amz-server-side-encryption", "AES256"),
            ("Accept-Ranges", "bytes"),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(SIZE)),
            ("Server", "AmazonS3"),
        ):
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def serve(latency: float) -> None:
    """The server child: prints its port, serves until its stdin closes."""
    _Head.latency = latency
    http.server.ThreadingHTTPServer.request_queue_size = 1024  # every connection at once
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Head)
    server.daemon_threads = True
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()


def measure(kind: str, endpoint: str, keys: list[str], threads: int) -> dict[str, float]:
    import threading

    from services.config import StorageLocation
    from services.storage import ObjectHead, S3Store, make_s3_client

    loc = StorageLocation(url=f"s3://{BUCKET}/spilo", endpoint_url=endpoint)
    if kind == "signed":
        store = S3Store(loc, workers=threads)
    else:
        store = S3Store(loc, workers=threads, client=make_s3_client(loc, threads))
    got: dict[str, ObjectHead | Exception] = {}
    # The client built and, signed, the store's requests learned from its first HEAD.
    store.heads(keys[:1], threads, got.__setitem__, threading.Event())
    got.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    store.heads(keys, threads, got.__setitem__, threading.Event())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    wrong = [
        h
        for h in got.values()
        if not isinstance(h, ObjectHead) or (h.sse, h.size) != ("AES256", SIZE)
    ]
    if wrong or len(got) != len(set(keys)):
        raise SystemExit(f"{kind}: wrong answers ({wrong[:1]}); the figures mean nothing")
    signed = getattr(store, "_signed", None)
    if kind == "signed" and getattr(signed, "signed", 0) != len(keys):
        raise SystemExit("signed: not every HEAD was signed here; the figures mean nothing")
    return {"cpu": cpu / len(keys), "wall": wall / len(keys)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", type=int, default=10_000, help="HEADs per run")
    ap.add_argument("--threads", type=int, default=200, help="in flight (catalog.workers)")
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    fake_aws_env(os.environ)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.latency_ms / 1000)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        endpoint = f"http://127.0.0.1:{int(child.stdout.readline())}"
        keys = [
            f"acid-{i % 500:03d}/6f1c2d34-0000-4000-8000-{i % 500:012d}/logical_backups/"
            f"{1_790_000_000 + 3600 * (i // 500)}.sql.gz"
            for i in range(args.heads)
        ]
        rows: list[dict[str, dict[str, float]]] = []
        for r in range(args.rounds):
            order = ("signed", "boto3") if r % 2 == 0 else ("boto3", "signed")
            row: dict[str, dict[str, float]] = {}
            for kind in order:
                srv0 = cpu_seconds(child.pid)
                row[kind] = measure(kind, endpoint, keys, args.threads)
                row[kind]["server"] = (cpu_seconds(child.pid) - srv0) / (args.heads + 1)
            rows.append(row)
            print(
                f"round {r + 1} ({', '.join(order)}): "
                + ", ".join(
                    f"{k} {row[k]['cpu'] * 1e3:.3f} ms CPU / {row[k]['wall'] * 1e3:.3f} ms wall"
                    for k in order
                ),
                flush=True,
            )
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)

    lat = args.latency_ms / 1000
    bound = FIGURE_HEADS * lat / args.threads
    print(
        f"\nHEAD CPU bench: {args.heads:,} HEADs per run, {args.threads} in flight, every answer "
        f"after {args.latency_ms:g} ms (keep-alive), {args.rounds} round(s), "
        f"{os.cpu_count()} CPUs; per HEAD, medians:"
    )
    print(
        f"  {'run':<8} {'client CPU':>11} {'wall':>9} {'server CPU':>11}"
        f" {'84,000 HEADs':>13} {'CPU bound':>10}"
    )
    med: dict[str, dict[str, float]] = {}
    for kind in ("boto3", "signed"):
        med[kind] = {m: statistics.median(r[kind][m] for r in rows) for m in rows[0][kind]}
        m = med[kind]
        print(
            f"  {kind:<8} {m['cpu'] * 1e3:>8.3f} ms {m['wall'] * 1e3:>6.3f} ms"
            f" {m['server'] * 1e3:>8.3f} ms {m['wall'] * FIGURE_HEADS:>11.1f} s"
            f" {m['cpu'] * FIGURE_HEADS:>8.1f} s"
        )
    ratio = med["signed"]["cpu"] / med["boto3"]["cpu"]
    by_round = ", ".join(f"{r['signed']['cpu'] / r['boto3']['cpu']:.3f}" for r in rows)
    print(
        f"  signed / boto3: CPU {ratio:.3f}, wall {med['signed']['wall'] / med['boto3']['wall']:.3f}"
        f" (CPU by round: {by_round})"
    )
    print(
        f"  84,000 HEADs at {args.latency_ms:g} ms with {args.threads} in flight: latency bound "
        f"{bound:.1f} s; measured rate, signed {med['signed']['wall'] * FIGURE_HEADS:.1f} s, "
        f"boto3 {med['boto3']['wall'] * FIGURE_HEADS:.1f} s (bar: the cold review < 60 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
