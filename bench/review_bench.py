"""Benchmark: the weekly review with its encryption checks, against one serial HEAD loop.

Issue 7's figure, measured here and never asserted as a time in a test: a review of 500
clusters x 168 hourly objects (a week) with SSE checks finishes in under 60 s against
the S3 test server. The review's expensive part is one HEAD per object of the window
(a listing does not say how an object is encrypted), so each pgdeck run starts from an
empty cache, where every one of those HEADs is really made.

The world, built once per bench run:

* S3: moto's server (``ThreadedMotoServer``) in a child process, one bucket, the objects
  put straight into moto's backend (HTTP puts cost ~5 ms each), all ``AES256`` except
  five stored without encryption (the findings the review must make).
* Kubernetes: a manifests directory written with ``sandbox.kube``: one
  ``postgresql`` and its logical-backup CronJob per cluster, and an OperatorConfiguration
  with ``logical_backup_s3_sse: AES256`` (what the review expects the objects to carry).
* The review's clock is fixed (``NOW``), so every round reviews the same window; the
  window is the objects' span (``review.since_days`` = hours / 24, 7 days at 168).

The measurements, each in a fresh child process (rounds alternate which one goes first):

* ``cold`` (pgdeck): ``Catalog(config).refresh()`` then ``run_review(catalog, state=state)``
  over a fresh, empty pgdeck cache; the refresh (split into the Kubernetes snapshot and
  the storage listing) and the review are timed apart, and the HEADs are counted.
* ``warm`` (pgdeck): right after ``cold``, a new process over the same cache: the refresh
  finds nothing new and the SSE answers are all cached, so the review makes no HEAD.
* ``baseline``: what a team's script would do: one boto3 client, a ``list_objects_v2``
  paginator over the whole prefix, then ``head_object`` for each object of the window,
  one after the other, reading ``ServerSideEncryption``.
* ``discover`` then ``checked`` (when the catalog has ``check_new_sse``): a refresh and
  ``Catalog.check_new_sse()`` until no object's encryption is unknown, over a fresh cache,
  then the review in a new process over that cache, which must make no HEAD.

Every run reaches moto through the counting proxy (``_s3proxy.py``), and the S3 model
(``_s3model.py``) says what each run's requests would take against S3, at the measured
size and at the figure's; see bench/README.md, "The S3 model".

Sampled by default, and said so in the output: moto spends ~3.5 ms of CPU on each HEAD
(with a new TCP connection each, since werkzeug's server closes every connection), in
one process, so 84,000 HEADs cost the server ~5 minutes of CPU whoever sends them. A
full-size cold review, let alone three rounds of it and of a serial baseline, does not
fit in a bench run of a few minutes. So the world measured is ``--sample-clusters`` (50)
of the figure's ``--clusters`` (500), every one of its objects HEADed, and the medians
are also shown scaled to the figure (x10): each cluster costs one listing and one HEAD
per object, so the work is linear in the clusters. The figure's other clusters are
seeded too, under ``spilo-unlisted/``, which nobody lists: moto's listings cost in
proportion to the whole bucket, so the sampled listings cost what they would in the full
one. ``--sample-clusters 0`` measures the whole figure (tens of minutes);
``--baseline-clusters B`` then HEADs a sample of B clusters in the baseline and scales
its HEAD time (every tenth of 500 for B = 50, the planted objects among them).

Each child reports its wall and CPU seconds and its peak RSS, and reads the server's CPU
seconds (``/proc``) at its phase boundaries, so the table shows where the time goes.

Usage::

    .venv/bin/python bench/review_bench.py                       # 50 of 500 x 168, 3 rounds
    .venv/bin/python bench/review_bench.py --sample-clusters 10 --rounds 1   # quick
    .venv/bin/python bench/review_bench.py --sample-clusters 0 --baseline-clusters 50 --rounds 1
    .venv/bin/python bench/review_bench.py --profile /tmp/prof    # cProfile, all threads

Exits 0 whatever the timings (it is a measurement, not a test); 1 when a run crashed or
found the wrong objects or findings (then its times mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _profiling import ThreadProfiles, rss_mb  # bench/_profiling.py, beside this script
from _s3model import S3Model, figures  # bench/_s3model.py
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PREFIX = "spilo"
FILL_PREFIX = "spilo-unlisted"  # the figure's clusters a sampled run does not measure
NAMESPACE = "db"
# The review's clock, fixed so that every round sees the same window: 20 minutes past
# the hour, the run on the hour is still within its grace and counts as pending.
NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
TOP = NOW.replace(minute=0)
SSE = "AES256"
PLAIN_CLUSTERS = frozenset({3, 13, 23, 33, 43})  # one object each stored without SSE
PLAIN_HOUR = 42  # hours before TOP of that object

TARGET_S = 60.0
# Under the S3 model (bench/_s3model.py), at the figure's size:
MODEL_COLD_S = 60.0  # refresh + review, every SSE answer from a HEAD
MODEL_CHECKED_S = 5.0  # refresh + review, the SSE answers checked at discovery


# --- the world ---------------------------------------------------------------------------
_WORDS = ["billing", "orders", "users", "search", "events", "payments", "ledger", "catalog"]


def clusters_plan(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Names, uids and a steady dump size per cluster (no size anomaly to find)."""
    rng = random.Random(seed)
    return [
        {
            "i": i,
            "name": f"acid-{_WORDS[i % len(_WORDS)]}-{i:03d}",
            "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "size": int(10 ** rng.uniform(5.5, 9.0)),
            "seed": rng.getrandbits(32),
        }
        for i in range(n)
    ]


