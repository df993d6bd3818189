"""The demo sandbox: a month of real logical backups of four clusters, and their Kubernetes.

``pgdeck demo`` calls :func:`prepare_sandbox`. It builds once under ``root`` (reused while
a complete sandbox of the same format exists):

- ``store/spilo/<cluster>/<uid>/logical_backups/<epoch>.sql.gz``: gzip of real
  ``pg_dumpall`` output of a throwaway local server (services.localpg) whose data grows over
  the month. About 16 real dumps per uid; each serves several consecutive hours through hard
  links (so hard-linked objects share one mtime: that of the newest hour they serve).
  ``store/spilo/.pgdeck-meta.json`` says what S3 would of each object's encryption (the
  sidecar services.storage.FileStore reads).
- ``manifests/``: ``kubectl get -o yaml`` Lists (postgresqls, cronjobs, jobs, pods, operator)
  and ``manifests/logs/<namespace>/<pod>.log``.
- ``config.yaml`` pointing pgdeck at both, and the ``SANDBOX`` stamp, written last.

The clusters: acid-orders and acid-inventory (shop), acid-billing (finance, deleted and
created again under a new uid 9 days before ``now``), acid-legacy (deleted 12 days before
``now``: storage only). Planted for a weekly review to find, all within the 7 days before
``now`` (hours counted back from the hour of ``now``; constants below):

- missing hours: acid-orders has no object for the runs of 45 and 44 hours ago (adjacent)
  and of 150 hours ago; those jobs never ran, and Kubernetes keeps no Job of them;
- a suspiciously small backup: acid-billing's object of 117 hours ago is a complete
  pg_dumpall (trailer and all) of a freshly bootstrapped, empty Spilo: about 4 kB of SQL,
  1.3 kB of gzip, among objects of hundreds of kB;
- a failed job: acid-inventory's newest-but-one run (at the build) failed. Its Job is Failed with reason
  BackoffLimitExceeded after seven pods (backoffLimit 6) exited with code 1; each pod's log
  ends with pg_dumpall's and psql's ``FATAL:  the database system is shutting down`` and
  dump.sh's own failure. No object exists for that hour;
- no encryption: acid-orders' object of 26 hours ago is stored without server-side
  encryption (``"sse": ""`` in the sidecar); every other object says ``AES256``.

The build happens in a temporary directory beside ``root`` and is renamed into place at
the end, so an interrupted build never leaves half a sandbox. A sandbox whose clusters
have run since it was built (or last rolled forward) is rolled forward cheaply, without
new dumps (see ``_roll_forward``); one older than 7 days is built again, so that the
planted problems stay within a 14-day grid.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import json
import os
import queue
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import yaml

from services import kube_objects as ko
from services import localpg
from services.errors import PgdeckError
from services.operator import BACKUP_DIR, DEFAULT_S3_PREFIX, backup_key, parse_backup_key
from services.storage import SIDECAR

FORMAT_VERSION = 2
STAMP = "SANDBOX"
BUCKET = "demo-backups"
HOURS = 30 * 24
HOUR = timedelta(hours=1)
DUMP_TRAILER = b"--\n-- PostgreSQL database cluster dump complete\n--\n"
OPERATOR_NAMESPACE = "postgres-operator"
OPERATOR_NAME = "postgres-operator"
SCHEDULE = "0 * * * *"
_HOURS_PER_DUMP = 45  # 720 hours -> 16 real dumps per cluster
_STALE_BUILD = 3600  # seconds after which a leftover build directory is removed
ROLL_FORWARD_LIMIT = timedelta(days=7)  # an older sandbox is built again, not rolled forward

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sandbox:
    root: Path
    config_path: Path
    store_url: str
    manifests: Path
    clusters: tuple[str, ...]


def prepare_sandbox(
    root: Path,
    *,
    now: datetime | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> Sandbox:
    """The demo sandbox under ``root``: reused when complete and current, rolled forward
    to ``now`` when its CronJobs have run since, built when missing or older than 7 days.

    ``now`` is the end of the month of backups (default: the current time).
    """
    root = Path(os.path.abspath(root))
    say = progress or (lambda _msg: None)
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    if not rebuild:
        existing = _load(root)
        times = _stamp_times(root) if existing is not None else None
        if existing is not None and times is not None:
            stamp, built, until = times
            if now - built <= ROLL_FORWARD_LIMIT:
                if not _behind(built, until, now):
                    say(f"reusing the demo sandbox in {root}")
                    return existing
                _roll_forward_safely(root, stamp, now, say)
                return existing
            say(f"the demo sandbox in {root} is more than 7 days old: building it again")
    _refuse_foreign(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PgdeckError(
            f"cannot create the demo sandbox in {root}: {exc.strerror}",
            hint="choose a writable directory",
        ) from None
    _remove_stale_builds(root)
    started = time.monotonic()
    build = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    try:
        os.chmod(build, 0o755)
        _build(build, root, now, say)
        _install(build, root)
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        where = f" ({exc.filename})" if exc.filename else ""
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: {exc.strerror or exc}{where}",
            hint="check free disk space and permissions, then run the demo again",
        ) from None
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    say(f"demo sandbox ready in {root} ({time.monotonic() - started:.1f} s)")
    sandbox = _load(root)
    if sandbox is None:  # pragma: no cover - the rename just put it there
        raise PgdeckError(f"the demo sandbox in {root} is incomplete after building it")
    return sandbox


# --------------------------------------------------------------------------- reuse, install


def _sandbox_for(root: Path, clusters: tuple[str, ...]) -> Sandbox:
    return Sandbox(
        root=root,
        config_path=root / "config.yaml",
        store_url=f"file://{root / 'store' / DEFAULT_S3_PREFIX}",
        manifests=root / "manifests",
        clusters=clusters,
    )


def _load(root: Path) -> Sandbox | None:
    """The sandbox in ``root`` when its stamp says it is complete and of this format."""
    try:
        stamp = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != FORMAT_VERSION:
        return None
    clusters = tuple(str(c) for c in stamp.get("clusters") or ())
    sandbox = _sandbox_for(root, clusters)
    store = root / "store" / DEFAULT_S3_PREFIX
    if not (sandbox.config_path.is_file() and sandbox.manifests.is_dir() and store.is_dir()):
        return None
    if not clusters or not all((store / c).is_dir() for c in clusters):
        return None
    return sandbox


def _install(build: Path, root: Path) -> None:
    """Rename the finished build into place, replacing an old sandbox."""
    old: Path | None = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.rename(root, old / "sandbox")
    try:
        os.rename(build, root)
    except OSError:
        # another process installed a sandbox meanwhile: keep theirs when it is complete
        if _load(root) is not None:
            shutil.rmtree(build, ignore_errors=True)
        else:
            if old is not None and not root.exists():
                os.rename(old / "sandbox", root)  # put the previous sandbox back
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- roll-forward


def _stamp_times(root: Path) -> tuple[dict, datetime, datetime] | None:
    """The stamp, the ``now`` the sandbox was built for, and the one it is brought up to."""
    try:
        stamp = json.loads((root / STAMP).read_text(encoding="utf-8"))
        built = datetime.fromisoformat(stamp["now"])
        until = datetime.fromisoformat(stamp.get("until") or stamp["now"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stamp, built.astimezone(UTC), until.astimezone(UTC)


def _behind(built: datetime, until: datetime, now: datetime) -> bool:
    """Whether some live cluster's CronJob has finished a run since ``until``."""
    return any(
        _last_hour(spec, now) > _last_hour(spec, until) for spec in _specs(built) if spec.live
    )


