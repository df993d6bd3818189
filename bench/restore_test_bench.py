"""Restore tests side by side: ``pgdeck restore-test --all`` over 20 clusters with
``staging.max_parallel`` 4, against the same 20 tests one after the other (max_parallel 1).

The world: 20 source clusters as ``postgresql`` objects in the fake Kubernetes API
(``tests/fakekube.py``, over HTTP); each one's backup a real ``pg_dumpall`` of a small
database (a few thousand rows, its own), gzip'd, in moto's S3 server (a child process);
the stand-in operator (``tests/standin_operator.py``) making each staging cluster with
its own real PostgreSQL (``tests/staging_servers.py``: one initdb, copied per cluster).

The operator's latency model: a new ``postgresql`` is ``Running`` (pod and Secret there,
pod not Ready) ``--running-after`` seconds (2) after its creation, or once its server is
up when starting it (a copy of the template and ``pg_ctl start``, begun at the creation)
takes longer; its pod is Ready ``--ready-after`` seconds (1) later. A real operator takes minutes (a volume, a pod
scheduled, Spilo's bootstrap): the longer the wait, the more the overlap counts.

Each run is ``python -m tui.cli restore-test --all --json`` in its own process (its peak
RSS its own); the two sides alternate, ``--rounds`` times. Printed per round and as
medians: wall seconds, the ratio parallel/serial, the overlap achieved (the tests'
summed durations / wall), the peak of tests in flight (from the reports' start and finish
times) and of staging clusters alive (seen by the stand-in), the peak RSS, and where a
test's time goes (staging wait vs restore, from the reports' ``time_to_restore``).

    python bench/restore_test_bench.py [--clusters 20] [--parallel 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _s3server import BUCKET, Crash, fake_aws_env, s3_backend, start_http, stop_child

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import kube as ko  # noqa: E402
from sandbox import localpg  # noqa: E402
from services.operator import backup_key  # noqa: E402
from tests.fakekube import FakeKube, write_kubeconfig  # noqa: E402
from tests.staging_servers import StagingServers  # noqa: E402
from tests.standin_operator import StandinOperator  # noqa: E402

NS, STAGING = "db", "pgdeck-staging"
WORDS = ["billing", "orders", "users", "search", "events", "payments", "ledger", "catalog"]

SCHEMA_SQL = """
CREATE DATABASE shop;
\\connect shop
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                     total numeric(10,2), note text);
CREATE INDEX orders_customer ON orders (customer);
"""
# Each cluster's own rows: its name in every customer's, a row count of its own.
ROWS_SQL = """
TRUNCATE orders, customers;
INSERT INTO customers SELECT g, :'cluster' || ' customer ' || g, 'c' || g || '@example.com'
  FROM generate_series(1, :customers) g;
INSERT INTO orders SELECT g, 1 + g % :customers, (g % 10000) / 100.0, md5(g::text)
  FROM generate_series(1, :orders) g;
