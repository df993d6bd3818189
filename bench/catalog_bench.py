"""Benchmark: the catalog against one serial ``list_objects_v2`` paginator.

The issue's requirement, measured here and never asserted as a time in a test: with
100 clusters x 720 hourly objects in the S3 test server, a cold catalog of everything
takes at most half the time of one serial ``list_objects_v2`` paginator over the whole
prefix (timed side by side in one run), a refresh after one new object per cluster at
most a tenth of that baseline, and memory stays under 150 MB.

Separate processes, so that the server and the measured client run on different cores
(as they would against real S3) and no measurement shares a heap with another:

* ``serve``: moto's S3 server (``ThreadedMotoServer``) in a child process, seeded
  through moto's in-process backend (HTTP puts cost ~5 ms each). It prints its URL
  and the object counts as one JSON line, then reads commands on stdin: ``add`` puts
  one new backup per cluster (and an hour of WAL for the clusters that archive WAL),
  ``quit`` stops it.
* ``measure``: one measurement (``baseline``, ``cold`` or ``refresh``) in a fresh child
  process, which reports its seconds, its CPU seconds, what it found and its own peak
  RSS as JSON; the parent adds the server's CPU seconds over the same span.
* the parent runs the rounds (alternating baseline and cold between rounds), checks
  the counts and prints the table.
* every run reaches the server through the counting proxy (``_s3proxy.py``, its own
  process), and the S3 model (``_s3model.py``) says what each run's requests would
  take against S3 (bench/README.md, "The S3 model").

Usage::

    .venv/bin/python bench/catalog_bench.py                      # 100 x 720, 3 rounds
    .venv/bin/python bench/catalog_bench.py --clusters 10 --hours 72 --rounds 1
    .venv/bin/python bench/catalog_bench.py --profile /tmp/prof   # cProfile, all threads

Exits 0 whatever the timings (it is a measurement, not a test); 1 when a run crashed
or found the wrong number of objects (then its times mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _profiling import ThreadProfiles, rss_mb  # bench/_profiling.py, beside this script
from _s3model import PAGE_KEYS, S3Model, figures  # bench/_s3model.py
from _s3proxy import take  # bench/_s3proxy.py
from _s3server import (  # bench/_s3server.py, beside this script
    BUCKET,
    REGION,
    Crash,
    cpu_seconds,
    fake_aws_env,
    s3_backend,
    start_http,
    start_proxy,
    stop_child,
    stop_proxy,
)

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "spilo"
START_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z; the first hourly backup
# In the few clusters that archive WAL into the same bucket (<uid>/wal/16/...): spilo's
# archive_timeout of 30 minutes makes even an idle cluster ship two segments an hour.
WAL_SEGMENTS_PER_HOUR = 2

TARGET_COLD = 0.5  # cold / baseline
TARGET_REFRESH = 0.1  # refresh / baseline
TARGET_RSS_MB = 150.0
# Under the S3 model (bench/_s3model.py), from the request traces:
MODEL_COLD = 0.2  # cold / baseline
MODEL_REFRESH = 0.05  # refresh / baseline
FEW = 10  # a cold catalog's requests beyond one per cluster ("a few")
SENSITIVITY_PER_KEY_S = 0.0001  # a full page at twice a small request's 100 ms


# --- the bucket's layout ---------------------------------------------------------------
_WORDS = [
    "billing",
    "orders",
    "users",
    "search",
    "events",
    "payments",
    "ledger",
    "catalog",
    "inventory",
    "auth",
    "reports",
    "metrics",
    "notify",
    "media",
    "geo",
    "pricing",
    "audit",
    "shipping",
    "crm",
    "chat",
]


@dataclass
class ClusterPlan:
    """One cluster's objects: hourly logical backups under one or two uids, maybe WAL."""

    name: str
    uids: list[str]  # oldest first; the last one is the live cluster's
    split: int  # hour at which the second uid took over (cluster recreated)
    base_size: int
    growth: float
    wal: int  # WAL segments per hour, 0: no WAL in this bucket
    rng: random.Random
    hours: int = 0  # hourly backups written so far
    wal_segments: int = 0
    backups: int = 0
    objects: int = 0

    def backup(self, hour: int) -> tuple[str, int]:
        uid = self.uids[-1] if hour >= self.split else self.uids[0]
        # The CronJob fires on the hour; dump.sh names the object after its upload time.
        epoch = START_EPOCH + hour * 3600 + self.rng.randint(20, 600)
        size = int(self.base_size * (1 + self.growth * hour / 720) * self.rng.uniform(0.97, 1.03))
        return f"{PREFIX}/{self.name}/{uid}/logical_backups/{epoch:010d}.sql.gz", size

    def wal_objects(self, hour: int) -> Iterator[tuple[str, int]]:
        uid = self.uids[-1]
        root = f"{PREFIX}/{self.name}/{uid}/wal/16"
        for _ in range(self.wal):
            seg = self.wal_segments
            self.wal_segments += 1
            name = f"00000001{seg // 256:08X}{seg % 256:08X}"
            yield f"{root}/wal_005/{name}.lz4", self.rng.randint(2_000_000, 16_000_000)
        if hour % 24 == 0:  # a daily base backup
            seg = self.wal_segments
            base = f"base_00000001{seg // 256:08X}{seg % 256:08X}_00000028"
            yield f"{root}/basebackups_005/{base}_backup_stop_sentinel.json", 1_500
            for part in range(1, 3):
                yield (
                    f"{root}/basebackups_005/{base}/tar_partitions/part_{part}.tar.lz4",
                    self.rng.randint(100_000_000, 1_000_000_000),
                )

    def objects_for_hour(self, hour: int) -> Iterator[tuple[str, int, bool]]:
        key, size = self.backup(hour)
        yield key, size, True
        if self.wal:
            for wkey, wsize in self.wal_objects(hour):
                yield wkey, wsize, False


