"""The demo world's story: its cast of clusters, their lives and hours, the planted problems.

Everything here is derived from the build's ``now`` alone (seeded by ``FORMAT_VERSION``), so
a sandbox built, rolled forward and checked by the tests tells the same story each time:
which clusters exist and when they were created and deleted, the hour each CronJob run
starts and uploads (``slot_at``), which runs the planted problems leave without an object
(``planted``), and how the month's hours are grouped onto the few real dumps taken.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

FORMAT_VERSION = 2
BUCKET = "demo-backups"
HOURS = 30 * 24
HOUR = timedelta(hours=1)
OPERATOR_NAMESPACE = "postgres-operator"
OPERATOR_NAME = "postgres-operator"
SCHEDULE = "0 * * * *"
_HOURS_PER_DUMP = 45  # 720 hours -> 16 real dumps per cluster


@dataclass(frozen=True)
class Life:
    """One incarnation of a cluster: a uid between creation and deletion."""

    uid: str
    created: datetime
    deleted: datetime | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    namespace: str  # "" when the cluster no longer exists in Kubernetes
    databases: dict[str, str]  # name -> owner
    users: dict[str, list[str]]
    lives: tuple[Life, ...]
    schedule: str | None = None
    retention: str | None = None
    instances: int = 2
    volume: str = "10Gi"
    scale: float = 1.0  # how much data per hour

    @property
    def live(self) -> Life | None:
        last = self.lives[-1]
        return last if last.deleted is None else None


@dataclass
class Slot:
    """One hourly backup: the CronJob's scheduled hour and the object's epoch."""

    hour: datetime
    pod_start: datetime
    epoch: int
    finished: datetime
    uid: str = ""


@dataclass
class Group:
    """Consecutive hours served by one real dump."""

    uid: str
    slots: list[Slot] = field(default_factory=list)


def random_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def cluster_specs(now: datetime) -> tuple[Spec, ...]:
    rng = random.Random(f"pgdeck-demo/{FORMAT_VERSION}")
    billing_deleted = floor_hour(now - timedelta(days=9)) + timedelta(minutes=21, seconds=7)
    legacy_deleted = floor_hour(now - timedelta(days=12)) + timedelta(minutes=37, seconds=52)
    return (
        Spec(
            "acid-orders",
            "shop",
            databases={"orders": "orders_owner", "customers": "orders_owner"},
            users={"orders_owner": ["createdb"], "orders_app": [], "orders_reporting": []},
            lives=(Life(random_uid(rng), now - timedelta(days=214, hours=5, minutes=12)),),
            schedule=SCHEDULE,
            retention="1 month",
            instances=3,
            volume="20Gi",
            scale=1.0,
        ),
        Spec(
            "acid-inventory",
            "shop",
            databases={"inventory": "inventory_owner"},
            users={"inventory_owner": [], "inventory_app": []},
            lives=(Life(random_uid(rng), now - timedelta(days=97, hours=2, minutes=48)),),
            scale=0.8,
        ),
        Spec(
            "acid-billing",
            "finance",
            databases={"billing": "billing_owner"},
            users={"billing_owner": [], "billing_app": [], "billing_audit": []},
            lives=(
                Life(random_uid(rng), now - timedelta(days=301, hours=7), billing_deleted),
                Life(random_uid(rng), billing_deleted + timedelta(minutes=14, seconds=31)),
            ),
            volume="15Gi",
            scale=0.7,
        ),
        Spec(
            "acid-legacy",
            "",
            databases={"crm": "crm_owner"},
            users={"crm_owner": [], "crm_app": []},
            lives=(Life(random_uid(rng), now - timedelta(days=688, hours=11), legacy_deleted),),
            instances=1,
            scale=0.5,
        ),
    )


def slot_at(spec: Spec, hour: datetime) -> Slot:
    """The backup the job scheduled at ``hour`` writes: pod start, key epoch, upload end."""
    rng = random.Random(f"{spec.name}/{hour.isoformat()}")
    pod_start = hour + timedelta(seconds=rng.randint(1, 3))
    epoch = int((pod_start + timedelta(seconds=rng.randint(3, 9))).timestamp())
    finished = datetime.fromtimestamp(epoch, UTC) + timedelta(seconds=rng.randint(6, 18))
    return Slot(hour, pod_start, epoch, finished)


def last_hour(spec: Spec, now: datetime) -> datetime:
    """The scheduled hour of the newest job that had finished its upload at ``now``."""
    last = floor_hour(now)
    if slot_at(spec, last).finished > now:
        last -= HOUR
    return last


def scheduled_slots(spec: Spec, now: datetime) -> list[Slot]:
    """The month of hourly runs this cluster's CronJob(s) scheduled, oldest first.

    The newest is the last job that had finished its upload at ``now``. Every run is
    here, including those the planted problems leave without an object (see ``planted``).
    """
    last = last_hour(spec, now)
    slots: list[Slot] = []
    for i in range(HOURS - 1, -1, -1):
        slot = slot_at(spec, last - i * HOUR)
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
class Plants:
    """The planted problems of one cluster: scheduled hours (UTC) they concern."""

    missing: frozenset[datetime] = frozenset()  # no job ran, no object
    failed: datetime | None = None  # the job failed, no object
    small: datetime | None = None  # the object is a complete dump of an empty server
    plain: datetime | None = None  # the object is stored without SSE

    def stored(self, slot: Slot) -> bool:
        return slot.hour not in self.missing and slot.hour != self.failed


def planted(spec: Spec, now: datetime) -> Plants:
    hour = floor_hour(now)
    missing: frozenset[datetime] = frozenset()
    if spec.name == MISSING_CLUSTER:
        missing = frozenset(hour - h * HOUR for h in MISSING_HOURS_AGO)
    return Plants(
        missing=missing,
        failed=last_hour(spec, now) - HOUR if spec.name == FAILED_CLUSTER else None,
        small=hour - SMALL_HOURS_AGO * HOUR if spec.name == SMALL_CLUSTER else None,
        plain=hour - PLAIN_HOURS_AGO * HOUR if spec.name == PLAIN_CLUSTER else None,
    )


def dump_groups(slots: list[Slot]) -> list[Group]:
    """Split each uid's run of hours into ~45-hour groups, one real dump each."""
    groups: list[Group] = []
    by_uid: dict[str, list[Slot]] = {}
    for s in slots:
        by_uid.setdefault(s.uid, []).append(s)
    for uid, run in by_uid.items():
        n = max(3, round(len(run) / _HOURS_PER_DUMP))
        for i in range(n):
            part = run[i * len(run) // n : (i + 1) * len(run) // n]
            if part:
                groups.append(Group(uid, part))
    groups.sort(key=lambda g: g.slots[0].epoch)
    return groups
