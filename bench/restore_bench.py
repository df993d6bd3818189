"""Restore speed (issue 16): pgdeck restore --jobs 1, 2, 4 against the team's pipeline and psql -f.

Side by side in one run, each into an equally fresh local PostgreSQL, on a real
``pg_dumpall`` of a source cluster of ``--size`` MB of SQL (ten tables of mixed sizes,
their primary keys, indexes and foreign keys), gzip'd as the operator's pigz does and
served by moto's S3 server:

- ``seed``: the team's bash script, download | gzip -dc | psql (the baseline);
- ``psql -f``: psql reading the already uncompressed dump from local disk (what one session
  can do at best: no download, no decompression);
- ``pgdeck --jobs N`` for each N of ``--jobs`` (default 1, 2, 4).

The order rotates every round, so drift on a shared machine hits all alike. The targets
are durable as an operator's cluster is (fsync, full_page_writes and synchronous_commit
on; ``--fast-target`` for the test servers' durability off).

    python bench/restore_bench.py [--size 320] [--rounds 3] [--jobs 1,2,4]
    python bench/restore_bench.py --size 30 --rounds 1      # a check in about a minute

Prints each run's seconds, then the medians, each one's ratio against the seed pipeline
and against psql -f, pgdeck's peak RSS (``ru_maxrss`` of its process), the largest spool
and where the time went (from pgdeck's own report: download, decompress, the main thread's
reading, each data session's COPY, the post-data). Bar (issue 16, 2 cores): pgdeck's best
median <= 0.8x the seed pipeline and under psql -f; peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import localpg  # noqa: E402

BUCKET = "bench-restore"
KEY = "spilo/acid-bench/0b000000-0000-4000-8000-00000000beef/logical_backups/1763600000.sql.gz"
PYTHON = sys.executable

# Rows per MB asked for, per table (addresses: one per customer, order_items: three per
# order; categories and countries fixed): ten tables of mixed sizes, from ~20% of the dump
# (orders, order_items) down to a few KB. --size 100 gives about 92 MB of SQL.
SOURCE_SQL = """
CREATE DATABASE shop;
\\connect shop
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE categories (id int PRIMARY KEY, name text NOT NULL, parent int REFERENCES categories(id));
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                        country char(2) REFERENCES countries(code), created timestamptz NOT NULL);
CREATE TABLE addresses (id int PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                        street text, city text, zip text);
CREATE TABLE products (id int PRIMARY KEY, category int NOT NULL REFERENCES categories(id),
                       name text NOT NULL, price numeric(10,2), description text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                     at timestamptz NOT NULL, status text NOT NULL, total numeric(12,2), note text);
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders(id), line int NOT NULL,
                          product int NOT NULL REFERENCES products(id), qty int, price numeric(10,2),
                          PRIMARY KEY (order_id, line));
CREATE TABLE payments (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
                       amount numeric(12,2), at timestamptz, method text);
CREATE TABLE events (id bigint PRIMARY KEY, customer int REFERENCES customers(id),
                     at timestamptz NOT NULL, kind text, payload text);
CREATE TABLE reviews (id int PRIMARY KEY, product int NOT NULL REFERENCES products(id),
                      customer int NOT NULL REFERENCES customers(id), stars int, body text);
CREATE INDEX customers_email ON customers (lower(email));
CREATE INDEX orders_customer ON orders (customer, at);
CREATE INDEX order_items_product ON order_items (product);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX events_customer_at ON events (customer, at);
CREATE INDEX reviews_product ON reviews (product);
CREATE INDEX addresses_customer ON addresses (customer);
INSERT INTO countries SELECT chr(65 + g / 26) || chr(65 + g % 26), 'country ' || g FROM generate_series(0, 249) g;
INSERT INTO categories SELECT g, 'category ' || g, NULL FROM generate_series(1, 200) g;
UPDATE categories SET parent = 1 + id % 20 WHERE id > 20;
INSERT INTO customers SELECT g, 'customer ' || g, 'C' || g || '@example.com',
  chr(65 + (g % 250) / 26) || chr(65 + (g % 250) % 26), TIMESTAMPTZ '2024-01-01' + g * interval '1 minute'
  FROM generate_series(1, :customers) g;
INSERT INTO addresses SELECT g, g, g || ' Main Street', 'city ' || (g % 1000), lpad((g % 99999)::text, 5, '0')
  FROM generate_series(1, :customers) g;