def _roll_forward_safely(root: Path, stamp: dict, now: datetime, say: Progress) -> None:
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
    specs = _specs(built)
    store = root / "store" / DEFAULT_S3_PREFIX
    meta = _read_sidecar(store)
    runs: dict[str, _KubeRuns] = {}
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
        last = _last_hour(spec, now)
        hour = _floor_hour(datetime.fromtimestamp(epochs[-1], UTC)) + HOUR
        while hour <= last:
            slot = _slot_at(spec, hour)
            _link_or_copy(source, directory / f"{slot.epoch}.sql.gz")
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
            slot = _slot_at(spec, _floor_hour(datetime.fromtimestamp(epoch, UTC)))
            slot.uid = live.uid
            stored.append(slot)
        runs[spec.name] = _kube_runs(
            spec, stored, _plants(spec, built).failed, source.stat().st_size
        )
    _write_sidecar(store, meta)
    _replace_manifests(root, specs, runs, now)
    stamp["until"] = now.isoformat(timespec="seconds")
    stamp["backups"] = {
        spec.name: sum(1 for _ in (store / spec.name).glob(f"*/{BACKUP_DIR}/*.sql.gz"))
        for spec in specs
    }
    _write_atomically(root / STAMP, json.dumps(stamp, indent=2) + "\n")
    say(
        f"rolled the demo sandbox forward to {now:%Y-%m-%d %H:%M} UTC "
        f"({added} hourly objects added, {removed} past the month deleted)"
    )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        pass  # an interrupted roll-forward got this far already
    except OSError:
        shutil.copy2(source, target)