"""


def cluster_names(n: int) -> list[str]:
    return [f"acid-{WORDS[i % len(WORDS)]}-{i:02d}" for i in range(n)]


def uid(i: int) -> str:
    return f"7e570000-0000-4000-8000-{i:012x}"


# --- the world ---------------------------------------------------------------------------
def make_dumps(work: Path, names: list[str], rows: int) -> dict[str, Path]:
    """One real ``pg_dumpall`` per cluster, gzip'd: one source server, its rows replaced
    before each dump."""
    pg = localpg.create(work / "source")
    pg.start()
    env = {**os.environ, **pg.env()}
    psql = [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    out: dict[str, Path] = {}
    try:
        subprocess.run([*psql, "-d", "postgres"], input=SCHEMA_SQL, text=True, env=env, check=True)
        for i, name in enumerate(names):
            subprocess.run(
                [*psql, "-d", "shop", "-v", f"cluster={name}"]
                + ["-v", f"customers={rows // 4}", "-v", f"orders={rows + 97 * i}"],
                input=ROWS_SQL,
                text=True,
                env=env,
                check=True,
            )
            dump = subprocess.run(
                [str(pg.bindir / "pg_dumpall")], env=env, check=True, capture_output=True
            ).stdout
            out[name] = work / f"{name}.sql.gz"
            out[name].write_bytes(gzip.compress(dump, 6))
    finally:
        pg.destroy()
    return out


def serve(args: argparse.Namespace) -> int:
    """The S3 server child: seeds the bucket from the plan file, prints its URL, waits."""
    backend = s3_backend()
    for key, path in json.loads(Path(args.plan).read_text()).items():
        backend.put_object(BUCKET, key, Path(path).read_bytes(), encryption="AES256")
    server, url = start_http()
    print(json.dumps({"url": url}), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    server.stop()
    return 0


# --- one measured run --------------------------------------------------------------------
def run_once(
    config: Path,
    kube: FakeKube,
    servers: StagingServers,
    args: argparse.Namespace,
    env: dict[str, str],
    log: Path,
) -> dict[str, Any]:
    """One ``pgdeck restore-test --all`` in a child; its figures. Crash when a test did not pass."""
    operator = StandinOperator(
        kube,
        running_after=args.running_after,
        ready_after=args.ready_after,
        primary_factory=servers.start,
        release=servers.release,
    )
    with operator, log.open("w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "--config", str(config)]
            + ["restore-test", "--all", "--json"],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise Crash(f"restore-test exited {proc.returncode}; see {log}")
    docs = json.loads(out)
    failed = [d["source"]["cluster"] for d in docs if d.get("result") != "passed"]
    if len(docs) != args.clusters or failed:
        raise Crash(f"{len(docs)} reports, not passed: {failed}; see {log}")
    if servers.servers or operator.alive:
        raise Crash(f"staging clusters left: {sorted(operator.alive)}")
    spans = [
        (
            datetime.fromisoformat(d["test_started_at"]),
            datetime.fromisoformat(d["test_finished_at"]),
        )
        for d in docs
    ]
    ttr = [d["time_to_restore"] for d in docs]
    starts = servers.start_seconds[-len(docs) :]
    return {
        "wall": wall,
        "rss_mb": usage.ru_maxrss / 1024,
        "busy": sum((b - a).total_seconds() for a, b in spans),
        "in_flight": peak_overlap(spans),
        "alive": operator.peak_alive,
        "staging": statistics.mean(t["staging_seconds"] for t in ttr),
        "restore": statistics.mean(t["restore_seconds"] for t in ttr),
        "server_start": statistics.mean(starts),
    }


def peak_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans that held at one instant (an end before a start at a tie)."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def write_config(
    path: Path,
    work: Path,
    *,
    kubeconfig: Path,
    endpoint: str,
    servers: StagingServers,
    parallel: int,
) -> Path:
    path.write_text(
        json.dumps(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig)},
                "storage": [{"url": f"s3://{BUCKET}/spilo", "endpoint_url": endpoint}],
                "staging": {
                    "namespace": STAGING,
                    "address": servers.address,
                    "ready_timeout_seconds": 120,
                    "max_parallel": parallel,
                },
                "restore_tests": {"rto_minutes": 60},
                "cache": str(work / "cache"),
                "archive": str(work / "archive"),
            }
        )
    )
    return path


# --- the rounds --------------------------------------------------------------------------
def rounds(args: argparse.Namespace) -> int:
    env = fake_aws_env(dict(os.environ))
    work = Path(tempfile.mkdtemp(prefix="pgdeck-rtbench-"))
    names = cluster_names(args.clusters)
    now = datetime.now(UTC)
    print(
        f"building {args.clusters} dumps (pg_dumpall, ~{args.rows:,} order rows each) ...",
        file=sys.stderr,
        flush=True,
    )
    dumps = make_dumps(work, names, args.rows)
    when = int((now - timedelta(hours=1)).timestamp())
    plan = {f"spilo/{backup_key(n, uid(i), when)}": str(dumps[n]) for i, n in enumerate(names)}
    (work / "plan.json").write_text(json.dumps(plan))
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--plan", str(work / "plan.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    kube = FakeKube().start()
    # The sockets' paths must fit in 108 bytes: a short base under /tmp.
    servers = StagingServers(Path(tempfile.mkdtemp(prefix="rtb-", dir="/tmp")))
    results: list[dict[str, dict[str, Any]]] = []
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise Crash("the S3 server child exited before printing its URL")
        endpoint = json.loads(line)["url"]
        for i, name in enumerate(names):
            kube.add(
                ko.postgresql(name, NS, created=now - timedelta(days=30), uid=uid(i), version="16")
            )
        kubeconfig = write_kubeconfig(work / "kubeconfig", {"bench": kube}, namespace=NS)
        sides = {"serial": 1, "parallel": args.parallel}
        print(
            f"{args.clusters} clusters, {args.rounds} round(s); operator: Running "
            f"{args.running_after:g} s after creation (or when its server is up), Ready "
            f"{args.ready_after:g} s later (a real operator: minutes)\n",
            flush=True,
        )
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            row: dict[str, dict[str, Any]] = {}
            for side in order:
                run_dir = work / f"r{r}-{side}"
                run_dir.mkdir()
                cfg = write_config(
                    run_dir / "config.yaml",
                    run_dir,
                    kubeconfig=kubeconfig,
                    endpoint=endpoint,
                    servers=servers,
                    parallel=sides[side],
                )
                row[side] = run_once(cfg, kube, servers, args, env, run_dir / "stderr.log")
            results.append(row)
            print_round(r, row)
    except Crash as exc:
        print(f"crash: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_child(server)
        servers.close()
        kube.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_medians(results, args)
    return 0


def print_round(r: int, row: dict[str, dict[str, Any]]) -> None:
    s, p = row["serial"], row["parallel"]
    print(
        f"round {r + 1}: serial {s['wall']:.1f} s  parallel {p['wall']:.1f} s  "
        f"ratio {p['wall'] / s['wall']:.3f}  overlap {p['busy'] / p['wall']:.2f} "
        f"(serial {s['busy'] / s['wall']:.2f})  in flight {p['in_flight']} "
        f"(staging alive {p['alive']})  peak RSS parallel {p['rss_mb']:.0f} MB, "
        f"serial {s['rss_mb']:.0f} MB",
        flush=True,
    )


def print_medians(results: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    def med(side: str, fn: Any) -> float:
        return statistics.median(fn(row[side]) for row in results)

    ratio = statistics.median(row["parallel"]["wall"] / row["serial"]["wall"] for row in results)
    print()
    print(
        f"| median of {len(results)} round(s) | serial (max_parallel 1) | parallel (max_parallel {args.parallel}) |"
    )
    print("|---|---:|---:|")
    print(
        f"| wall | {med('serial', lambda x: x['wall']):.1f} s | {med('parallel', lambda x: x['wall']):.1f} s |"
    )
    print(f"| ratio parallel / serial | | {ratio:.3f} |")
    print(
        f"| overlap (tests' summed durations / wall) | {med('serial', lambda x: x['busy'] / x['wall']):.2f} "
        f"| {med('parallel', lambda x: x['busy'] / x['wall']):.2f} |"
    )
    print(
        f"| peak tests in flight (staging clusters alive) | {max(r['serial']['in_flight'] for r in results)} "
        f"({max(r['serial']['alive'] for r in results)}) | {max(r['parallel']['in_flight'] for r in results)} "
        f"({max(r['parallel']['alive'] for r in results)}) |"
    )
    print(
        f"| peak RSS of the pgdeck process | {med('serial', lambda x: x['rss_mb']):.0f} MB | {med('parallel', lambda x: x['rss_mb']):.0f} MB |"
    )
    print(
        f"| a test's staging wait (mean) | {med('serial', lambda x: x['staging']):.2f} s "
        f"| {med('parallel', lambda x: x['staging']):.2f} s |"
    )
    model = args.running_after + args.ready_after
    print(
        f"| of which the model's Running + Ready; the stand-in's server start (mean, "
        f"hidden in Running up to {args.running_after:g} s) "
        f"| {model:g} s; {med('serial', lambda x: x['server_start']):.2f} s "
        f"| {model:g} s; {med('parallel', lambda x: x['server_start']):.2f} s |"
    )
    print(
        f"| a test's restore (mean) | {med('serial', lambda x: x['restore']):.2f} s "
        f"| {med('parallel', lambda x: x['restore']):.2f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=20)
    ap.add_argument(
        "--parallel", type=int, default=4, help="staging.max_parallel of the parallel side"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--rows", type=int, default=4000, help="order rows per cluster (customers: a quarter)"
    )
    ap.add_argument("--running-after", type=float, default=2.0, help="operator: seconds to Running")
    ap.add_argument(
        "--ready-after", type=float, default=1.0, help="operator: then seconds to Ready"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, archives)")
    sub = ap.add_subparsers(dest="role")
    sp = sub.add_parser("serve", help=argparse.SUPPRESS)
    sp.add_argument("--plan", required=True)
    args = ap.parse_args(argv)
    if args.role == "serve":
        return serve(args)
    return rounds(args)


if __name__ == "__main__":
    sys.exit(main())