def objects_of(c: dict[str, Any], hours: int, prefix: str = PREFIX) -> list[tuple[str, int, bool]]:
    """(key, size, encrypted) of one cluster: a dump 3 minutes after each hourly run,
    the newest at TOP + 3 min, oldest first."""
    rng = random.Random(c["seed"])
    out = []
    for k in range(hours - 1, -1, -1):
        epoch = int((TOP - timedelta(hours=k, minutes=-3)).timestamp())
        key = f"{prefix}/{c['name']}/{c['uid']}/logical_backups/{epoch}.sql.gz"
        size = int(c["size"] * rng.uniform(0.98, 1.02))
        plain = c["i"] in PLAIN_CLUSTERS and k == PLAIN_HOUR
        out.append((key, size, not plain))
    return out


def write_manifests(directory: Path, clusters: list[dict[str, Any]]) -> None:
    """What ``kubectl get postgresql,cronjob,operatorconfiguration -o yaml`` would write."""
    import yaml

    from sandbox import kube as ko

    directory.mkdir(parents=True, exist_ok=True)
    pgs, cjs = [], []
    for c in clusters:
        pg = ko.postgresql(c["name"], NAMESPACE, uid=c["uid"], created=NOW - timedelta(days=60))
        pgs.append(pg)
        cjs.append(
            ko.cronjob(
                pg,
                schedule="0 * * * *",
                last_schedule=TOP,
                last_successful=TOP + timedelta(minutes=3),
                uid=str(uuid.UUID(int=c["seed"], version=4)),
            )
        )
    op = ko.operator_configuration(
        "postgres-operator",
        "postgres-operator",
        {"logical_backup_s3_bucket": BUCKET, "logical_backup_s3_sse": SSE},
    )
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for name, items in (("postgresqls", pgs), ("cronjobs", cjs), ("operator", [op])):
        text = yaml.dump(ko.kubectl_list(items), Dumper=dumper, sort_keys=False)
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


# --- the S3 server (child process) -------------------------------------------------------
def serve(args: argparse.Namespace) -> int:
    backend = s3_backend()
    t0 = time.perf_counter()
    objects = plain = 0
    plan = clusters_plan(max(args.clusters, args.fill))
    # The figure's other clusters, under a prefix nobody lists: moto's listings cost in
    # proportion to the whole bucket, so a sampled world keeps the full bucket's weight.
    for c in plan[args.clusters :]:
        for key, size, _ in objects_of(c, args.hours, FILL_PREFIX):
            backend.put_object(BUCKET, key, b"x", encryption=SSE).contentsize = size
    for c in plan[: args.clusters]:
        for key, size, encrypted in objects_of(c, args.hours):
            # A tiny body, then the size a listing and a HEAD report: real sizes would
            # need gigabytes in the server, and neither reads the body.
            if encrypted:
                obj = backend.put_object(BUCKET, key, b"x", encryption=SSE)
            else:
                obj = backend.put_object(BUCKET, key, b"x")
                plain += 1
            obj.contentsize = size
            objects += 1
    seeded = time.perf_counter() - t0
    server, url = start_http()
    info = {"url": url, "seed_s": seeded, "objects": objects, "plain": plain}
    info["unlisted"] = (len(plan) - args.clusters) * args.hours
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
    server.stop()
    return 0