INSERT INTO products SELECT g, 1 + g % 200, 'product ' || g, (g % 10000) / 100.0, md5(g::text)
  FROM generate_series(1, :products) g;
INSERT INTO orders SELECT g, 1 + g % :customers, TIMESTAMPTZ '2025-01-01' + g * interval '1 second',
  (ARRAY['new','paid','shipped','done'])[1 + g % 4], (g % 100000) / 100.0, md5(g::text)
  FROM generate_series(1, :orders) g;
INSERT INTO order_items SELECT 1 + g / 3, g % 3, 1 + g % :products, 1 + g % 5, (g % 10000) / 100.0
  FROM generate_series(0, 3 * :orders - 1) g;
INSERT INTO payments SELECT g, 1 + g % :orders, (g % 100000) / 100.0,
  TIMESTAMPTZ '2025-01-01' + g * interval '1 second', (ARRAY['card','bank','voucher'])[1 + g % 3]
  FROM generate_series(1, :payments) g;
INSERT INTO events SELECT g, 1 + g % :customers, TIMESTAMPTZ '2025-01-01' + g * interval '1 second',
  'kind' || (g % 20), md5(g::text) || md5((g * 3)::text)
  FROM generate_series(1, :events) g;
INSERT INTO reviews SELECT g, 1 + g % :products, 1 + g % :customers, g % 5, repeat(md5(g::text), 3)
  FROM generate_series(1, :reviews) g;
"""
PER_MB = {  # rows per MB of dump
    "customers": 1_250,
    "products": 375,
    "orders": 3_000,
    "payments": 2_500,
    "events": 1_400,
    "reviews": 375,
}

SERVER = r"""
import logging, sys, time
from moto.server import ThreadedMotoServer
from moto.s3.models import s3_backends
logging.getLogger("werkzeug").setLevel(logging.ERROR)
srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
srv.start()
host, port = srv.get_host_and_port()
import boto3
boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1").create_bucket(Bucket=sys.argv[1])
s3_backends["123456789012"]["aws"].put_object(sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read())
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()
"""

DOWNLOAD = r"""
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
body = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"]
out = sys.stdout.buffer
for chunk in body.iter_chunks(1 << 20):
    out.write(chunk)
"""

# pgdeck under a cProfile of every thread (--profile): the same CLI, its stats dumped at exit.
PROFILED = r"""
import sys
sys.path.insert(0, sys.argv[1])
from bench._profiling import ThreadProfiles
from tui.cli import main
profiles = ThreadProfiles()
code = [0]
def run():
    try:
        code[0] = main(sys.argv[3:])
    except SystemExit as exc:
        code[0] = exc.code or 0
