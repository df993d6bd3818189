"""Building a whole demo sandbox: real dumps of every cluster, the sidecar, manifests, config.

The clusters are built in parallel threads (each its own throwaway server, see
sandbox.demo.dumps); their progress lines are passed on from the calling thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import yaml

from sandbox import localpg
from sandbox.demo.dumps import build_cluster
from sandbox.demo.layout import STAMP, Progress, store_keys, write_sidecar
from sandbox.demo.manifests import kube_runs, write_manifests
from sandbox.demo.restore_tests import write_restore_tests
from sandbox.demo.story import FORMAT_VERSION, cluster_specs, dump_groups, planted, scheduled_slots
from services.operator import DEFAULT_S3_PREFIX, backup_key


def build_sandbox(build: Path, root: Path, now: datetime, say: Progress) -> tuple[str, ...]:
    """Write the whole sandbox into ``build`` (paths inside name the final ``root``)."""
    specs = cluster_specs(now)
    plants = {spec.name: planted(spec, now) for spec in specs}
    plan = {
        spec.name: dump_groups(
            [s for s in scheduled_slots(spec, now) if plants[spec.name].stored(s)]
        )
        for spec in specs
    }
    store = build / "store" / DEFAULT_S3_PREFIX
    store.mkdir(parents=True)
    bindir = localpg.find_bindir()
    # The servers live in a temp dir of their own: the postgres user must be able to reach
    # it, and the sandbox's parent (often under a 0700 home) may not allow that.
    work = Path(tempfile.mkdtemp(prefix="pgdeck-demo-pg-"))
    os.chmod(work, 0o755)
    messages: queue.Queue[str] = queue.Queue()
    cancel = threading.Event()
    sizes: dict[str, list[int]] = {}
    try:
        total = sum(len(g) for g in plan.values())
        say(f"taking {total} real pg_dumpall dumps of {len(specs)} clusters ({_version(bindir)})")
        workers = max(2, min(len(specs), os.cpu_count() or 2))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pgdeck-demo") as pool:
            futures: dict[Future[list[int]], str] = {
                pool.submit(
                    build_cluster,
                    spec,
                    plan[spec.name],
                    plants[spec.name],
                    work,
                    store,
                    bindir,
                    messages.put,
                    cancel,
                ): spec.name
                for spec in specs
            }
            try:
                _drain(futures, messages, say)
            except BaseException:
                cancel.set()
                for fut in futures:
                    fut.cancel()
                raise
            for fut, name in futures.items():
                sizes[name] = fut.result()
    finally:
        cancel.set()
        shutil.rmtree(work, ignore_errors=True)
    plain = {
        backup_key(spec.name, s.uid, s.epoch)
        for spec in specs
        for g in plan[spec.name]
        for s in g.slots
        if s.hour == plants[spec.name].plain
    }
    write_sidecar(store, {rel: ("" if rel in plain else "AES256") for rel in store_keys(store)})
    say("writing Kubernetes manifests and pod logs")
    runs = {
        spec.name: kube_runs(
            spec,
            [s for g in plan[spec.name] for s in g.slots],
            plants[spec.name].failed,
            sizes[spec.name][-1],
        )
        for spec in specs
        if spec.live is not None
    }
    write_manifests(build / "manifests", specs, runs, now)
    say("writing a year of restore-test reports into the archive")
    write_restore_tests(build / "archive", specs, now)
    _write_config(build, root)
    clusters = tuple(spec.name for spec in specs)
    stamp = {
        "format": FORMAT_VERSION,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "now": now.isoformat(timespec="seconds"),
        "until": now.isoformat(timespec="seconds"),
        "clusters": list(clusters),
        "backups": {name: sum(len(g.slots) for g in groups) for name, groups in plan.items()},
    }
    (build / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    return clusters


def _drain(
    futures: dict[Future[list[int]], str], messages: queue.Queue[str], say: Progress
) -> None:
    """Pass the workers' progress lines on from this thread until all are done."""
    pending = set(futures)
    while pending:
        with contextlib.suppress(queue.Empty):
            say(messages.get(timeout=0.05))
        for fut in [f for f in pending if f.done()]:
            pending.discard(fut)
            fut.result()  # raise the first failure here
    while not messages.empty():
        say(messages.get_nowait())


def _version(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "pg_dumpall"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "pg_dumpall"
    return out or "pg_dumpall"


def _write_config(build: Path, root: Path) -> None:
    config = {
        "kubernetes": {"manifests": str(root / "manifests")},
        "storage": [{"url": f"file://{root / 'store' / DEFAULT_S3_PREFIX}"}],
        "archive": str(root / "archive"),
        "cache": str(root / "cache"),
    }
    header = "# pgdeck demo sandbox: built by `pgdeck demo`, rebuilt with `pgdeck demo --rebuild`\n"
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
    (build / "config.yaml").write_text(header + text, encoding="utf-8")
