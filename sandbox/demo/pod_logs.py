"""The logs of the demo's pods: what the operator's dump.sh and Patroni print.

A logical-backup run's ``set -x`` trace (with the retention cleanup it does or skips), the
failed run's trace when the database refuses connections, and a Spilo pod's heartbeat.
"""

from __future__ import annotations

import calendar
import random
from datetime import datetime, timedelta

from sandbox.demo.story import BUCKET, Slot, Spec
from services.operator import DEFAULT_S3_PREFIX, backup_key

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


def backup_log(spec: Spec, slot: Slot, db_size: int) -> str:
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


def failed_log(db_ip: str) -> str:
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


def patroni_log(pod_name: str, now: datetime) -> str:
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
