"""Bringing a sandbox built earlier up to the present without taking a single new dump.

While a sandbox is younger than ``ROLL_FORWARD_LIMIT``, each live cluster's CronJob "runs"
on: the hours since its newest object get hard links to that object, objects past the
month are deleted as the operator's retention would, and the manifests are written again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sandbox.demo.layout import (
    STAMP,
    Progress,
    link_or_copy,
    read_sidecar,
    write_atomically,
    write_sidecar,
)
from sandbox.demo.manifests import KubeRuns, kube_runs, write_manifests
from sandbox.demo.story import (
    HOUR,
    HOURS,
    Spec,
    cluster_specs,
    floor_hour,
    last_hour,
    planted,
    slot_at,
)
from services.errors import PgdeckError
from services.operator import BACKUP_DIR, DEFAULT_S3_PREFIX, backup_key, parse_backup_key


def stamp_times(root: Path) -> tuple[dict, datetime, datetime] | None:
    """The stamp, the ``now`` the sandbox was built for, and the one it is brought up to."""
    try:
        stamp = json.loads((root / STAMP).read_text(encoding="utf-8"))
        built = datetime.fromisoformat(stamp["now"])
        until = datetime.fromisoformat(stamp.get("until") or stamp["now"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stamp, built.astimezone(UTC), until.astimezone(UTC)


def behind(built: datetime, until: datetime, now: datetime) -> bool:
    """Whether some live cluster's CronJob has finished a run since ``until``."""
    return any(
        last_hour(spec, now) > last_hour(spec, until) for spec in cluster_specs(built) if spec.live
    )


def roll_forward_safely(root: Path, stamp: dict, now: datetime, say: Progress) -> None:
    try:
        _roll_forward(root, stamp, now, say)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise PgdeckError(
            f"cannot bring the demo sandbox in {root} up to date: {exc.strerror or exc}{where}",
            hint="run `pgdeck demo --rebuild`",
        ) from None


def _roll_forward(root: Path, stamp: dict, now: datetime, say: Progress) -> None:
    """Bring a sandbox built earlier up to ``now`` without taking a single new dump.

    Each live cluster's CronJob "runs" on: every hour since its newest object gets an
    object hard-linked to that newest real dump (a copy where links fail), encrypted in the
    sidecar; objects of the live uids older than the month kept are deleted, as the
    operator's retention would. The manifests' Jobs, pods and logs are written again for the
    newest three runs (plus the planted failed Job, which Kubernetes keeps among its three
    failed ones). Deleted clusters and old uids stay as they are: no job touches them.
    """
    built = datetime.fromisoformat(stamp["now"])
    specs = cluster_specs(built)
    store = root / "store" / DEFAULT_S3_PREFIX
    meta = read_sidecar(store)
    runs: dict[str, KubeRuns] = {}
    added = removed = 0
    for spec in specs:
        live = spec.live
        if live is None:
            continue
        directory = store / spec.name / live.uid / BACKUP_DIR
        epochs = sorted(
            key.epoch
            for p in directory.glob("*.sql.gz")
            if (key := parse_backup_key(f"{spec.name}/{live.uid}/{BACKUP_DIR}/{p.name}"))
        )
        if not epochs:
            raise PgdeckError(f"the demo sandbox in {root} has no backups of {spec.name}")
        source = directory / f"{epochs[-1]}.sql.gz"
        last = last_hour(spec, now)
        hour = floor_hour(datetime.fromtimestamp(epochs[-1], UTC)) + HOUR
        while hour <= last:
            slot = slot_at(spec, hour)
            link_or_copy(source, directory / f"{slot.epoch}.sql.gz")
            meta[backup_key(spec.name, live.uid, slot.epoch)] = "AES256"
            epochs.append(slot.epoch)
            added += 1
            hour += HOUR
        os.utime(source, (epochs[-1], epochs[-1]))
        oldest = last - (HOURS - 1) * HOUR
        for epoch in [e for e in epochs if datetime.fromtimestamp(e, UTC) < oldest]:
            with contextlib.suppress(FileNotFoundError):
                (directory / f"{epoch}.sql.gz").unlink()
            meta.pop(backup_key(spec.name, live.uid, epoch), None)
            epochs.remove(epoch)
            removed += 1
        stored = []
        for epoch in epochs[-3:]:
            slot = slot_at(spec, floor_hour(datetime.fromtimestamp(epoch, UTC)))
            slot.uid = live.uid
            stored.append(slot)
        runs[spec.name] = kube_runs(
            spec, stored, planted(spec, built).failed, source.stat().st_size
        )
    write_sidecar(store, meta)
    _replace_manifests(root, specs, runs, now)
    stamp["until"] = now.isoformat(timespec="seconds")
    stamp["backups"] = {
        spec.name: sum(1 for _ in (store / spec.name).glob(f"*/{BACKUP_DIR}/*.sql.gz"))
        for spec in specs
    }
    write_atomically(root / STAMP, json.dumps(stamp, indent=2) + "\n")
    say(
        f"rolled the demo sandbox forward to {now:%Y-%m-%d %H:%M} UTC "
        f"({added} hourly objects added, {removed} past the month deleted)"
    )


def _replace_manifests(
    root: Path, specs: tuple[Spec, ...], runs: dict[str, KubeRuns], now: datetime
) -> None:
    fresh, old = root / ".manifests.new", root / ".manifests.old"
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    write_manifests(fresh, specs, runs, now)
    os.rename(root / "manifests", old)
    os.rename(fresh, root / "manifests")
    shutil.rmtree(old, ignore_errors=True)
