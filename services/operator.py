"""What the Zalando Postgres Operator does, as plain functions and constants.

Checked against the operator's ``logical-backup/dump.sh`` and ``pkg/cluster/k8sres.go``
(see the project's domain notes): names, labels, the S3 key layout and the defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

API_GROUP = "acid.zalan.do"
API_VERSION = "v1"
PLURAL = "postgresqls"
OPERATOR_CONFIG_PLURAL = "operatorconfigurations"

DEFAULT_JOB_PREFIX = "logical-backup-"
DEFAULT_S3_PREFIX = "spilo"  # operator 1.10.x has no setting and always writes this
DEFAULT_SCHEDULE = "30 00 * * *"
DEFAULT_SSE = "AES256"
DEFAULT_CLUSTER_NAME_LABEL = "cluster-name"
BACKUP_APPLICATION_LABEL = "spilo-logical-backup"
JOB_NAME_MAX = 52

# <prefix>/<cluster>/<uid>/logical_backups/<epoch>.sql.gz; the epoch has 10 digits so
# that keys under one uid sort by time (the catalog's incremental refresh relies on it).
BACKUP_DIR = "logical_backups"
_KEY_TAIL = re.compile(
    r"(?P<cluster>[^/]+)/(?P<uid>[^/]+)/" + BACKUP_DIR + r"/(?P<epoch>\d{10})\.sql\.gz"
)


def logical_backup_job_name(cluster: str, prefix: str = DEFAULT_JOB_PREFIX) -> str:
    """The CronJob's name: prefix + cluster, cut to 52 characters, trailing '-' stripped."""
    return (prefix + cluster)[:JOB_NAME_MAX].rstrip("-")


def credentials_secret_name(cluster: str, user: str = "postgres") -> str:
    return f"{user}.{cluster}.credentials.postgresql.acid.zalan.do"


@dataclass(frozen=True, slots=True)
class BackupKey:
    """A parsed backup object key, relative to the storage location's prefix."""

    cluster: str
    uid: str
    epoch: int

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.epoch, UTC)


def parse_backup_key(relative_key: str) -> BackupKey | None:
    """Parse ``<cluster>/<uid>/logical_backups/<epoch>.sql.gz``; None for anything else.

    Other objects under the prefix (WAL, basebackups, stray files) are not backups.
    """
    m = _KEY_TAIL.fullmatch(relative_key)
    if m is None:
        return None
    return BackupKey(m["cluster"], m["uid"], int(m["epoch"]))


def backup_key(cluster: str, uid: str, epoch: int) -> str:
    return f"{cluster}/{uid}/{BACKUP_DIR}/{epoch:010d}.sql.gz"


_RETENTION = re.compile(r"\s*(\d+)\s*(day|week|month|year)s?\s*", re.IGNORECASE)
_RETENTION_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def retention_days(text: str | None) -> int | None:
    """Days kept for an operator retention value such as ``3 days`` or ``1 month``.

    dump.sh hands the value to ``date -d "-$RETENTION"``; a month there is a calendar
    month, which we approximate as 30 days. None means "nothing is ever deleted".
    """
    if not text or not text.strip():
        return None
    m = _RETENTION.fullmatch(text)
    if m is None:
        return None
    return int(m[1]) * _RETENTION_DAYS[m[2].lower()]