profiles.run(run)
profiles.dump(sys.argv[2])
sys.exit(code[0])
"""

# What an operator's cluster runs with (durable), beside the test servers' defaults.
DURABLE = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
}


def make_dump(cache: Path, size_mb: int) -> tuple[Path, Path]:
    """The source's pg_dumpall (SQL and gzip'd as pigz writes it), cached by size."""
    sql = cache / f"dump-{size_mb}mb.sql"
    gz = cache / f"dump-{size_mb}mb.sql.gz"
    if sql.exists() and gz.exists():
        return sql, gz
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pgdeck-bench-src-"))
    pg = localpg.create(work / "data", settings={"max_wal_size": "2GB"})
    try:
        pg.start()
        env = {**os.environ, **pg.env()}
        rows = {name: max(10, per * size_mb) for name, per in PER_MB.items()}
        print(f"building the source cluster ({size_mb} MB of SQL) ...", file=sys.stderr)
        variables = [arg for name, n in rows.items() for arg in ("-v", f"{name}={n}")]
        subprocess.run(
            [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *variables]
            + ["-d", "postgres"],
            input=SOURCE_SQL,
            text=True,
            env=env,
            check=True,
        )
        tmp = sql.with_suffix(".tmp")
        with tmp.open("wb") as f:
            subprocess.run([str(pg.bindir / "pg_dumpall")], env=env, check=True, stdout=f)
        # pigz's format and default level (6); gzip -6 where pigz is not installed.
        packer = [shutil.which("pigz") or "gzip", "-6", "-c"]
        with tmp.open("rb") as src, gz.with_suffix(".tmp").open("wb") as dst:
            subprocess.run(packer, stdin=src, stdout=dst, check=True)
        gz.with_suffix(".tmp").rename(gz)
        tmp.rename(sql)
        print(
            f"dump: {sql.stat().st_size / 1e6:.0f} MB of SQL, {gz.stat().st_size / 1e6:.0f} MB "
            f"{Path(packer[0]).name}",
            file=sys.stderr,
        )
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return sql, gz


def fresh_target(fast: bool) -> tuple[localpg.LocalPostgres, Path]:
    work = Path(tempfile.mkdtemp(prefix="pgdeck-bench-tgt-"))
    pg = localpg.create(work / "data", settings=None if fast else DURABLE)
    pg.start()
    return pg, work


def timed(
    cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS (KiB) of the child (a shell's: its largest process), stdout,
    and the CPU seconds (user + system) of the child and what it waited for."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=shell, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {cmd}\n{err[-2000:]}")
    return seconds, usage.ru_maxrss, out, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=320, help="MB of SQL in the dump (default 320)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", default="1,2,4", help="pgdeck's --jobs values (default 1,2,4)")
    ap.add_argument("--fast-target", action="store_true", help="targets with durability off")
    ap.add_argument("--profile", type=Path, help="write a cProfile of each pgdeck run here")
    ap.add_argument("--only", help="comma-separated runs to make (seed, psql-f, jobs-N)")
    ap.add_argument(
        "--session-settings",
        type=json.loads,
        help="restore.session_settings for pgdeck, as JSON (e.g. '{\"maintenance_work_mem\": null}')",
    )
    args = ap.parse_args()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pgdeck" / "bench"
    sql, gz = make_dump(cache, args.size)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    server = subprocess.Popen(
        [PYTHON, "-c", SERVER, BUCKET, KEY, str(gz)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert server.stdout is not None
    endpoint = server.stdout.readline().strip()
    psql = localpg.find_bindir() / "psql"
    work = Path(tempfile.mkdtemp(prefix="pgdeck-bench-"))
    (work / "spool").mkdir()
    cfg = work / "config.yaml"
    cfg.write_text(
        json.dumps(
            {
                "kubernetes": {"enabled": False},
                "storage": [{"url": f"s3://{BUCKET}/spilo", "endpoint_url": endpoint}],
                "cache": str(work / "cache"),
                "archive": str(work / "archive"),
                "restore": {
                    "spool_dir": str(work / "spool"),
                    **(
                        {"session_settings": args.session_settings}
                        if args.session_settings is not None
                        else {}
                    ),
                },
            }
        )
    )
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = ["seed", "psql-f", *(f"jobs-{int(j)}" for j in args.jobs.split(","))]
    if args.only:
        runs = [r for r in runs if r in args.only.split(",")]
    seconds: dict[str, list[float]] = {r: [] for r in runs}
    reports: dict[str, list[dict[str, Any]]] = {r: [] for r in runs}
    cpus: dict[str, list[float]] = {r: [] for r in runs}
    rss: dict[str, int] = {}
    print(
        f"dump {sql.stat().st_size / 1e6:.0f} MB SQL, {gz.stat().st_size / 1e6:.0f} MB gzip; "
        f"targets {'fast (durability off)' if args.fast_target else 'durable'}; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        for r in range(args.rounds):
            order = runs[r % len(runs) :] + runs[: r % len(runs)]
            if r % 2:
                order.reverse()
            line = []
            for which in order:
                pg, twork = fresh_target(args.fast_target)
                try:
                    if which == "seed":
                        cmd = (
                            f"{PYTHON} -c '{DOWNLOAD}' {endpoint} {BUCKET} {KEY} | gzip -dc | "
                            f"{psql} -X -q -f - -d '{pg.dsn()}' >/dev/null 2>&1"
                        )
                        took, _, _, cpu = timed(cmd, shell=True, env=env)
                    elif which == "psql-f":
                        cmd = f"{psql} -X -q -f {sql} -d '{pg.dsn()}' >/dev/null 2>&1"
                        took, _, _, cpu = timed(cmd, shell=True, env=env)
                    else:
                        jobs = which.removeprefix("jobs-")
                        cli = ["--config", str(cfg), "restore", f"s3://{BUCKET}/{KEY}"]
                        cli += ["--target", pg.dsn(), "--yes", "--json", "--jobs", jobs]
                        if args.profile:
                            prof = args.profile / f"{which}-r{r + 1}.prof"
                            cmd = [PYTHON, "-c", PROFILED, str(ROOT), str(prof), *cli]
                        else:
                            cmd = [PYTHON, "-m", "tui.cli", *cli]
                        took, peak, out, cpu = timed(cmd, env={**env, "PYTHONPATH": str(ROOT)})
                        report = json.loads(out)
                        assert report["status"] == "succeeded", report.get("error")
                        reports[which].append(report)
                        rss[which] = max(rss.get(which, 0), peak)
                finally:
                    pg.destroy()
                    shutil.rmtree(twork, ignore_errors=True)
                seconds[which].append(took)
                cpus[which].append(cpu)
                line.append(f"{which} {took:.2f} s (client CPU {cpu:.2f})")
            print(f"round {r + 1}: " + "  ".join(line), flush=True)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    summarise(runs, seconds, reports, rss, cpus)


def summarise(
    runs: list[str],
    seconds: dict[str, list[float]],
    reports: dict[str, list[dict[str, Any]]],
    rss: dict[str, int],
    cpus: dict[str, list[float]],
) -> None:
    med = {r: statistics.median(seconds[r]) for r in runs}
    print()
    print("| run | median s | vs seed | vs psql -f | peak RSS | client CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        vs_seed = f"{med[r] / med['seed']:.3f}" if "seed" in med else "-"
        vs_local = f"{med[r] / med['psql-f']:.3f}" if "psql-f" in med else "-"
        mem = f"{rss[r] / 1024:.0f} MB" if r in rss else "-"
        cpu = statistics.median(cpus[r])
        print(f"| {r} | {med[r]:.2f} | {vs_seed} | {vs_local} | {mem} | {cpu:.2f} |")
    ours = [r for r in runs if r.startswith("jobs-")]
    if not ours:
        return
    best = min(ours, key=lambda r: med[r])
    print()
    if "seed" in med and "psql-f" in med:
        ratio = med[best] / med["seed"]
        print(
            f"best: {best} {med[best]:.2f} s: {ratio:.3f}x the seed pipeline "
            f"({'PASS' if ratio <= 0.8 else 'FAIL'} <= 0.8), {med[best] / med['psql-f']:.3f}x "
            f"psql -f ({'PASS' if med[best] < med['psql-f'] else 'FAIL'} < 1)"
        )
    peak = max(rss[r] for r in ours) / 1024
    print(f"peak RSS of pgdeck: {peak:.0f} MB ({'PASS' if peak < 150 else 'FAIL'} < 150 MB)")
    print()
    print("where the time went (pgdeck's report, the median run of each):")
    for r in ours:
        runs_of = sorted(reports[r], key=lambda rep: rep["ttr_seconds"])
        rep = runs_of[len(runs_of) // 2]
        split = rep["time_split"]
        phases = {p["name"]: p["seconds"] for p in rep["phases"]}
        print(
            f"- {r}: ttr {rep['ttr_seconds']:.2f} s (restore {phases.get('restore', 0):.2f}, "
            f"validate {phases.get('validate', 0):.2f}); download {split['download_seconds']:.2f}, "
            f"decompress {split['decompress_seconds']:.2f}, main thread reading "
            f"{split['reading_seconds']:.2f} + waiting {split['waiting_for_data_seconds']:.2f}"
            + (
                f", durable flush {split['durable_flush_seconds']:.2f}"
                if "durable_flush_seconds" in split
                else ""
            )
        )
        par = rep.get("parallel")
        if par:
            print(
                f"  largest spool {par['largest_spool_bytes'] / 1e6:.1f} MB "
                f"({par['spooled_tables']} tables); post-data {par['postdata_statements']} "
                f"statements, {par['postdata_seconds']:.2f} s from the first to the end"
            )
            for s in par["sessions"]:
                print(
                    f"  session {s['session']}: {s['tables']} tables, "
                    f"{s['copy_bytes'] / 1e6:.1f} MB, COPY {s['copy_seconds']:.2f} s "
                    f"(of it waiting for the reader {s['copy_waiting_seconds']:.2f}), "
                    f"post-data {s['postdata_statements']} in {s['postdata_seconds']:.2f} s"
                )


if __name__ == "__main__":
    main()