def plan(
    clusters: int, hours: int, wal_per_hour: int = WAL_SEGMENTS_PER_HOUR, seed: int = 7
) -> list[ClusterPlan]:
    rng = random.Random(seed)
    out = []
    for i in range(clusters):
        two = i % 16 == 3  # a few clusters were deleted and created again: two uids
        uids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(1 + two)]
        out.append(
            ClusterPlan(
                name=f"acid-{_WORDS[i % len(_WORDS)]}-{i:03d}",
                uids=uids,
                split=int(hours * rng.uniform(0.2, 0.7)) if two else 0,
                base_size=int(10 ** rng.uniform(5.5, 9.5)),  # ~300 KB .. ~3 GB compressed
                growth=rng.uniform(0.0, 0.6),
                wal=wal_per_hour if i % 30 == 7 else 0,  # a few clusters archive WAL here
                rng=random.Random(rng.getrandbits(32)),
            )
        )
    return out


# --- the S3 server (child process) -----------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    backend = s3_backend()
    clusters = plan(args.clusters, args.hours, args.wal_per_hour)

    def put(c: ClusterPlan, hour: int) -> None:
        for key, size, is_backup in c.objects_for_hour(hour):
            # A tiny body, then the size a listing reports: real sizes would need
            # gigabytes in the server, and a listing never reads the body.
            obj = backend.put_object(BUCKET, key, b"x", encryption="AES256")
            obj.contentsize = size
            c.objects += 1
            c.backups += is_backup
        c.hours = hour + 1

    def counts() -> dict[str, int]:
        return {
            "backups": sum(c.backups for c in clusters),
            "objects": sum(c.objects for c in clusters),
            "clusters": len(clusters),
        }

    t0 = time.perf_counter()
    for c in clusters:
        for hour in range(args.hours):
            put(c, hour)
    seeded = time.perf_counter() - t0

    server, url = start_http()
    print(json.dumps({"url": url, "seed_s": seeded, **counts()}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "add":
            for c in clusters:
                put(c, c.hours)
            print(json.dumps(counts()), flush=True)
        elif cmd == "quit":
            break
    server.stop()
    return 0


# --- one measurement (child process) ---------------------------------------------------
def measure(args: argparse.Namespace) -> int:
    import boto3

    from services.catalog import Catalog, CatalogProgress
    from services.config import CatalogConfig, Config, KubernetesConfig, StorageLocation

    rss_imported = rss_mb()
    cache = Path(args.cache_dir)
    config = Config(
        path=None,
        kubernetes=KubernetesConfig(enabled=False),
        storage=(StorageLocation(url=f"s3://{BUCKET}/{PREFIX}", endpoint_url=args.endpoint),),
        cache=cache,
        archive=cache / "archive",
        catalog=CatalogConfig(workers=args.workers) if args.workers else CatalogConfig(),
    )
    out: dict[str, Any] = {"workers": config.catalog.workers}
    # Phase boundaries on the host's monotonic clock, the proxy's: the model runs the
    # phases in turn (the names listing before the clusters' listings).
    marks: list[tuple[str, float]] = out.setdefault("marks", [])

    def baseline() -> None:
        marks.append(("list", time.monotonic()))
        client = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION)
        keys: list[tuple[str, int]] = []
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
            for obj in page.get("Contents", ()):
                keys.append((obj["Key"], obj["Size"]))
        out["found"] = len(keys)

    def catalog_run() -> None:
        marks.append(("names", time.monotonic()))
        catalog = Catalog(config)
        if args.mode == "refresh":
            t = time.perf_counter()
            cached = catalog.load_cached()
            out["load_s"] = time.perf_counter() - t
            out["cached"] = sum(c.backups for c in cached.clusters)

        def progress(p: CatalogProgress) -> None:
            if p.stage == "storage" and p.done == 0:  # the names are in, the scans start
                marks.append(("listings", time.monotonic()))

        state = catalog.refresh(progress=progress)
        out["found"] = sum(c.backups for c in state.clusters)
        out["clusters"] = len(state.clusters)
        out["problems"] = [f"{p.source}: {p.message}" for p in state.problems]
        out["newest"] = max(
            (c.last_backup.time.timestamp() for c in state.clusters if c.last_backup),
            default=0,
        )
        catalog.cache.close()

    run = baseline if args.mode == "baseline" else catalog_run
    profiled = ThreadProfiles() if args.profile else None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    t0 = time.perf_counter()
    if profiled is not None:
        profiled.run(run)
    else:
        run()
    out["seconds"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime - cpu0
    if profiled is not None:
        profiled.dump(args.profile)
    out["rss_mb"] = rss_mb()
    out["rss_imported_mb"] = rss_imported
    print(json.dumps(out), flush=True)
    return 0


# --- the rounds (parent) ---------------------------------------------------------------
def run_child(
    mode: str, args: argparse.Namespace, endpoint: str, cache: Path, server_pid: int, profile: str
) -> dict:
    """One measured run through the counting proxy at ``endpoint``, its trace attached."""
    cmd = [sys.executable, __file__, "measure", mode, "--endpoint", endpoint]
    cmd += ["--cache-dir", str(cache), "--workers", str(args.workers)]
    if profile:
        cmd += ["--profile", profile]
    before = cpu_seconds(server_pid)
    p = subprocess.run(cmd, env=args.env, capture_output=True, text=True, cwd=ROOT)
    server_cpu = cpu_seconds(server_pid) - before
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise Crash(f"{mode} run failed (exit {p.returncode}):\n{p.stderr.strip()}")
    res = json.loads(lines[-1])
    res["server_cpu_s"] = server_cpu
    res["trace"] = take(endpoint)
    return res


def rounds(args: argparse.Namespace) -> int:
    env = args.env = fake_aws_env(dict(os.environ))
    print(
        f"seeding {args.clusters} clusters x {args.hours} hourly backups into moto's S3 "
        "server (child process)...",
        file=sys.stderr,
        flush=True,
    )
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--clusters", str(args.clusters)]
        + ["--hours", str(args.hours), "--wal-per-hour", str(args.wal_per_hour)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert server.stdin is not None and server.stdout is not None
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    proxy = None
    try:
        line = server.stdout.readline()
        if not line:
            raise Crash("the S3 server child exited before printing its URL")
        info = json.loads(line)
        proxy, endpoint = start_proxy(info["url"], env, args.inject_ms)
        print(
            f"seeded {info['backups']:,} backups + {info['objects'] - info['backups']:,} WAL "
            f"objects in {info['seed_s']:.1f} s; server at {info['url']}, reached through "
            f"the counting proxy at {endpoint}",
            file=sys.stderr,
            flush=True,
        )
        profile_dir = Path(args.profile) if args.profile else None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)

        def prof(name: str, r: int) -> str:
            return str(profile_dir / f"{name}-r{r}.prof") if profile_dir else ""

        for r in range(1, args.rounds + 1):
            cache = Path(tempfile.mkdtemp(prefix="pgdeck-bench-"))
            try:
                row: dict[str, Any] = {"round": r}
                order = ("baseline", "cold") if r % 2 else ("cold", "baseline")
                row["order"] = ",".join(order)
                for mode in order:
                    res = run_child(mode, args, endpoint, cache, server.pid, prof(mode, r))
                    want = info["objects"] if mode == "baseline" else info["backups"]
                    check(errors, r, mode, res, want, info["clusters"])
                    row[mode] = res
                server.stdin.write("add\n")
                server.stdin.flush()
                info = json.loads(server.stdout.readline())
                res = run_child("refresh", args, endpoint, cache, server.pid, prof("refresh", r))
                check(errors, r, "refresh", res, info["backups"], info["clusters"])
                if res.get("newest", 0) <= row["cold"].get("newest", 0):
                    errors.append(f"round {r} refresh: the newest backup did not move forward")
                row["refresh"] = res
                rows.append(row)
                print(
                    f"round {r}: baseline {row['baseline']['seconds']:.2f} s, "
                    f"cold {row['cold']['seconds']:.2f} s, "
                    f"refresh {row['refresh']['seconds']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    except Crash as exc:
        print(f"crashed: {exc}", file=sys.stderr)
        return 1
    finally:
        if proxy is not None:
            stop_proxy(proxy)
        stop_child(server)
    report(args, info, rows)
    report_model(args, info, rows)
    for e in errors:
        print(f"WRONG: {e}")
    return 1 if errors else 0


def check(errors: list[str], r: int, mode: str, res: dict, want: int, clusters: int) -> None:
    if res["found"] != want:
        errors.append(f"round {r} {mode}: found {res['found']:,} objects, expected {want:,}")
    if mode != "baseline":
        if res.get("clusters") != clusters:
            errors.append(f"round {r} {mode}: {res.get('clusters')} clusters, expected {clusters}")
        for p in res.get("problems", ()):
            errors.append(f"round {r} {mode}: problem {p}")


def report(args: argparse.Namespace, info: dict, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    import boto3
    import moto

    modes = ("baseline", "cold", "refresh")
    print()
    print(
        f"catalog bench: {args.clusters} clusters x {args.hours} hourly backups "
        f"({info['backups']:,} backups + {info['objects'] - info['backups']:,} WAL objects "
        f"at the end) under s3://{BUCKET}/{PREFIX}/; moto {moto.__version__} S3 server in "
        f"a child process, boto3 {boto3.__version__}, {os.cpu_count()} CPUs, catalog workers "
        f"{args.workers or 'default'}"
    )
    head = f"{'round':>6}  {'order':<14} {'baseline s':>10} {'cold s':>8} {'refresh s':>9}"
    head += f" {'cold/base':>9} {'refr/base':>9} {'peak RSS MB c/r':>16}"
    print(head)
    print("-" * len(head))
    for row in rows:
        b, c, f = (row[m]["seconds"] for m in modes)
        rss = "/".join(f"{row[m]['rss_mb']:.0f}" for m in ("cold", "refresh"))
        print(
            f"{row['round']:>6}  {row['order']:<14} {b:>10.2f} {c:>8.2f} {f:>9.2f}"
            f" {c / b:>9.3f} {f / b:>9.3f} {rss:>16}"
        )

    def med(mode: str, key: str) -> float:
        return statistics.median(r[mode].get(key, 0.0) for r in rows)

    base, cold, refresh = (med(m, "seconds") for m in modes)
    print("-" * len(head))
    print(
        f"{'median':>6}  {'':<14} {base:>10.2f} {cold:>8.2f} {refresh:>9.2f}"
        f" {cold / base:>9.3f} {refresh / base:>9.3f}"
    )
    if len(rows) > 1:
        spread = [
            max(r[m]["seconds"] for r in rows) / min(r[m]["seconds"] for r in rows) for m in modes
        ]
        print(
            "spread between rounds (max/min): "
            + ", ".join(f"{m} {x:.2f}" for m, x in zip(modes, spread, strict=True))
        )
    print()
    print("where the time goes (medians): wall, CPU of the measured client, CPU of the server")
    for m in modes:
        extra = f", of which load_cached {med(m, 'load_s'):.2f} s" if m == "refresh" else ""
        print(
            f"  {m:<9} wall {med(m, 'seconds'):7.2f} s   client CPU {med(m, 'cpu_s'):7.2f} s"
            f"   server CPU {med(m, 'server_cpu_s'):7.2f} s{extra}"
        )
    peak = max(r[m]["rss_mb"] for r in rows for m in ("cold", "refresh"))
    imported = max(r[m]["rss_imported_mb"] for r in rows for m in ("cold", "refresh"))
    verdict = [
        ("cold / baseline", f"{cold / base:.3f}", f"<= {TARGET_COLD}", cold / base <= TARGET_COLD),
        (
            "refresh / baseline",
            f"{refresh / base:.3f}",
            f"<= {TARGET_REFRESH}",
            refresh / base <= TARGET_REFRESH,
        ),
        (
            "peak RSS of pgdeck runs",
            f"{peak:.0f} MB ({imported:.0f} after imports)",
            f"< {TARGET_RSS_MB:.0f} MB",
            peak < TARGET_RSS_MB,
        ),
    ]
    print()
    for name, value, target, ok in verdict:
        print(f"  {name:<24} {value:<28} target {target:<10} {'PASS' if ok else 'FAIL'}")


def report_model(args: argparse.Namespace, info: dict, rows: list[dict[str, Any]]) -> None:
    """The runs' request traces: what each asked of S3, and what that would take there."""
    if not rows:
        return
    model = S3Model(latency_s=args.latency_ms / 1000, per_key_s=args.per_key_ms / 1000)
    modes = ("baseline", "cold", "refresh")

    def figs(row: dict[str, Any], mode: str, m: S3Model = model) -> Any:
        res = row[mode]
        workers = 1 if mode == "baseline" else res["workers"]
        return figures(res["trace"], res["marks"], workers, m)

    def med(mode: str, m: S3Model = model) -> float:
        return statistics.median(figs(r, mode, m).modelled_s for r in rows)

    workers = rows[0]["cold"]["workers"]
    print()
    print(
        f"S3 model: {model.describe()}; a listing page holds at most {PAGE_KEYS:,} keys. "
        f"Each run's requests as the proxy saw them (round 1), and the seconds that trace "
        f"takes under the model (median of the rounds) with pgdeck's {workers} workers "
        "(catalog.workers) and the baseline's 1. 'replay' puts each request's measured "
        "duration on the same schedule: near the wall time, the schedule is what the client "
        "did. 'CPU' is the client's own (boto3 parsing the answers, pgdeck's work), one "
        "process on one GIL: 'with CPU' adds it to the serial baseline's model and takes the "
        "larger of the two for pgdeck's, a bound the pure model does not see."
    )
    head = (
        f"  {'run':<9} {'requests by kind':<22} {'keys':>8} {'MB out':>7} {'peak':>5}"
        f" {'wall s':>7} {'replay s':>8} {'CPU s':>6} {'model s':>8} {'model/base':>10}"
        f" {'with CPU':>8} {'/base':>6}"
    )
    print(head)
    base = med("baseline")

    def cpu(mode: str) -> float:
        return statistics.median(r[mode]["cpu_s"] for r in rows)

    def bound(mode: str) -> float:
        return med(mode) + cpu(mode) if mode == "baseline" else max(med(mode), cpu(mode))

    for mode in modes:
        f = figs(rows[0], mode)
        c = f.counts
        wall = statistics.median(r[mode]["seconds"] for r in rows)
        replay = statistics.median(figs(r, mode).replay_s for r in rows)
        print(
            f"  {mode:<9} {c.kinds():<22} {c.keys:>8,} {c.bytes_out / 1e6:>7.2f} {c.peak:>5}"
            f" {wall:>7.2f} {replay:>8.2f} {cpu(mode):>6.2f} {med(mode):>8.2f}"
            f" {med(mode) / base:>10.3f} {bound(mode):>8.2f} {bound(mode) / bound('baseline'):>6.3f}"
        )
    cold, refresh = figs(rows[0], "cold").counts, figs(rows[0], "refresh").counts
    n = info["clusters"]
    verdict = [
        (
            "cold: requests",
            f"{cold.requests:,} for {n} clusters",
            f"<= {n} + {FEW}",
            cold.requests <= n + FEW,
        ),
        (
            "cold: model / baseline",
            f"{med('cold') / base:.3f}",
            f"<= {MODEL_COLD}",
            med("cold") / base <= MODEL_COLD,
        ),
        (
            "refresh: keys listed",
            f"{refresh.keys:,} ({n} new backups)",
            f"= {n}",
            refresh.keys == n,
        ),
        (
            "refresh: model / baseline",
            f"{med('refresh') / base:.3f}",
            f"<= {MODEL_REFRESH}",
            med("refresh") / base <= MODEL_REFRESH,
        ),
    ]
    for name, value, target, ok in verdict:
        print(f"  {name:<26} {value:<26} bar {target:<12} {'PASS' if ok else 'over'}")
    alt = S3Model(latency_s=model.latency_s, per_key_s=SENSITIVITY_PER_KEY_S)
    alt_base = med("baseline", alt)
    print(
        f"  with {alt.per_key_s * 1000:g} ms per listed key (a full page at "
        f"{(alt.latency_s + PAGE_KEYS * alt.per_key_s) * 1000:.0f} ms; AWS publishes no such "
        f"figure): cold / baseline {med('cold', alt) / alt_base:.3f}, refresh / baseline "
        f"{med('refresh', alt) / alt_base:.3f}"
    )
    if args.inject_ms:
        injected = S3Model(latency_s=args.inject_ms / 1000, per_key_s=0.0)
        print(
            f"  check: every request held {args.inject_ms:g} ms in the proxy; the model at "
            "that latency (no per-key cost) against the measured span from the run's first "
            "request to its last: "
            + ", ".join(
                f"{m} {med(m, injected):.2f} s vs "
                f"{statistics.median(figs(r, m).span_s for r in rows):.2f} s (replay "
                f"{statistics.median(figs(r, m).replay_s for r in rows):.2f} s, median "
                f"request {figs(rows[0], m).median_request_s * 1000:.0f} ms)"
                for m in modes
            )
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--hours", type=int, default=720, help="hourly backups per cluster")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--wal-per-hour", type=int, default=WAL_SEGMENTS_PER_HOUR)
    ap.add_argument("--workers", type=int, default=0, help="catalog workers (0: pgdeck's default)")
    ap.add_argument("--profile", default="", help="directory for a cProfile of each run")
    ap.add_argument("--latency-ms", type=float, default=S3Model().latency_s * 1000)
    ap.add_argument("--per-key-ms", type=float, default=S3Model().per_key_s * 1000)
    ap.add_argument(
        "--inject-ms",
        type=float,
        default=0.0,
        help="hold every request this long in the proxy (checks the model against wall time)",
    )
    sub = ap.add_subparsers(dest="role")
    sp = sub.add_parser("serve", help=argparse.SUPPRESS)
    sp.add_argument("--clusters", type=int, default=100)
    sp.add_argument("--hours", type=int, default=720)
    sp.add_argument("--wal-per-hour", type=int, default=WAL_SEGMENTS_PER_HOUR)
    mp = sub.add_parser("measure", help=argparse.SUPPRESS)
    mp.add_argument("mode", choices=("baseline", "cold", "refresh"))
    mp.add_argument("--endpoint", required=True)
    mp.add_argument("--cache-dir", required=True)
    mp.add_argument("--profile", default="")
    mp.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    if args.role == "serve":
        return serve(args)
    if args.role == "measure":
        return measure(args)
    return rounds(args)


if __name__ == "__main__":
    sys.exit(main())