def _replace_manifests(
    root: Path, specs: tuple[_Spec, ...], runs: dict[str, _KubeRuns], now: datetime
) -> None:
    fresh, old = root / ".manifests.new", root / ".manifests.old"
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    _write_manifests(fresh, specs, runs, now)
    os.rename(root / "manifests", old)
    os.rename(fresh, root / "manifests")
    shutil.rmtree(old, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the sidecar


def _store_keys(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.glob(f"*/*/{BACKUP_DIR}/*.sql.gz"))


def _read_sidecar(store: Path) -> dict[str, str]:
    try:
        data = json.loads((store / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return {
        rel: str(v.get("sse", ""))
        for rel, v in (data.items() if isinstance(data, dict) else ())
        if isinstance(v, dict)
    }


def _write_sidecar(store: Path, sse: dict[str, str]) -> None:
    """What ``aws s3api head-object`` would say of each object's encryption (FileStore)."""
    lines = [f"  {json.dumps(rel)}: {json.dumps({'sse': v})}" for rel, v in sorted(sse.items())]
    _write_atomically(store / SIDECAR, "{\n" + ",\n".join(lines) + "\n}\n")


def _refuse_foreign(root: Path) -> None:
    """Never replace a directory that is not a sandbox (it would be deleted)."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: it exists and is not a directory",
            hint="remove it or choose another directory",
        )
    if root.is_dir() and any(root.iterdir()) and not (root / STAMP).is_file():
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: the directory holds other files",
            hint="remove it or choose another directory",
        )


def _remove_stale_builds(root: Path) -> None:
    cutoff = time.time() - _STALE_BUILD
    for prefix in (f".{root.name}.build-", f".{root.name}.old-"):
        for d in root.parent.glob(prefix + "*"):
            with contextlib.suppress(OSError):
                if d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- the story


@dataclass(frozen=True)
class _Life:
    """One incarnation of a cluster: a uid between creation and deletion."""

    uid: str
    created: datetime
    deleted: datetime | None = None


@dataclass(frozen=True)
class _Spec:
    name: str
    namespace: str  # "" when the cluster no longer exists in Kubernetes
    databases: dict[str, str]  # name -> owner
    users: dict[str, list[str]]
    lives: tuple[_Life, ...]
    schedule: str | None = None
    retention: str | None = None
    instances: int = 2
    volume: str = "10Gi"
    scale: float = 1.0  # how much data per hour

    @property
    def live(self) -> _Life | None:
        last = self.lives[-1]
        return last if last.deleted is None else None


@dataclass
class _Slot:
    """One hourly backup: the CronJob's scheduled hour and the object's epoch."""

    hour: datetime
    pod_start: datetime
    epoch: int
    finished: datetime
    uid: str = ""


@dataclass
class _Group:
    """Consecutive hours served by one real dump."""

    uid: str
    slots: list[_Slot] = field(default_factory=list)


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _specs(now: datetime) -> tuple[_Spec, ...]:
    rng = random.Random(f"pgdeck-demo/{FORMAT_VERSION}")
    billing_deleted = _floor_hour(now - timedelta(days=9)) + timedelta(minutes=21, seconds=7)
    legacy_deleted = _floor_hour(now - timedelta(days=12)) + timedelta(minutes=37, seconds=52)
    return (
        _Spec(
            "acid-orders",
            "shop",
            databases={"orders": "orders_owner", "customers": "orders_owner"},
            users={"orders_owner": ["createdb"], "orders_app": [], "orders_reporting": []},
            lives=(_Life(_uid(rng), now - timedelta(days=214, hours=5, minutes=12)),),
            schedule=SCHEDULE,
            retention="1 month",
            instances=3,
            volume="20Gi",
            scale=1.0,
        ),
        _Spec(
            "acid-inventory",
            "shop",
            databases={"inventory": "inventory_owner"},
            users={"inventory_owner": [], "inventory_app": []},
            lives=(_Life(_uid(rng), now - timedelta(days=97, hours=2, minutes=48)),),
            scale=0.8,
        ),
        _Spec(
            "acid-billing",
            "finance",
            databases={"billing": "billing_owner"},
            users={"billing_owner": [], "billing_app": [], "billing_audit": []},
            lives=(
                _Life(_uid(rng), now - timedelta(days=301, hours=7), billing_deleted),
                _Life(_uid(rng), billing_deleted + timedelta(minutes=14, seconds=31)),
            ),
            volume="15Gi",
            scale=0.7,
        ),
        _Spec(
            "acid-legacy",
            "",
            databases={"crm": "crm_owner"},
            users={"crm_owner": [], "crm_app": []},
            lives=(_Life(_uid(rng), now - timedelta(days=688, hours=11), legacy_deleted),),
            instances=1,
            scale=0.5,
        ),
    )


def _slot_at(spec: _Spec, hour: datetime) -> _Slot:
    """The backup the job scheduled at ``hour`` writes: pod start, key epoch, upload end."""
    rng = random.Random(f"{spec.name}/{hour.isoformat()}")
    pod_start = hour + timedelta(seconds=rng.randint(1, 3))
    epoch = int((pod_start + timedelta(seconds=rng.randint(3, 9))).timestamp())
    finished = datetime.fromtimestamp(epoch, UTC) + timedelta(seconds=rng.randint(6, 18))
    return _Slot(hour, pod_start, epoch, finished)


def _last_hour(spec: _Spec, now: datetime) -> datetime:
    """The scheduled hour of the newest job that had finished its upload at ``now``."""
    last = _floor_hour(now)
    if _slot_at(spec, last).finished > now:
        last -= HOUR
    return last


def _slots(spec: _Spec, now: datetime) -> list[_Slot]:
    """The month of hourly runs this cluster's CronJob(s) scheduled, oldest first.

    The newest is the last job that had finished its upload at ``now``. Every run is
    here, including those the planted problems leave without an object (see ``_plants``).
    """
    last = _last_hour(spec, now)
    slots: list[_Slot] = []
    for i in range(HOURS - 1, -1, -1):
        slot = _slot_at(spec, last - i * HOUR)
        for life in spec.lives:
            if life.created <= slot.hour and (
                life.deleted is None or slot.finished <= life.deleted
            ):
                slot.uid = life.uid
                slots.append(slot)
                break
    return slots


# --------------------------------------------------------------------------- planted problems

# What a weekly review should find, all within the last 7 days before the build's ``now``
# (a sandbox is rebuilt rather than rolled forward once it is 7 days old, so they stay in
# a 14-day grid). Hours are counted back from the hour of ``now``.
MISSING_CLUSTER, MISSING_HOURS_AGO = "acid-orders", (45, 44, 150)  # jobs that never ran
SMALL_CLUSTER, SMALL_HOURS_AGO = "acid-billing", 117  # a dump of an empty, fresh server
PLAIN_CLUSTER, PLAIN_HOURS_AGO = "acid-orders", 26  # uploaded without server-side encryption
FAILED_CLUSTER = "acid-inventory"  # its newest-but-one job failed: BackoffLimitExceeded
FAILED_ATTEMPTS = 7  # the Job's backoffLimit 6: seven pods, each exit code 1


@dataclass(frozen=True)
class _Plants:
    """The planted problems of one cluster: scheduled hours (UTC) they concern."""

    missing: frozenset[datetime] = frozenset()  # no job ran, no object
    failed: datetime | None = None  # the job failed, no object
    small: datetime | None = None  # the object is a complete dump of an empty server
    plain: datetime | None = None  # the object is stored without SSE

    def stored(self, slot: _Slot) -> bool:
        return slot.hour not in self.missing and slot.hour != self.failed


def _plants(spec: _Spec, now: datetime) -> _Plants:
    hour = _floor_hour(now)
    missing: frozenset[datetime] = frozenset()
    if spec.name == MISSING_CLUSTER:
        missing = frozenset(hour - h * HOUR for h in MISSING_HOURS_AGO)
    return _Plants(
        missing=missing,
        failed=_last_hour(spec, now) - HOUR if spec.name == FAILED_CLUSTER else None,
        small=hour - SMALL_HOURS_AGO * HOUR if spec.name == SMALL_CLUSTER else None,
        plain=hour - PLAIN_HOURS_AGO * HOUR if spec.name == PLAIN_CLUSTER else None,
    )


def _groups(slots: list[_Slot]) -> list[_Group]:
    """Split each uid's run of hours into ~45-hour groups, one real dump each."""
    groups: list[_Group] = []
    by_uid: dict[str, list[_Slot]] = {}
    for s in slots:
        by_uid.setdefault(s.uid, []).append(s)
    for uid, run in by_uid.items():
        n = max(3, round(len(run) / _HOURS_PER_DUMP))
        for i in range(n):
            part = run[i * len(run) // n : (i + 1) * len(run) // n]
            if part:
                groups.append(_Group(uid, part))
    groups.sort(key=lambda g: g.slots[0].epoch)
    return groups


# --------------------------------------------------------------------------- database content

_FIRST = [
    "Jürgen",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Ana",
    "Björk",
    "François",
    "Øyvind",
    "Małgorzata",
    "Çağla",
    "Dương",
    "Saoirse",
    "Ngozi",
    "Νίκος",
    "Александр",
    "美咲",
    "Håkon",
    "Chloé",
    "Mehmet",
    "Anaïs",
    "Jiří",
    "Íñigo",
    "Ülkü",
]
_LAST = [
    "Müller",
    "Løvström",
    "Núñez",
    "Żółkiewski",
    "Ødegård",
    "Brontë",
    "Nguyễn",
    "Öztürk",
    "García",
    "Kowalczyk",
    "Dvořák",
    "Σωτηρίου",
    "Иванова",
    "佐藤",
    "Ó Briain",
    "Béranger",
    "Sørensen",
    "Šimić",
    "Jäger",
    "Þórsdóttir",
]
_CITIES = [
    "München",
    "Zürich",
    "København",
    "Kraków",
    "São Paulo",
    "Malmö",
    "Reykjavík",
    "İstanbul",
    "Åre",
    "Düsseldorf",
    "Besançon",
    "Łódź",
    "Tromsø",
    "Ciudad de México",
    "東京",
    "Göteborg",
    "Genève",
    "Bruxelles",
    "Wien",
    "Köln",
]
_STREETS = [
    "Hauptstraße",
    "Bahnhofstraße",
    "Rue de la Paix",
    "Ulica Długa",
    "Strøget",
    "Calle Mayor",
    "Storgatan",
    "Åsgata",
    "Kärntner Straße",
    "Via Roma",
]
_PRODUCTS = [
    "Kaffeebecher",
    "Teekanne",
    "Crème-Tiegel",
    "Smørrebrød-Brett",
    "Füller",
    "Notizbuch",
    "Brotkörbchen",
    "Käsereibe",
    "Espressotasse",
    "Glühweinglas",
    "Sitzsack",
    "Kühlschrankmagnet",
]
_ADJECTIVES = [
    "Größe L",
    "blau",
    "Édition limitée",
    "naturweiß",
    "Ærø",
    "mit Deckel",
    "handgefertigt",
    "klein",
    "XXL",
    "Ökologisch",
]
_NOTES = [
    "Bitte beim Nachbarn abgeben – Hausnr. 12",
    "Lieferung nach 18 Uhr",
    "Geschenkverpackung gewünscht 🎁",
    "Ne pas plier",
    "Zadzwonić przed dostawą",
    "Ring twice, dog is friendly",
    "Paket in die Garage stellen",
]
_ITEMS = [
    "Schraube M6 × 30",
    "Mutter M6",
    "Unterlegscheibe Ø 6,4",
    "Dübel 8 mm",
    "Kabelbinder 200 mm",
    "Klebeband „extra stark“",
    "Holzleim 250 g",
    "Spanplatte 19 mm",
    "Scharnier 35 mm",
    "Möbelgriff Edelstahl",
    "Filzgleiter Ø 25",
    "Winkel 40 × 40",
]


def _arr(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _pick(values: list[str]) -> str:
    return f"({_arr(values)})[1 + floor(random() * {len(values)})::int]"


_NAME = f"{_pick(_FIRST)} || ' ' || {_pick(_LAST)}"
_WHEN = "%(t0)s::timestamptz + (%(t1)s::timestamptz - %(t0)s::timestamptz) * random()"


@dataclass(frozen=True)
class _Database:
    schema: str  # run as the owner; several statements
    seed: tuple[str, ...]  # run as postgres with t0, t1, n
    grow: tuple[str, ...]  # run as postgres with t0, t1, n
    seed_rows: int  # n for the seed
    rows_per_hour: float  # n per hour of growth


_ORDERS = _Database(
    schema="""
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
CREATE TABLE products (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    price numeric(10,2) NOT NULL CHECK (price >= 0),
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL,
    status order_status NOT NULL DEFAULT 'pending',
    placed_at timestamptz NOT NULL,
    shipping_city text NOT NULL,
    note text
);
COMMENT ON TABLE orders IS 'Bestellungen – eine Zeile je Bestellung';
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line smallint NOT NULL,
    product_id integer NOT NULL REFERENCES products (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE INDEX orders_placed_at_idx ON orders (placed_at);
CREATE INDEX order_items_product_id_idx ON order_items (product_id);
CREATE VIEW daily_revenue AS
    SELECT date_trunc('day', o.placed_at) AS day, sum(i.quantity * i.unit_price) AS revenue
    FROM orders o JOIN order_items i ON i.order_id = o.id
    WHERE o.status NOT IN ('cancelled', 'refunded')
    GROUP BY 1;
GRANT SELECT, INSERT, UPDATE ON orders, order_items TO orders_app;
GRANT SELECT ON products TO orders_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO orders_reporting;
""",
    seed=(
        f"""INSERT INTO products (sku, name, price, active)
SELECT 'SKU-' || lpad(i::text, 5, '0'),
       ({_arr(_PRODUCTS)})[1 + i %% {len(_PRODUCTS)}] || ' „' || ({_arr(_ADJECTIVES)})[1 + (i / {len(_PRODUCTS)}) %% {len(_ADJECTIVES)}] || '“',
       round((2.5 + random() * 180)::numeric, 2), random() > 0.05
FROM generate_series(1, 240) i""",
    ),
    grow=(
        f"""INSERT INTO orders (customer_id, status, placed_at, shipping_city, note)
SELECT 1 + floor(random() * 4000)::int, 'pending', {_WHEN}, {_pick(_CITIES)},
       CASE WHEN random() < 0.08 THEN {_pick(_NOTES)} END
FROM generate_series(1, %(n)s)""",
        """INSERT INTO order_items (order_id, line, product_id, quantity, unit_price)
SELECT o.id, l, p.id, 1 + floor(random() * 3)::int, p.price
FROM orders o
CROSS JOIN LATERAL generate_series(1, 1 + (o.id %% 4)::int) l
JOIN products p ON p.id = 1 + ((o.id * 31 + l * 17) %% 240)
WHERE o.id > (SELECT coalesce(max(order_id), 0) FROM order_items)
ORDER BY o.id, l""",
        """UPDATE orders SET status = CASE
    WHEN status = 'pending' AND random() < 0.04 THEN 'cancelled'::order_status
    WHEN status = 'pending' THEN 'paid'
    WHEN status = 'paid' THEN 'shipped'
    ELSE 'delivered' END
WHERE status IN ('pending', 'paid', 'shipped') AND placed_at < %(t0)s::timestamptz""",
        "UPDATE orders SET status = 'refunded' WHERE status = 'delivered' AND random() < 0.002",
    ),
    seed_rows=5000,
    rows_per_hour=9,
)

_CUSTOMERS = _Database(
    schema="""
CREATE TYPE customer_tier AS ENUM ('standard', 'silver', 'gold', 'platinum');
CREATE TABLE customers (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name text NOT NULL,
    email text NOT NULL UNIQUE,
    tier customer_tier NOT NULL DEFAULT 'standard',
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL
);
COMMENT ON COLUMN customers.full_name IS 'Name, wie vom Kunden angegeben (Unicode)';
CREATE TABLE addresses (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    street text NOT NULL,
    postcode text NOT NULL,
    city text NOT NULL,
    is_default boolean NOT NULL DEFAULT false
);
CREATE TABLE consents (
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    topic text NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (customer_id, topic)
);
CREATE INDEX addresses_customer_id_idx ON addresses (customer_id);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO orders_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO orders_reporting;
""",
    seed=(),
    grow=(
        f"""INSERT INTO customers (full_name, email, tier, country, created_at)
SELECT {_NAME},
       'customer' || (base.n + g) || '@' || (ARRAY['example.org', 'example.de', 'example.dk', 'example.pl'])[1 + g %% 4],
       (ARRAY['standard', 'standard', 'standard', 'silver', 'gold', 'platinum'])[1 + floor(random() * 6)::int]::customer_tier,
       (ARRAY['DE', 'CH', 'DK', 'PL', 'SE', 'NO', 'FR', 'AT', 'IS', 'TR'])[1 + floor(random() * 10)::int],
       {_WHEN}
FROM (SELECT coalesce(max(id), 0) AS n FROM customers) base, generate_series(1, %(n)s) g""",
        f"""INSERT INTO addresses (customer_id, street, postcode, city, is_default)
SELECT c.id, {_pick(_STREETS)} || ' ' || (1 + floor(random() * 120)::int),
       lpad(floor(random() * 99999)::int::text, 5, '0'), {_pick(_CITIES)}, k = 1
FROM customers c CROSS JOIN LATERAL generate_series(1, 1 + (c.id %% 4 = 0)::int) k
WHERE c.id > (SELECT coalesce(max(customer_id), 0) FROM addresses)
ORDER BY c.id, k""",
        """INSERT INTO consents (customer_id, topic, granted_at)
SELECT c.id, t, c.created_at + interval '3 minutes'
FROM customers c CROSS JOIN unnest(ARRAY['newsletter', 'tracking', 'partner_offers']) t
WHERE c.id > (SELECT coalesce(max(customer_id), 0) FROM consents) AND random() < 0.4
ORDER BY c.id, t""",
    ),
    seed_rows=3000,
    rows_per_hour=2.5,
)

_INVENTORY = _Database(
    schema="""
CREATE TYPE movement_kind AS ENUM ('receipt', 'shipment', 'adjustment', 'transfer', 'return');
CREATE TABLE warehouses (
    id smallint PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    city text NOT NULL
);
CREATE TABLE items (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    name text NOT NULL,
    unit text NOT NULL DEFAULT 'Stück',
    weight_g integer
);
CREATE TABLE stock (
    warehouse_id smallint NOT NULL REFERENCES warehouses (id),
    item_id integer NOT NULL REFERENCES items (id),
    quantity integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (warehouse_id, item_id)
);
CREATE TABLE movements (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    warehouse_id smallint NOT NULL REFERENCES warehouses (id),
    kind movement_kind NOT NULL,
    delta integer NOT NULL,
    moved_at timestamptz NOT NULL,
    comment text
);
CREATE INDEX movements_item_id_moved_at_idx ON movements (item_id, moved_at);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO inventory_app;
""",
    seed=(
        """INSERT INTO warehouses (id, code, name, city) VALUES
    (1, 'DUS', 'Lager Nord', 'Düsseldorf'), (2, 'MMX', 'Lagret Syd', 'Malmö'),
    (3, 'LCJ', 'Magazyn Centralny', 'Łódź'), (4, 'TOS', 'Lageret i nord', 'Tromsø'),
    (5, 'QBQ', 'Entrepôt Est', 'Besançon'), (6, 'ZRH', 'Zentrallager', 'Zürich')""",
        f"""INSERT INTO items (sku, name, unit, weight_g)
SELECT 'ART-' || lpad(i::text, 6, '0'),
       ({_arr(_ITEMS)})[1 + i %% {len(_ITEMS)}] || ' – Charge ' || (i / {len(_ITEMS)}),
       (ARRAY['Stück', 'Packung', 'Rolle', 'kg'])[1 + i %% 4], 5 + floor(random() * 2000)::int
FROM generate_series(1, 700) i""",
        """INSERT INTO stock (warehouse_id, item_id, quantity, updated_at)
SELECT w.id, i.id, floor(random() * 500)::int, %(t0)s::timestamptz
FROM warehouses w CROSS JOIN items i WHERE (i.id + w.id) %% 3 <> 0
ORDER BY w.id, i.id""",
    ),
    grow=(
        """INSERT INTO movements (item_id, warehouse_id, kind, delta, moved_at, comment)
SELECT m.item_id, m.warehouse_id, m.kind,
       CASE WHEN m.kind = 'shipment' THEN -1 ELSE 1 END * (1 + floor(random() * 40)::int),
       m.at,
       CASE WHEN m.kind = 'adjustment' THEN 'Inventur: Zählung korrigiert'
            WHEN random() < 0.05 THEN 'Palette beschädigt – geprüft' END
FROM (SELECT 1 + floor(random() * 700)::int AS item_id, 1 + floor(random() * 6)::smallint AS warehouse_id,
             (ARRAY['receipt', 'shipment', 'shipment', 'shipment', 'adjustment', 'transfer', 'return'])[1 + floor(random() * 7)::int]::movement_kind AS kind,
             %(t0)s::timestamptz + (%(t1)s::timestamptz - %(t0)s::timestamptz) * random() AS at
      FROM generate_series(1, %(n)s) OFFSET 0) m
ORDER BY m.at""",
        """UPDATE stock s SET quantity = greatest(0, s.quantity + m.delta), updated_at = %(t1)s::timestamptz
FROM (SELECT warehouse_id, item_id, sum(delta)::int AS delta FROM movements
      WHERE moved_at >= %(t0)s::timestamptz AND moved_at < %(t1)s::timestamptz GROUP BY 1, 2) m
WHERE s.warehouse_id = m.warehouse_id AND s.item_id = m.item_id""",
    ),
    seed_rows=9000,
    rows_per_hour=14,
)

_BILLING = _Database(
    schema="""
CREATE TYPE invoice_status AS ENUM ('draft', 'issued', 'paid', 'overdue', 'void');
CREATE TYPE payment_method AS ENUM ('card', 'sepa_debit', 'bank_transfer', 'paypal');
CREATE TABLE accounts (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    holder text NOT NULL,
    iban text,
    currency char(3) NOT NULL DEFAULT 'EUR',
    opened_at timestamptz NOT NULL
);
CREATE TABLE invoices (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id integer NOT NULL REFERENCES accounts (id),
    number text NOT NULL UNIQUE,
    status invoice_status NOT NULL DEFAULT 'issued',
    amount numeric(12,2) NOT NULL CHECK (amount >= 0),
    issued_at timestamptz NOT NULL,
    due_on date NOT NULL,
    memo text
);
COMMENT ON TABLE invoices IS 'Rechnungen; Beträge in der Währung des Kontos';
CREATE TABLE payments (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES invoices (id),
    method payment_method NOT NULL,
    amount numeric(12,2) NOT NULL,
    paid_at timestamptz NOT NULL
);
CREATE INDEX invoices_account_id_idx ON invoices (account_id);
CREATE INDEX payments_invoice_id_idx ON payments (invoice_id);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO billing_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO billing_audit;
""",
    seed=(
        f"""INSERT INTO accounts (holder, iban, currency, opened_at)
SELECT {_NAME}, 'DE' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') || lpad(g::text, 11, '0'),
       (ARRAY['EUR', 'EUR', 'EUR', 'CHF', 'DKK', 'PLN', 'SEK'])[1 + floor(random() * 7)::int],
       %(t0)s::timestamptz - interval '400 days' * random()
FROM generate_series(1, 900) g""",
    ),
    grow=(
        """INSERT INTO invoices (account_id, number, status, amount, issued_at, due_on, memo)
SELECT 1 + floor(random() * 900)::int, 'RE-' || lpad((base.n + w.g)::text, 8, '0'), 'issued',
       round((9.9 + random() * 2400)::numeric, 2), w.at, (w.at + interval '14 days')::date,
       CASE WHEN random() < 0.1 THEN 'Leistungszeitraum laut Vertrag – zahlbar ohne Abzug' END
FROM (SELECT coalesce(max(id), 0) AS n FROM invoices) base,
     (SELECT g, %(t0)s::timestamptz + (%(t1)s::timestamptz - %(t0)s::timestamptz) * random() AS at
      FROM generate_series(1, %(n)s) g OFFSET 0) w
ORDER BY w.at""",
        """WITH paid AS (
    UPDATE invoices SET status = 'paid'
    WHERE status IN ('issued', 'overdue') AND issued_at < %(t0)s::timestamptz AND random() < 0.85
    RETURNING id, amount, issued_at)
INSERT INTO payments (invoice_id, method, amount, paid_at)
SELECT id, (ARRAY['card', 'sepa_debit', 'sepa_debit', 'bank_transfer', 'paypal'])[1 + floor(random() * 5)::int]::payment_method,
       amount, issued_at + interval '1 day' * (1 + floor(random() * 12))
FROM paid ORDER BY id""",
        "UPDATE invoices SET status = 'overdue' WHERE status = 'issued' AND due_on < %(t1)s::date",
    ),
    seed_rows=8000,
    rows_per_hour=13,
)

_CRM = _Database(
    schema="""
CREATE TYPE contact_kind AS ENUM ('lead', 'customer', 'partner', 'former');
CREATE TABLE companies (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    city text NOT NULL
);
CREATE TABLE contacts (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    company_id integer REFERENCES companies (id),
    full_name text NOT NULL,
    kind contact_kind NOT NULL,
    email text
);
CREATE TABLE notes (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    contact_id integer NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    body text NOT NULL,
    written_at timestamptz NOT NULL
);
CREATE INDEX notes_contact_id_idx ON notes (contact_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO crm_app;
""",
    seed=(
        f"""INSERT INTO companies (name, city)
SELECT {_pick(_LAST)} || ' & ' || {_pick(_LAST)} || (ARRAY[' GmbH', ' AG', ' A/S', ' S.A.', ' sp. z o.o.', ' AB'])[1 + g %% 6], {_pick(_CITIES)}
FROM generate_series(1, 400) g""",
        f"""INSERT INTO contacts (company_id, full_name, kind, email)
SELECT 1 + floor(random() * 400)::int, {_NAME},
       (ARRAY['lead', 'customer', 'partner', 'former'])[1 + floor(random() * 4)::int]::contact_kind,
       'kontakt' || g || '@example.com'
FROM generate_series(1, 2500) g""",
    ),
    grow=(
        f"""INSERT INTO notes (contact_id, body, written_at)
SELECT 1 + floor(random() * 2500)::int,
       (ARRAY['Rückruf vereinbart', 'Angebot verschickt – wartet auf Freigabe', 'Termin vor Ort in ', 'Kündigung angekündigt', 'Messekontakt, sehr interessiert'])[1 + floor(random() * 5)::int] || {_pick(_CITIES)},
       {_WHEN}
FROM generate_series(1, %(n)s)""",
    ),
    seed_rows=6000,
    rows_per_hour=10,
)

_CONTENT: dict[str, _Database] = {
    "orders": _ORDERS,
    "customers": _CUSTOMERS,
    "inventory": _INVENTORY,
    "billing": _BILLING,
    "crm": _CRM,
}

# What Spilo creates in every cluster (post_init.sh): roles and helper schemas.
_SPILO_SETUP = """
CREATE ROLE admin CREATEDB CREATEROLE NOLOGIN;
CREATE ROLE robot_zmon NOLOGIN;
CREATE ROLE standby WITH REPLICATION LOGIN;
CREATE SCHEMA metric_helpers AUTHORIZATION postgres;
CREATE VIEW metric_helpers.table_sizes AS
    SELECT schemaname, relname, pg_total_relation_size(relid) AS total_bytes
    FROM pg_catalog.pg_stat_user_tables;
GRANT USAGE ON SCHEMA metric_helpers TO admin, robot_zmon;
GRANT SELECT ON metric_helpers.table_sizes TO admin, robot_zmon;
CREATE SCHEMA user_management AUTHORIZATION postgres;
CREATE FUNCTION user_management.create_user(username text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    EXECUTE format('CREATE ROLE %I WITH LOGIN', username);
    RETURN username;
END
$$;
REVOKE ALL ON FUNCTION user_management.create_user(text) FROM public;
GRANT USAGE ON SCHEMA user_management TO admin;
GRANT EXECUTE ON FUNCTION user_management.create_user(text) TO admin;
"""


# --------------------------------------------------------------------------- the build


def _build(build: Path, root: Path, now: datetime, say: Progress) -> tuple[str, ...]:
    """Write the whole sandbox into ``build`` (paths inside name the final ``root``)."""
    specs = _specs(now)
    plants = {spec.name: _plants(spec, now) for spec in specs}
    plan = {
        spec.name: _groups([s for s in _slots(spec, now) if plants[spec.name].stored(s)])
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
                    _build_cluster,
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
    _write_sidecar(store, {rel: ("" if rel in plain else "AES256") for rel in _store_keys(store)})
    say("writing Kubernetes manifests and pod logs")
    runs = {
        spec.name: _kube_runs(
            spec,
            [s for g in plan[spec.name] for s in g.slots],
            plants[spec.name].failed,
            sizes[spec.name][-1],
        )
        for spec in specs
        if spec.live is not None
    }
    _write_manifests(build / "manifests", specs, runs, now)
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


def _build_cluster(
    spec: _Spec,
    groups: list[_Group],
    plants: _Plants,
    work: Path,
    store: Path,
    bindir: Path,
    say: Progress,
    cancel: threading.Event,
) -> list[int]:
    """Grow the cluster's data through the month, one real dump per group; the sizes."""
    if cancel.is_set():
        raise PgdeckError("demo sandbox build cancelled")
    pg = localpg.create(work / spec.name)
    sizes: list[int] = []
    try:
        pg.start()
        first = groups[0].slots[0].hour
        t0 = first
        rng = random.Random(f"{spec.name}/passwords")
        try:
            _bootstrap_spilo(pg, rng)
            # What a job dumping a freshly bootstrapped Spilo (its roles and helper schemas,
            # no application data) uploads: a complete pg_dumpall of a few kB, the planted
            # "suspiciously small" backup.
            empty = _pg_dumpall(pg, bindir) if plants.small is not None else b""
            _setup_cluster(pg, spec, rng, start=spec.lives[0].created, until=first)
        except psycopg.Error as exc:
            raise _data_error(spec, exc) from None
        for i, group in enumerate(groups, 1):
            if cancel.is_set():
                raise PgdeckError("demo sandbox build cancelled")
            t1 = group.slots[0].hour
            if t1 > t0:
                try:
                    _grow(pg, spec, t0, t1, seed=i)
                except psycopg.Error as exc:
                    raise _data_error(spec, exc) from None
            t0 = t1
            data = _pg_dumpall(pg, bindir)
            blob = gzip.compress(data, compresslevel=6, mtime=group.slots[0].epoch)
            _store_group(store, spec.name, group, blob, plants.small, empty)
            sizes.append(len(blob))
            say(
                f"{spec.name}: dump {i}/{len(groups)} ({t1:%Y-%m-%d %H:00}, "
                f"{len(data) / 1e6:.1f} MB, {len(blob) / 1e3:.0f} kB gzip, {len(group.slots)} hours)"
            )
    finally:
        pg.destroy()
    return sizes


def _data_error(spec: _Spec, exc: psycopg.Error) -> PgdeckError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return PgdeckError(
        f"the demo data for {spec.name} could not be generated: {first}",
        hint="this is a bug in pgdeck's demo builder; please report it",
    )


def _store_group(
    store: Path,
    cluster: str,
    group: _Group,
    blob: bytes,
    small: datetime | None = None,
    empty: bytes = b"",
) -> None:
    """One file for the group's first hour, hard links for the others; mtime of the last.

    The hour ``small`` gets a file of its own: the gzip of ``empty`` (an empty server's dump).
    """
    first: Path | None = None
    last = 0
    for slot in group.slots:
        path = store / backup_key(cluster, group.uid, slot.epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        if slot.hour == small:
            path.write_bytes(gzip.compress(empty, compresslevel=6, mtime=slot.epoch))
            os.utime(path, (slot.epoch, slot.epoch))
            continue
        if first is None:
            path.write_bytes(blob)
            first = path
        else:
            os.link(first, path)
        last = slot.epoch
    if first is not None:
        # hard links share one inode, so one mtime: that of the newest hour they serve
        os.utime(first, (last, last))


def _connect(pg: localpg.LocalPostgres, dbname: str) -> psycopg.Connection:
    return psycopg.connect(pg.dsn(dbname), autocommit=True)


def _bootstrap_spilo(pg: localpg.LocalPostgres, rng: random.Random) -> None:
    with _connect(pg, "postgres") as conn:
        conn.execute(_SPILO_SETUP)
        conn.execute(f"ALTER ROLE standby PASSWORD {_literal(_password(rng))}")


def _setup_cluster(
    pg: localpg.LocalPostgres,
    spec: _Spec,
    rng: random.Random,
    *,
    start: datetime,
    until: datetime,
) -> None:
    with _connect(pg, "postgres") as conn:
        for user, flags in spec.users.items():
            options = " ".join(f.upper() for f in flags if f.isalpha())
            conn.execute(f'CREATE ROLE "{user}" WITH LOGIN {options}'.rstrip())
            conn.execute(f'ALTER ROLE "{user}" PASSWORD {_literal(_password(rng))}')
        for db, owner in spec.databases.items():
            conn.execute(f'CREATE DATABASE "{db}" OWNER "{owner}"')
    for db, owner in spec.databases.items():
        content = _CONTENT[db]
        with _connect(pg, db) as conn:
            conn.execute(f'SET ROLE "{owner}"')
            conn.execute(content.schema)
            conn.execute("RESET ROLE")
            conn.execute("SELECT setseed(%s)", (_seed(spec.name, db, 0),))
            params = {"t0": start, "t1": until, "n": content.seed_rows}
            for sql in content.seed:
                conn.execute(sql, params)
            # the history before the month, in four steps so that states move on
            span = (until - start) / 4
            for k in range(4):
                a, b = start + k * span, start + (k + 1) * span
                n = max(1, round(content.seed_rows * spec.scale / 4))
                for sql in content.grow:
                    conn.execute(sql, {"t0": a, "t1": b, "n": n})
            conn.execute("VACUUM ANALYZE")


def _grow(pg: localpg.LocalPostgres, spec: _Spec, t0: datetime, t1: datetime, *, seed: int) -> None:
    hours = (t1 - t0) / HOUR
    for db in spec.databases:
        content = _CONTENT[db]
        n = max(1, round(content.rows_per_hour * spec.scale * hours))
        with _connect(pg, db) as conn:
            conn.execute("SELECT setseed(%s)", (_seed(spec.name, db, seed),))
            for sql in content.grow:
                conn.execute(sql, {"t0": t0, "t1": t1, "n": n})


def _seed(*parts: object) -> float:
    return (random.Random("/".join(map(str, parts))).random() * 2) - 1


def _password(rng: random.Random) -> str:
    return "".join(
        rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32)
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_dumpall(pg: localpg.LocalPostgres, bindir: Path) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(pg.env())
    env["PGDATABASE"] = "postgres"
    try:
        result = subprocess.run(
            [str(bindir / "pg_dumpall"), "--no-password"],
            capture_output=True,
            env=env,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PgdeckError(
            f"pg_dumpall could not run for the demo sandbox: {exc}",
            hint="check the PostgreSQL client installation (PGDECK_PG_BINDIR)",
        ) from None
    if result.returncode != 0 or not result.stdout.rstrip().endswith(DUMP_TRAILER.rstrip()):
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PgdeckError(
            f"pg_dumpall failed for the demo sandbox (exit status {result.returncode}): "
            + (err[-1] if err else "the dump has no completion trailer"),
            hint="see the server log; rebuild with --rebuild",
        )
    return result.stdout


# --------------------------------------------------------------------------- manifests, logs


@dataclass(frozen=True)
class _KubeRuns:
    """The Jobs Kubernetes keeps for one live cluster's CronJob (3 successful, 3 failed)."""

    succeeded: list[_Slot]  # the newest three with an object, oldest first
    failed: _Slot | None  # the planted failed run, kept within failedJobsHistoryLimit
    newest_size: int  # gzip bytes of the newest object: dump.sh's size estimate in the logs


def _kube_runs(
    spec: _Spec, stored: list[_Slot], failed: datetime | None, newest_size: int
) -> _KubeRuns:
    live = spec.live
    assert live is not None
    failed_slot = None
    if failed is not None:
        failed_slot = _slot_at(spec, failed)
        failed_slot.uid = live.uid
    return _KubeRuns([s for s in stored if s.uid == live.uid][-3:], failed_slot, newest_size)


def _write_manifests(
    out: Path,
    specs: tuple[_Spec, ...],
    runs: dict[str, _KubeRuns],
    now: datetime,
) -> None:
    postgresqls: list[dict] = []
    cronjobs: list[dict] = []
    jobs: list[dict] = []
    pods: list[dict] = []
    logs: dict[tuple[str, str], str] = {}
    for spec in specs:
        live = spec.live
        if live is None:
            continue  # deleted: only its backups remain
        rng = random.Random(f"{spec.name}/kubernetes")
        kept = runs[spec.name]
        pg = ko.postgresql(
            spec.name,
            spec.namespace,
            created=live.created,
            uid=live.uid,
            instances=spec.instances,
            schedule=spec.schedule,
            retention=spec.retention,
            databases=spec.databases,
            users=spec.users,
            volume_size=spec.volume,
            labels={"environment": "demo"},
        )
        postgresqls.append(pg)
        newest = kept.succeeded[-1]
        env = {
            "LOGICAL_BACKUP_S3_BUCKET": BUCKET,
            "LOGICAL_BACKUP_S3_RETENTION_TIME": spec.retention or "",
        }
        cj = ko.cronjob(
            pg,
            schedule=spec.schedule or SCHEDULE,
            last_schedule=max(newest.hour, kept.failed.hour if kept.failed else newest.hour),
            last_successful=newest.finished,
            env=env,
            uid=_uid(rng),
        )
        cronjobs.append(cj)
        db_size = _estimate_db_size(spec, kept.newest_size)
        db_pod = ko.database_pod(pg, 0, role="master")
        for slot in kept.succeeded:
            jb = ko.job(
                cj, started=slot.hour, finished=slot.finished + timedelta(seconds=1), uid=_uid(rng)
            )
            node = f"node-{1 + rng.randrange(3)}"
            pd = ko.pod(
                jb, started=slot.pod_start, finished=slot.finished, uid=_uid(rng), node=node
            )
            jobs.append(jb)
            pods.append(pd)
            logs[(spec.namespace, pd["metadata"]["name"])] = _backup_log(spec, slot, db_size)
        if kept.failed is not None:
            failed_job, failed_pods = _failed_job(cj, kept.failed, rng)
            jobs.append(failed_job)
            text = _failed_log(db_pod["status"]["podIP"])
            for pd in failed_pods:
                pods.append(pd)
                logs[(spec.namespace, pd["metadata"]["name"])] = text
        pods.append(db_pod)
        logs[(spec.namespace, db_pod["metadata"]["name"])] = _patroni_log(
            db_pod["metadata"]["name"], now
        )
    operator = ko.operator_configuration(
        OPERATOR_NAME,
        OPERATOR_NAMESPACE,
        {
            "logical_backup_docker_image": ko.DEFAULT_LOGICAL_BACKUP_IMAGE,
            "logical_backup_job_prefix": "logical-backup-",
            "logical_backup_provider": "s3",
            "logical_backup_s3_bucket": BUCKET,
            "logical_backup_s3_bucket_prefix": DEFAULT_S3_PREFIX,
            "logical_backup_s3_endpoint": "",
            "logical_backup_s3_region": "eu-central-1",
            "logical_backup_s3_retention_time": "",
            "logical_backup_s3_sse": "AES256",
            "logical_backup_schedule": SCHEDULE,
        },
        created=now - timedelta(days=731),
    )

    def key(obj: dict) -> tuple[str, str]:
        return (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    out.mkdir(parents=True)
    for name, items in (
        ("postgresqls.yaml", postgresqls),
        ("cronjobs.yaml", cronjobs),
        ("jobs.yaml", jobs),
        ("pods.yaml", pods),
        ("operator.yaml", [operator]),
    ):
        text = yaml.safe_dump(
            ko.kubectl_list(sorted(items, key=key)),
            sort_keys=True,
            default_flow_style=False,
            allow_unicode=True,
            width=1000,
        )
        (out / name).write_text(text, encoding="utf-8")
    for (namespace, pod_name), text in logs.items():
        path = out / "logs" / namespace / f"{pod_name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _estimate_db_size(spec: _Spec, gz_size: int) -> int:
    """What dump.sh's ``sum(pg_database_size(...))`` would say: template dbs plus data."""
    return 7_700_000 * (3 + len(spec.databases)) + gz_size * 9


# dump.sh asks the Kubernetes API for the pods to dump from with curl before ``set -x``
_CURL_PROGRESS = (
    "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current",
    "                                 Dload  Upload   Total   Spent    Left  Speed",
    "",
    "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0",
    "100  7391    0  7391    0     0   412k      0 --:--:-- --:--:-- --:--:--  423k",
)

# What dump.sh traces (``set -x``) from the start of a run to the size estimate: the same
# for a run that uploads and for one whose dump fails.
_DUMP_START = (
    "+ '[' s3 == az ']'",
    "+ dump",
    "+ compress",
    "+ upload",
    "+ /usr/lib/postgresql/15/bin/pg_dumpall",
    "+ pigz",
    "+ case $LOGICAL_BACKUP_PROVIDER in",
    "++ estimate_size",
    "++ /usr/lib/postgresql/15/bin/psql -tqAc 'select sum(pg_database_size(datname)::numeric) from pg_database;'",
)


def _backup_log(spec: _Spec, slot: _Slot, db_size: int) -> str:
    """What the operator's dump.sh prints (``set -x`` from the dump on) for one run."""
    url = f"s3://{BUCKET}/{DEFAULT_S3_PREFIX}/{backup_key(spec.name, slot.uid, slot.epoch)}"
    prefix = f"{DEFAULT_S3_PREFIX}/{spec.name}/{slot.uid}/logical_backups/"
    expected = db_size // 5
    lines = [
        *_CURL_PROGRESS,
        *_DUMP_START,
        f"+ aws_upload {expected}",
        f"+ declare -r EXPECTED_SIZE={expected}",
        "++ date +%s",
        f"+ PATH_TO_BACKUP={url}",
        "+ args=()",
        f"+ [[ ! -z {expected} ]]",
        '+ args+=("--expected-size=$EXPECTED_SIZE")',
        "+ [[ ! -z '' ]]",
        "+ [[ ! -z eu-central-1 ]]",
        '+ args+=("--region=$LOGICAL_BACKUP_S3_REGION")',
        "+ [[ ! -z AES256 ]]",
        '+ args+=("--sse=$LOGICAL_BACKUP_S3_SSE")',
        f"+ aws s3 cp - {url} --expected-size={expected} --region=eu-central-1 --sse=AES256",
        "+ aws_delete_outdated",
    ]
    if spec.retention:
        cutoff = _retention_cutoff(slot.hour, spec.retention)
        lines += [
            f"+ [[ -z {spec.retention} ]]",
            f"++ date -d '{spec.retention} ago' +%F",
            f"+ cutoff_date={cutoff}",
            f"+ prefix={prefix}",
            '+ args=("--no-paginate" "--output=text" "--prefix=$prefix" "--bucket=$LOGICAL_BACKUP_S3_BUCKET")',
            "+ [[ ! -z '' ]]",
            "+ [[ ! -z eu-central-1 ]]",
            '+ args+=("--region=$LOGICAL_BACKUP_S3_REGION")',
            f"+ aws s3api list-objects --no-paginate --output=text --prefix={prefix} --bucket={BUCKET} "
            f"--region=eu-central-1 '--query=Contents[?LastModified<=`{cutoff}`].[Key]'",
            "+ sed -i '$d' /tmp/outdated-backups",
            "++ wc -l",
            "+ count=0",
            "+ [[ 0 == 0 ]]",
            "+ echo 'no outdated backups to delete'",
            "no outdated backups to delete",
            "+ return 0",
        ]
    else:
        lines += [
            "+ [[ -z '' ]]",
            "+ echo 'no retention time configured: skip cleanup of outdated backups'",
            "no retention time configured: skip cleanup of outdated backups",
            "+ return 0",
        ]
    lines += ["+ [[ 0 != 0 ]]", "+ [[ 0 != 0 ]]", "+ [[ 0 != 0 ]]", "+ set +x"]
    return "\n".join(lines) + "\n"


def _failed_job(cj: dict, slot: _Slot, rng: random.Random) -> tuple[dict, list[dict]]:
    """A Job whose every pod failed (exit code 1) until its backoffLimit was exceeded.

    The Job controller waits 10 s, 20 s, 40 s ... (at most 6 min) before each new pod.
    """
    attempts: list[tuple[datetime, datetime]] = []
    t = slot.pod_start
    for k in range(FAILED_ATTEMPTS):
        end = t + timedelta(seconds=3 + rng.randint(0, 2))
        attempts.append((t, end))
        t = end + timedelta(seconds=min(360, 10 * 2**k) + rng.randint(0, 1))
    jb = ko.job(
        cj,
        started=slot.hour,
        finished=attempts[-1][1] + timedelta(seconds=1),
        succeeded=False,
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
        uid=_uid(rng),
    )
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes draws generated names from
    pods = []
    for start, end in attempts:
        suffix = "".join(rng.choice(alphabet) for _ in range(5))
        pods.append(
            ko.pod(
                jb,
                started=start,
                finished=end,
                exit_code=1,
                name=f"{jb['metadata']['name']}-{suffix}",
                uid=_uid(rng),
                node=f"node-{1 + rng.randrange(3)}",
            )
        )
    return jb, pods


def _failed_log(db_ip: str) -> str:
    """dump.sh's output when the database refuses connections while shutting down.

    pg_dumpall and the size estimate's psql both fail; the arithmetic on the empty estimate
    then aborts ``upload`` before ``aws s3 cp`` runs, so nothing is uploaded, and
    ``errexit``/``pipefail`` end the script with exit status 1.
    """
    refused = (
        f'connection to server at "{db_ip}", port 5432 failed: '
        "FATAL:  the database system is shutting down"
    )
    lines = [
        *_CURL_PROGRESS,
        *_DUMP_START,
        f"pg_dumpall: error: {refused}",
        f"psql: error: {refused}",
        '/dump.sh: line 118: / DUMP_SIZE_COEFF: syntax error: operand expected (error token is "/ DUMP_SIZE_COEFF")',
    ]
    return "\n".join(lines) + "\n"


def _retention_cutoff(t: datetime, retention: str) -> str:
    """``date -d "<retention> ago" +%F`` (calendar months and years, as GNU date does)."""
    number, unit = retention.split()[:2]
    n, unit = int(number), unit.rstrip("s")
    if unit in ("month", "year"):
        months = t.year * 12 + (t.month - 1) - (n if unit == "month" else 12 * n)
        year, month = divmod(months, 12)
        day = min(t.day, calendar.monthrange(year, month + 1)[1])
        return f"{year:04d}-{month + 1:02d}-{day:02d}"
    days = n * (7 if unit == "week" else 1)
    return (t - timedelta(days=days)).strftime("%Y-%m-%d")


def _patroni_log(pod_name: str, now: datetime) -> str:
    """The tail of a Spilo pod's log: Patroni's heartbeat every 10 seconds."""
    t = now.replace(microsecond=0) - timedelta(seconds=now.second % 10) - timedelta(seconds=190)
    rng = random.Random(pod_name)
    lines = []
    for _ in range(20):
        ms = rng.randrange(1000)
        lines.append(
            f"{t:%Y-%m-%d %H:%M:%S},{ms:03d} INFO: no action. "
            f"I am ({pod_name}), the leader with the lock"
        )
        t += timedelta(seconds=10)
    return "\n".join(lines) + "\n"


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


def _iter_backups(root: Path) -> Iterator[Path]:
    """Every backup object of a sandbox (for tests and checks)."""
    yield from sorted((root / "store" / DEFAULT_S3_PREFIX).glob("*/*/logical_backups/*.sql.gz"))
