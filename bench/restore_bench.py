"""Restore speed: ``pgdeck restore`` against the team's current procedure, side by side.

The baseline is what the team's bash script does: download the object to stdout, pipe it
through ``gzip -dc`` into ``psql``. pgdeck does the same streaming, plus preflight, scope
filtering, integrity checks while streaming, per-table row counts, validation (row counts,
schema objects, foreign-key orphans) and the archived report. Each run restores into an
equally fresh local PostgreSQL; the two alternate, so drift on a shared machine hits both.

    python bench/restore_bench.py [--rows 3000000] [--rounds 3]

Prints per round the seconds of each, the ratio pgdeck/baseline, the medians, and
pgdeck's peak resident memory. Targets: median ratio <= 1.10, memory < 150 MB.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import localpg  # noqa: E402

BUCKET = "bench-restore"
KEY = "spilo/acid-bench/0b000000-0000-4000-8000-00000000beef/logical_backups/1763600000.sql.gz"
PYTHON = sys.executable

SOURCE_SQL = """
CREATE DATABASE shop;
\\connect shop
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, created timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                     at timestamptz NOT NULL, total numeric(12,2), note text);
CREATE INDEX orders_customer ON orders (customer);
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', now() - g * interval '1 minute'
  FROM generate_series(1, 200000) g;
INSERT INTO orders SELECT g, 1 + (g % 200000), now() - g * interval '1 second', (g % 10000) / 100.0,
  md5(g::text) || ' ' || md5((g * 7)::text)
  FROM generate_series(1, :rows) g;
"""

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


def make_dump(cache: Path, rows: int) -> Path:
    gz = cache / f"dump-{rows}.sql.gz"
    if gz.exists():
        return gz
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pgdeck-bench-src-"))
    pg = localpg.create(work / "data")
    try:
        pg.start()
        env = {**os.environ, **pg.env()}
        print(f"building the source cluster ({rows:,} order rows) ...", file=sys.stderr)
        subprocess.run(
            [
                str(pg.bindir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                f"rows={rows}",
                "-d",
                "postgres",
            ],
            input=SOURCE_SQL,
            text=True,
            env=env,
            check=True,
        )
        raw = work / "dump.sql"
        with raw.open("wb") as f:
            subprocess.run([str(pg.bindir / "pg_dumpall")], env=env, check=True, stdout=f)
        with raw.open("rb") as src, gzip.open(gz.with_suffix(".tmp"), "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        gz.with_suffix(".tmp").rename(gz)
        print(
            f"dump: {raw.stat().st_size / 1e6:.0f} MB of SQL, {gz.stat().st_size / 1e6:.0f} MB gzip",
            file=sys.stderr,
        )
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return gz


def fresh_target() -> tuple[localpg.LocalPostgres, Path]:
    work = Path(tempfile.mkdtemp(prefix="pgdeck-bench-tgt-"))
    pg = localpg.create(work / "data")
    pg.start()
    return pg, work


def timed(
    cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the child tree's largest process, stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=shell, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {cmd}")
    return seconds, usage.ru_maxrss, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--rows", type=int, default=3_000_000, help="order rows in the source (3M: ~350 MB of SQL)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pgdeck" / "bench"
    gz = make_dump(cache, args.rows)
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
    cfg = work / "config.yaml"
    cfg.write_text(
        json.dumps(
            {
                "kubernetes": {"enabled": False},
                "storage": [{"url": f"s3://{BUCKET}/spilo", "endpoint_url": endpoint}],
                "cache": str(work / "cache"),
                "archive": str(work / "archive"),
            }
        )
    )
    rows: list[tuple[float, float, float, int]] = []
    try:
        for r in range(args.rounds):
            order = ("baseline", "pgdeck") if r % 2 == 0 else ("pgdeck", "baseline")
            result: dict[str, float] = {}
            ttr = 0.0
            rss = 0
            for which in order:
                pg, twork = fresh_target()
                try:
                    if which == "baseline":
                        cmd = (
                            f"{PYTHON} -c '{DOWNLOAD}' {endpoint} {BUCKET} {KEY} | gzip -dc | "
                            f"{psql} -X -q -f - -d '{pg.dsn()}' >/dev/null 2>&1"
                        )
                        result[which], _, _ = timed(cmd, shell=True, env=env)
                    else:
                        cmd = [
                            PYTHON,
                            "-m",
                            "tui.cli",
                            "--config",
                            str(cfg),
                            "restore",
                            f"s3://{BUCKET}/{KEY}",
                            "--target",
                            pg.dsn(),
                            "--yes",
                            "--json",
                        ]
                        result[which], rss, out = timed(cmd, env={**env, "PYTHONPATH": str(ROOT)})
                        report = json.loads(out)
                        assert report["status"] == "succeeded", report.get("error")
                        ttr = report["ttr_seconds"]
                finally:
                    pg.destroy()
                    shutil.rmtree(twork, ignore_errors=True)
            rows.append((result["baseline"], result["pgdeck"], ttr, rss))
            print(
                f"round {r + 1}: baseline {result['baseline']:.2f} s  pgdeck {result['pgdeck']:.2f} s "
                f"(its ttr {ttr:.2f} s)  ratio {result['pgdeck'] / result['baseline']:.3f}  rss {rss / 1024:.0f} MB",
                flush=True,
            )
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(r[0] for r in rows)
    ours = statistics.median(r[1] for r in rows)
    ratio = statistics.median(r[1] / r[0] for r in rows)
    peak = max(r[3] for r in rows) / 1024
    print()
    print("| measure | median |")
    print("|---|---:|")
    print(f"| baseline: download \\| gzip -dc \\| psql | {base:.2f} s |")
    print(f"| pgdeck restore (wall, incl. start-up, validation, report) | {ours:.2f} s |")
    print(
        f"| ratio pgdeck / baseline | {ratio:.3f} ({'PASS' if ratio <= 1.10 else 'FAIL'} <= 1.10) |"
    )
    print(f"| pgdeck peak RSS | {peak:.0f} MB ({'PASS' if peak < 150 else 'FAIL'} < 150 MB) |")


if __name__ == "__main__":
    main()