# --- one measurement (child process) -----------------------------------------------------
def measure(args: argparse.Namespace) -> int:
    rss_imported = rss_mb()
    out: dict[str, Any] = {"mode": args.mode}
    server_pid = args.server_pid
    marks: dict[str, tuple[float, float, float]] = {}  # phase -> (wall, own CPU, server CPU)
    # The S3 model's phases, on the host's monotonic clock (the proxy's): requests in
    # one run in turn after those of the one before.
    phases: list[tuple[str, float]] = out.setdefault("phases", [])

    def mark(name: str) -> None:
        u = resource.getrusage(resource.RUSAGE_SELF)
        marks[name] = (time.perf_counter(), u.ru_utime + u.ru_stime, cpu_seconds(server_pid))
        phases.append((name, time.monotonic()))

    run = (baseline_run if args.mode == "baseline" else pgdeck_run)(args, out, mark)
    profiled = ThreadProfiles() if args.profile else None
    mark("start")
    if profiled is not None:
        profiled.run(run)
    else:
        run()
    mark("end")
    if profiled is not None:
        profiled.dump(args.profile)
    names = list(marks)
    for a, b in zip(names, names[1:], strict=False):
        out[f"{b}_s"] = marks[b][0] - marks[a][0]
        out[f"{b}_cpu_s"] = marks[b][1] - marks[a][1]
        out[f"{b}_server_cpu_s"] = marks[b][2] - marks[a][2]
    for i, key in enumerate(("seconds", "cpu_s", "server_cpu_s")):
        out[key] = marks["end"][i] - marks["start"][i]
    out["rss_mb"] = rss_mb()
    out["rss_imported_mb"] = rss_imported
    print(json.dumps(out), flush=True)
    return 0


def pgdeck_run(args: argparse.Namespace, out: dict[str, Any], mark: Any) -> Any:
    from services.catalog import Catalog, CatalogProgress
    from services.config import load_config
    from services.review import run_review

    config = load_config(args.config)
    out["workers"] = config.catalog.workers
    out["head_workers"] = getattr(config.catalog, "head_workers", config.catalog.workers)
    # The HEADs each run makes are counted by the proxy (run_child), not here.

    def run() -> None:
        catalog = Catalog(config, clock=lambda: NOW)

        def progress(p: CatalogProgress) -> None:
            if p.stage == "kubernetes" and p.done == p.total:
                mark("kube")
            elif p.stage == "storage" and p.done == 0:  # the names are in, the scans start
                out["phases"].append(("listings", time.monotonic()))

        state = catalog.refresh(progress=progress)
        mark("refresh")
        if args.mode == "discover":
            # What the console does after each refresh, here until nothing is left
            # unknown: the HEADs of the objects whose encryption the cache lacks.
            checked = unencrypted = 0
            while True:
                done = catalog.check_new_sse()  # type: ignore[attr-defined]
                checked += done.checked
                unencrypted += done.unencrypted
                out["problems"] = [f"{p.source}: {p.message}" for p in done.problems]
                if done.remaining == 0 or done.checked == 0 or done.problems:
                    break
            mark("discovered")
            out.update(checked=checked, unencrypted=unencrypted, remaining=done.remaining)
            out["signed"] = signed_heads(catalog)
            catalog.cache.close()
            return
        review = run_review(catalog, state=state)
        mark("review")
        out["signed"] = signed_heads(catalog)
        out["clusters"] = len(review.clusters)
        out["window_objects"] = sum(c.objects for c in review.clusters)
        out["problems"] = [f"{p.source}: {p.message}" for p in state.problems]
        out["warnings"] = review.warnings
        out["counts"] = review.counts()
        out["plain"] = sorted(
            e.ref
            for f in review.findings
            if f.check == "unencrypted"
            for e in f.evidence
            if e.kind == "object"
        )
        out["other_findings"] = [
            f"{f.severity} {f.check} {f.cluster}: {f.detail}"
            for f in review.findings
            if f.check != "unencrypted"
        ][:5]
        catalog.cache.close()

    return run


def signed_heads(catalog: Any) -> int:
    """HEADs the catalog's S3 stores signed themselves (``SignedHead``); the rest of a
    run's HEADs were boto3's (the first of each store, and any answer but a 200)."""
    return sum(
        getattr(getattr(store, "_signed", None), "signed", 0)
        for store in getattr(catalog, "_stores", {}).values()
    )


def baseline_run(args: argparse.Namespace, out: dict[str, Any], mark: Any) -> Any:
    import boto3

    def run() -> None:
        client = boto3.client("s3", endpoint_url=args.endpoint, region_name=REGION)
        start = int((NOW - timedelta(hours=args.hours)).timestamp())
        window: list[str] = []
        listed = 0
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=PREFIX + "/"
        ):
            for obj in page.get("Contents", ()):
                listed += 1
                key = obj["Key"]
                if "/logical_backups/" in key and int(key.rsplit("/", 1)[1].split(".")[0]) >= start:
                    window.append(key)
        mark("list")
        sample = set(args.sample)
        todo = [k for k in window if not sample or k.split("/")[1] in sample]
        plain = []
        for key in todo:
            r = client.head_object(Bucket=BUCKET, Key=key)
            if r.get("ServerSideEncryption") != SSE:
                plain.append(f"s3://{BUCKET}/{key}")
        mark("heads")
        out.update(listed=listed, window_objects=len(window), heads=len(todo), plain=plain)

    return run


# --- the rounds (parent) -----------------------------------------------------------------
def run_child(mode: str, args: argparse.Namespace, extra: list[str], profile: str) -> dict:
    cmd = [sys.executable, __file__, "measure", mode, "--server-pid", str(args.server_pid)]
    cmd += extra
    if profile:
        cmd += ["--profile", profile]
    p = subprocess.run(cmd, env=args.env, capture_output=True, text=True, cwd=ROOT)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        raise Crash(f"{mode} run failed (exit {p.returncode}):\n{p.stderr.strip()}")
    res = json.loads(lines[-1])
    res["trace"] = take(args.proxy_url)  # every request of this run, from the proxy
    if mode != "baseline":
        res["heads"] = sum(1 for r in res["trace"] if r["kind"] == "HEAD")
    return res


def write_config(path: Path, endpoint: str, manifests: Path, cache: Path, hours: int) -> Path:
    import yaml

    data = {
        # The window is the objects' span: 7 days at the default 168 hours.
        "review": {"since_days": hours / 24},
        "kubernetes": {"manifests": str(manifests)},
        "storage": [{"url": f"s3://{BUCKET}/{PREFIX}", "endpoint_url": endpoint}],
        "cache": str(cache),
        "archive": str(cache / "archive"),
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def rounds(args: argparse.Namespace) -> int:
    env = args.env = fake_aws_env(dict(os.environ))
    n = args.measured = (
        args.sample_clusters if 0 < args.sample_clusters < args.clusters else args.clusters
    )
    plan = clusters_plan(n)
    every = 0
    if 0 < args.baseline_clusters < n:
        every = max(1, n // args.baseline_clusters)
    # Every N-th cluster from the first planted one (3): at N = 10 the sample holds them all.
    sample = [c["name"] for c in plan if every and c["i"] % every == 3 % every]
    expected_plain = sorted(
        f"s3://{BUCKET}/{key}"
        for c in plan
        for key, _, encrypted in objects_of(c, args.hours)
        if not encrypted
    )
    print(
        f"seeding {n} clusters x {args.hours} hourly objects into moto's S3 "
        "server (child process)...",
        file=sys.stderr,
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="pgdeck-review-bench-"))
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--clusters", str(n)]
        + ["--hours", str(args.hours), "--fill", str(args.clusters)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    args.server_pid = server.pid
    assert server.stdin is not None and server.stdout is not None
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    info: dict[str, Any] = {}
    proxy = None
    try:
        t = time.perf_counter()
        write_manifests(work / "manifests", plan)
        manifests_s = time.perf_counter() - t
        line = server.stdout.readline()
        if not line:
            raise Crash("the S3 server child exited before printing its URL")
        info = json.loads(line)
        info["manifests_s"] = manifests_s
        proxy, endpoint = start_proxy(info["url"], env, args.inject_ms)
        args.proxy_url = endpoint
        print(
            f"seeded {info['objects']:,} objects ({info['plain']} without SSE) in "
            f"{info['seed_s']:.1f} s, wrote the manifests in {manifests_s:.1f} s; "
            f"server at {info['url']}, reached through the counting proxy at {endpoint}",
            file=sys.stderr,
            flush=True,
        )
        profile_dir = Path(args.profile) if args.profile else None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)

        def prof(name: str, r: int) -> str:
            return str(profile_dir / f"{name}-r{r}.prof") if profile_dir else ""

        base_extra = ["--endpoint", endpoint, "--hours", str(args.hours)]
        for name in sample:
            base_extra += ["--sample", name]
        for r in range(1, args.rounds + 1):
            cache = work / f"cache-r{r}"
            cache.mkdir()
            config = write_config(
                work / f"config-r{r}.yaml", endpoint, work / "manifests", cache, args.hours
            )
            row: dict[str, Any] = {"round": r}
            order = ("baseline", "cold", "warm") if r % 2 else ("cold", "warm", "baseline")
            row["order"] = ",".join(order)
            for mode in order:
                extra = base_extra if mode == "baseline" else ["--config", str(config)]
                res = run_child(mode, args, extra, prof(mode, r))
                check(errors, r, res, args, expected_plain, sample)
                row[mode] = res
            if args.discovery:
                # The encryption checked at discovery: a refresh and its checks in one
                # process over a fresh cache, then the review in another over that cache.
                dcache = work / f"cache-d-r{r}"
                dcache.mkdir()
                dconfig = write_config(
                    work / f"config-d-r{r}.yaml", endpoint, work / "manifests", dcache, args.hours
                )
                for mode in ("discover", "checked"):
                    res = run_child(mode, args, ["--config", str(dconfig)], prof(mode, r))
                    check(errors, r, res, args, expected_plain, sample)
                    row[mode] = res
                shutil.rmtree(dcache, ignore_errors=True)
            rows.append(row)
            shutil.rmtree(cache, ignore_errors=True)
            print(
                f"round {r}: baseline {row['baseline']['seconds']:.1f} s "
                f"({row['baseline']['heads']:,} HEADs), cold {row['cold']['seconds']:.1f} s, "
                f"warm {row['warm']['seconds']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    except Crash as exc:
        print(f"crashed: {exc}", file=sys.stderr)
        return 1
    finally:
        if proxy is not None:
            stop_proxy(proxy)
        stop_child(server)
        shutil.rmtree(work, ignore_errors=True)
    report(args, info, rows, sample)
    report_model(args, rows)
    if args.profile:
        top_functions(Path(args.profile))
    for e in errors:
        print(f"WRONG: {e}")
    return 1 if errors else 0


def check(
    errors: list[str],
    r: int,
    res: dict[str, Any],
    args: argparse.Namespace,
    expected_plain: list[str],
    sample: list[str],
) -> None:
    mode = res["mode"]
    window = args.measured * args.hours
    if mode == "discover":
        if (res["heads"], res["checked"], res["remaining"]) != (window, window, 0):
            errors.append(
                f"round {r} discover: {res['heads']:,} HEADs, {res['checked']:,} checked, "
                f"{res['remaining']:,} left, expected {window:,}, {window:,} and 0"
            )
        if res["unencrypted"] != len(expected_plain):
            errors.append(
                f"round {r} discover: {res['unencrypted']} unencrypted, not {len(expected_plain)}"
            )
        for p in res["problems"]:
            errors.append(f"round {r} discover: problem {p}")
        return
    if res["window_objects"] != window:
        errors.append(
            f"round {r} {mode}: {res['window_objects']:,} objects in the window, not {window:,}"
        )
    if mode == "baseline":
        want = [u for u in expected_plain if not sample or u.split("/")[4] in sample]
        if sorted(res["plain"]) != want:
            errors.append(
                f"round {r} baseline: found {len(res['plain'])} unencrypted objects, not {len(want)}"
            )
        return
    if res["clusters"] != args.measured:
        errors.append(f"round {r} {mode}: {res['clusters']} clusters reviewed, not {args.measured}")
    want_heads = window if mode == "cold" else 0  # warm, checked: every answer cached
    if res["heads"] != want_heads:
        errors.append(f"round {r} {mode}: {res['heads']:,} HEADs, expected {want_heads:,}")
    if res["plain"] != expected_plain:
        errors.append(
            f"round {r} {mode}: the unencrypted findings name {len(res['plain'])} objects, "
            f"not the {len(expected_plain)} planted"
        )
    for p in res["problems"] + res["warnings"]:
        errors.append(f"round {r} {mode}: source problem {p}")
    for f in res["other_findings"]:
        errors.append(f"round {r} {mode}: unexpected finding {f}")


def report(
    args: argparse.Namespace, info: dict[str, Any], rows: list[dict[str, Any]], sample: list[str]
) -> None:
    if not rows:
        return
    import boto3
    import moto

    n = args.measured
    window = n * args.hours
    scale = args.clusters / n  # to the figure's size
    base_heads = rows[0]["baseline"]["heads"]
    head_scale = window / max(1, base_heads)  # 1 unless the baseline HEADs a sample

    def med(mode: str, key: str) -> float:
        return statistics.median(r[mode].get(key, 0.0) for r in rows)

    for row in rows:
        b = row["baseline"]
        b["heads_scaled_s"] = b["heads_s"] * head_scale
        b["total_s"] = b["list_s"] + b["heads_scaled_s"]
    print()
    print(
        f"review bench: {n} clusters x {args.hours} hourly objects ({info['objects']:,} "
        f"objects, {info['plain']} without SSE) under s3://{BUCKET}/{PREFIX}/, a review "
        f"window of {args.hours} h = {window:,} objects to HEAD; Kubernetes from a manifests "
        f"directory ({n} postgresql + CronJob, an OperatorConfiguration with "
        f"logical_backup_s3_sse {SSE}); moto {moto.__version__} S3 server in a child "
        f"process, boto3 {boto3.__version__}, {os.cpu_count()} CPUs, {len(rows)} round(s)"
    )
    if scale != 1:
        print(
            f"SAMPLED: the figure is {args.clusters} clusters; {n} of them are measured and "
            f"the medians are scaled x{scale:g} below (one HEAD per object and one listing "
            "per cluster: the work is linear in the clusters); the other "
            f"{info['unlisted']:,} objects are in the bucket under {FILL_PREFIX}/, unlisted, "
            "because moto's listings cost in proportion to the whole bucket"
        )
    if head_scale != 1:
        print(
            f"baseline: the serial HEAD loop runs on {len(sample)} of the {n} clusters "
            f"({base_heads:,} HEADs), its time scaled x{head_scale:.1f} to {window:,}"
        )
    head = (
        f"{'round':>6}  {'order':<19} {'base list':>9} {'base HEAD':>9} {'baseline':>9}"
        f" {'refresh':>8} {'review':>8} {'pgdeck':>8} {'warm':>6} {'pgdeck/base':>11}"
    )
    print(head)
    print("-" * len(head))

    def values(get: Any) -> dict[str, float]:
        return {
            "list": get("baseline", "list_s"),
            "heads": get("baseline", "heads_scaled_s"),
            "base": get("baseline", "total_s"),
            "refresh": get("cold", "kube_s") + get("cold", "refresh_s"),
            "review": get("cold", "review_s"),
            "cold": get("cold", "seconds"),
            "warm": get("warm", "seconds"),
        }

    def line(label: str, order: str, v: dict[str, float]) -> None:
        print(
            f"{label:>6}  {order:<19} {v['list']:>9.1f} {v['heads']:>9.1f} {v['base']:>9.1f}"
            f" {v['refresh']:>8.1f} {v['review']:>8.1f} {v['cold']:>8.1f} {v['warm']:>6.1f}"
            f" {v['cold'] / v['base']:>11.3f}"
        )

    for row in rows:
        line(str(row["round"]), row["order"], values(lambda m, k, row=row: row[m].get(k, 0.0)))
    print("-" * len(head))
    mv = values(med)
    line("median", "", mv)
    if scale != 1:
        line(f"x{scale:g}", f"= {args.clusters} clusters", {k: x * scale for k, x in mv.items()})
    print("(seconds; pgdeck = refresh + review, cold cache; warm = both again over that cache)")
    if len(rows) > 1:
        spread = {
            m: max(r[m]["seconds"] for r in rows) / min(r[m]["seconds"] for r in rows)
            for m in ("baseline", "cold", "warm")
        }
        print(
            "spread between rounds (max/min): "
            + ", ".join(f"{m} {x:.2f}" for m, x in spread.items())
        )
    print()
    print("where the time goes (medians): wall, CPU of the measured client, CPU of the S3 server")
    phases = [
        ("cold: Kubernetes snapshot", "cold", "kube"),
        ("cold: storage listing", "cold", "refresh"),
        ("cold: review (HEADs + checks)", "cold", "review"),
        ("warm: Kubernetes snapshot", "warm", "kube"),
        ("warm: storage listing", "warm", "refresh"),
        ("warm: review (SSE cached)", "warm", "review"),
        ("baseline: list", "baseline", "list"),
        ("baseline: HEAD loop", "baseline", "heads"),
    ]
    for label, mode, phase in phases:
        print(
            f"  {label:<30} wall {med(mode, phase + '_s'):7.2f} s   client CPU "
            f"{med(mode, phase + '_cpu_s'):7.2f} s   server CPU "
            f"{med(mode, phase + '_server_cpu_s'):7.2f} s"
        )
    cold_heads = rows[0]["cold"]["heads"]
    per = {
        "pgdeck": (med("cold", "review_s"), med("cold", "review_server_cpu_s"), cold_heads),
        "baseline": (med("baseline", "heads_s"), med("baseline", "heads_server_cpu_s"), base_heads),
    }
    print(
        f"  HEADs made: cold {cold_heads:,}, warm {rows[0]['warm']['heads']:,}, baseline "
        f"{base_heads:,}; per HEAD: "
        + ", ".join(
            f"{k} {w / max(1, h) * 1000:.2f} ms wall, {c / max(1, h) * 1000:.2f} ms server CPU"
            for k, (w, c, h) in per.items()
        )
    )
    peak = max(r[m]["rss_mb"] for r in rows for m in ("cold", "warm"))
    print(f"  peak RSS of the pgdeck runs: {peak:.0f} MB")
    print()
    at = f" at {args.clusters} clusters" + (f" (scaled x{scale:g})" if scale != 1 else "")
    for name, value in (
        ("pgdeck refresh + review", mv["cold"] * scale),
        ("pgdeck review alone", mv["review"] * scale),
        ("warm refresh + review", mv["warm"] * scale),
    ):
        verdict = "PASS" if value < TARGET_S else "FAIL"
        print(f"  {name:<24} {value:7.1f} s{at}   target < {TARGET_S:.0f} s   {verdict}")
    print(f"  {'pgdeck / baseline':<24} {mv['cold'] / mv['base']:7.3f}")


def report_model(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """The runs' request traces: what each asked of S3, and what that would take there,
    at the figure's size."""
    if not rows:
        return
    model = S3Model(latency_s=args.latency_ms / 1000, per_key_s=args.per_key_ms / 1000)
    n = args.measured
    scale = max(1, round(args.clusters / n))
    base_heads = max(1, rows[0]["baseline"]["heads"])
    head_scale = max(1, round(n * args.hours / base_heads))
    # A sampled run stands for the figure: its per-cluster phases made `scale` times
    # over (the baseline's HEADs `scale` x `head_scale`); pgdeck's one listing of the
    # cluster names (after the "kube" mark) costs the same at 500 clusters (a page holds
    # 1,000 names). A phase is named by the mark that opens it: pgdeck's HEADs follow
    # the "refresh" mark, the baseline's listing "start" and its HEADs "list".
    pgdeck = {"listings": scale, "refresh": scale}
    factors = {
        "baseline": {"start": scale, "list": scale * head_scale},
        "cold": pgdeck,
        "warm": pgdeck,
        "discover": pgdeck,
        "checked": pgdeck,
    }
    modes = ("baseline", "cold", "warm", "discover", "checked")
    modes = tuple(m for m in modes if m in rows[0])

    def figs(row: dict[str, Any], mode: str, m: S3Model = model, wide: bool = True) -> Any:
        res = row[mode]
        workers = 1 if mode == "baseline" else res["workers"]
        heads = 1 if mode == "baseline" else res.get("head_workers", workers)
        factor = factors[mode] if wide else None
        return figures(res["trace"], res["phases"], workers, m, factor, heads)

    def med(mode: str, m: S3Model = model, wide: bool = True) -> float:
        return statistics.median(figs(r, mode, m, wide).modelled_s for r in rows)

    workers = rows[0]["cold"]["workers"]
    head_workers = rows[0]["cold"].get("head_workers", workers)
    print()
    print(
        f"S3 model: {model.describe()}. Each run's requests as the proxy saw them (round 1, "
        f"{n} clusters), then the seconds that trace takes under the model (median of the "
        f"rounds) at the measured size and at the figure's {args.clusters} clusters"
        + (f" (the trace made x{scale} over)" if scale > 1 else "")
        + f", with pgdeck's {workers} listings (catalog.workers) and {head_workers} HEADs "
        "(catalog.head_workers) in flight, and the baseline's 1. "
        "'replay' puts each request's measured duration on the same schedule."
    )
    head = (
        f"  {'run':<9} {'requests by kind':<24} {'keys':>7} {'MB out':>7} {'peak':>5}"
        f" {'wall s':>7} {'replay s':>8} {'model s':>8} {'at figure':>10}"
    )
    print(head)
    for mode in modes:
        c = figs(rows[0], mode).counts
        wall = statistics.median(r[mode]["seconds"] for r in rows)
        replay = statistics.median(figs(r, mode).replay_s for r in rows)
        print(
            f"  {mode:<9} {c.kinds():<24} {c.keys:>7,} {c.bytes_out / 1e6:>7.2f} {c.peak:>5}"
            f" {wall:>7.2f} {replay:>8.2f} {med(mode, wide=False):>8.2f} {med(mode):>10.1f}"
        )
    cold, warm, base = med("cold"), med("warm"), med("baseline")
    # The review after the encryption was checked at discovery; without that run (a
    # catalog with no check_new_sse), the warm run's trace stands for it: the same
    # refresh finding nothing new and a review making no HEAD.
    checked = med("checked") if "checked" in modes else warm
    cold_cpu = statistics.median(r["cold"]["review_cpu_s"] for r in rows)
    warm_cpu = statistics.median(r["warm"]["review_cpu_s"] for r in rows)
    cold_heads = max(1, rows[0]["cold"]["heads"])
    signed = rows[0]["cold"].get("signed", 0)
    bare_cpu = statistics.median(r["baseline"]["heads_cpu_s"] for r in rows) / base_heads
    per_head = max(0.0, cold_cpu - warm_cpu) / cold_heads
    print(
        f"  pgdeck / baseline under the model: {cold / base:.3f}; the client's own CPU in the "
        f"cold review less the warm review's (the same checks without a HEAD): "
        f"{per_head * 1000:.2f} ms per HEAD ({signed:,} of {cold_heads:,} signed by pgdeck, the "
        f"rest boto3's), against {bare_cpu * 1000:.2f} ms for a bare boto3 head_object here: "
        f"{per_head * cold_heads * scale:.0f} s at the figure in one process. Moto and the "
        "proxy share this host's cores and inflate both: bench/head_cpu_bench.py measures the "
        "client alone"
    )
    verdict = [
        ("cold refresh + review", cold, MODEL_COLD_S),
        (
            "checked at discovery" if "checked" in modes else "warm (stands for checked)",
            checked,
            MODEL_CHECKED_S,
        ),
    ]
    hourly = math.ceil(args.clusters / head_workers) * model.latency_s
    print(
        f"  checked at discovery, each hourly refresh (one new object per cluster) HEADs "
        f"{args.clusters} objects: {hourly:.1f} s with {head_workers} in flight under the model, "
        "after its listings"
    )
    for name, value, bar in verdict:
        ok = "PASS" if value < bar else "over"
        print(
            f"  {name:<26} {value:7.1f} s at {args.clusters} clusters (model)   "
            f"bar < {bar:g} s   {ok}"
        )
    if cold >= MODEL_COLD_S:
        heads = rows[0]["cold"]["heads"] * scale
        need = heads * model.latency_s / max(0.1, MODEL_COLD_S - med("warm"))
        print(
            f"  the cold review's {heads:,} HEADs alone take "
            f"{heads * model.latency_s / head_workers:.0f} s with {head_workers} in flight at "
            f"{model.latency_s * 1000:g} ms; under {MODEL_COLD_S:g} s"
            f" takes about {need:.0f} requests in flight, and at most "
            f"{MODEL_COLD_S / heads * 1000:.2f} ms of client CPU per HEAD"
        )
    if args.inject_ms:
        injected = S3Model(latency_s=args.inject_ms / 1000, per_key_s=0.0)
        print(
            f"  check: every request held {args.inject_ms:g} ms in the proxy; the model at "
            "that latency (no per-key cost, measured size) against the measured span from "
            "the run's first request to its last: "
            + ", ".join(
                f"{m} {med(m, injected, False):.2f} s vs "
                f"{statistics.median(figs(r, m, wide=False).span_s for r in rows):.2f} s (replay "
                f"{statistics.median(figs(r, m, wide=False).replay_s for r in rows):.2f} s, median "
                f"request {figs(rows[0], m, wide=False).median_request_s * 1000:.0f} ms)"
                for m in modes
            )
        )


def top_functions(directory: Path, n: int = 15) -> None:
    import io
    import pstats

    for path in sorted(directory.glob("cold-r*.prof"))[:1]:
        buf = io.StringIO()
        st = pstats.Stats(str(path), stream=buf)
        st.sort_stats("tottime").print_stats(n)
        print()
        print(f"heaviest functions of {path.name} (tottime, all threads; cProfile inflates times):")
        body = buf.getvalue().splitlines()
        start = next((i for i, s in enumerate(body) if "ncalls" in s), 0)
        for s in body[start : start + n + 1]:
            print("  " + s.replace(str(ROOT) + "/", "")[:150])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=500)
    ap.add_argument("--hours", type=int, default=168, help="hourly objects per cluster")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--sample-clusters",
        type=int,
        default=50,
        help="clusters of the world measured, the times scaled to --clusters (0: all of them)",
    )
    ap.add_argument(
        "--baseline-clusters",
        type=int,
        default=0,
        help="clusters whose window the baseline HEADs, its time scaled (0: all of them)",
    )
    ap.add_argument("--profile", default="", help="directory for a cProfile of each run")
    ap.add_argument(
        "--discovery",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the refresh + check_new_sse() and the review after it "
        "(default: when the catalog has check_new_sse)",
    )
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
    sp.add_argument("--clusters", type=int, default=500)
    sp.add_argument("--hours", type=int, default=168)
    sp.add_argument("--fill", type=int, default=0, help="clusters in the bucket in all")
    mp = sub.add_parser("measure", help=argparse.SUPPRESS)
    mp.add_argument("mode", choices=("baseline", "cold", "warm", "discover", "checked"))
    mp.add_argument("--server-pid", type=int, required=True)
    mp.add_argument("--config", default="")
    mp.add_argument("--endpoint", default="")
    mp.add_argument("--sample", action="append", default=[])
    mp.add_argument("--hours", type=int, default=168)
    mp.add_argument("--profile", default="")
    args = ap.parse_args(argv)
    if args.role == "serve":
        return serve(args)
    if args.role == "measure":
        return measure(args)
    if args.discovery is None:
        from services.catalog import Catalog

        args.discovery = hasattr(Catalog, "check_new_sse")
    return rounds(args)


if __name__ == "__main__":
    sys.exit(main())
