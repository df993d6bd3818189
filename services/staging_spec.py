"""What a restore test's throwaway staging cluster is: its name, labels, volume and manifest.

Plain functions, no I/O: ``services.staging`` creates what these describe. The name says
what the cluster is (``{team}-restore-test-{source}-{run}``) and keeps the operator's rules:
a DNS-1035 label of at most 58 characters (the operator's limit, so that its Services and
pods fit in 63) that begins with ``{teamId}-`` (enforced by operators that set
``enable_team_id_clustername_prefix``). Everything read from the source cluster is
untrusted: a name is reduced to what a DNS label allows, a version must be a number.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import datetime
from typing import Any

from services.config import StagingConfig
from services.errors import UsageError
from services.operator import API_GROUP, API_VERSION

NAME_MAX = 58  # the operator refuses longer cluster names
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "pgdeck"
COMPONENT = "app.kubernetes.io/component"
COMPONENT_VALUE = "restore-test"
RUN_ID_LABEL = "pgdeck.io/run-id"
SOURCE_LABEL = "pgdeck.io/source-cluster"
SOURCE_NAMESPACE_LABEL = "pgdeck.io/source-namespace"
KEEP_LABEL = "pgdeck.io/keep"  # kept on purpose (--keep): --cleanup leaves it
SELECTOR = f"{MANAGED_BY}={MANAGER},{COMPONENT}={COMPONENT_VALUE}"

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_VERSION = re.compile(r"^\d{1,2}$")
GIB = 2**30


def new_run_id(now: datetime) -> str:
    """``20261120t120000-a1b2c3``: when, and six random hex digits that tell runs apart."""
    return f"{now:%Y%m%dt%H%M%S}-{secrets.token_hex(3)}"


def is_dns_1035(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS_1035.match(name))


def staging_name(team: str, source: str, run_id: str, where: str = "") -> str:
    """``{team}-restore-test-{source}-{hash}-{run}`` within the operator's rules; the
    source's name is reduced to DNS characters and cut (the run's suffix is never cut).
    ``hash`` (4 hex digits of ``where``/source: its context and namespace) tells apart
    sources that reduce or cut to the same text (``acid_main`` and ``acid.main``, two
    long names, one name in two namespaces), which would otherwise meet in one run."""
    if not is_dns_1035(team):
        raise UsageError(f"staging.team {team!r} is not a DNS label", "use e.g. pgdeck")
    run = re.sub(r"[^a-z0-9]", "", run_id.lower())[-6:] or "0"
    mark = hashlib.sha256(f"{where}/{source}".encode()).hexdigest()[:4]
    head, tail = f"{team}-restore-test-", f"-{mark}-{run}"
    room = NAME_MAX - len(head) - len(tail)
    if room < 1:
        head = f"{team}-rt-"
        room = NAME_MAX - len(head) - len(tail)
    if room < 1:
        raise UsageError(f"staging.team {team!r} is too long for a cluster name", "shorten it")
    middle = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", source.lower())).strip("-")
    middle = middle[:room].rstrip("-") or "db"
    return head + middle + tail


def volume_gib(dump_size: int, cfg: StagingConfig) -> int:
    """The staging volume in GiB: the gzip dump's size times the headroom, rounded up,
    never under the minimum."""
    need = math.ceil(max(dump_size, 0) * cfg.volume_headroom / GIB)
    return max(cfg.min_volume_gib, need)


def labels(run_id: str, source: str, source_namespace: str) -> dict[str, str]:
    """The staging cluster's labels: who manages it, which run and which source."""
    out = {
        MANAGED_BY: MANAGER,
        COMPONENT: COMPONENT_VALUE,
        RUN_ID_LABEL: run_id,
        SOURCE_LABEL: source,
    }
    if source_namespace:
        out[SOURCE_NAMESPACE_LABEL] = source_namespace
    for key, value in out.items():
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise UsageError(f"{value!r} cannot be the value of label {key}")
    return out


def checked_version(version: str | None, source: str) -> str:
    """The source's PostgreSQL major version, as the ``postgresql`` resource writes it."""
    if version is None:
        raise UsageError(
            f"{source}: its PostgreSQL version is unknown",
            "a restore test needs the source's postgresql resource in Kubernetes",
        )
    if not _VERSION.match(version):
        raise UsageError(f"{source}: {version!r} is not a PostgreSQL major version")
    return version


def manifest(
    cfg: StagingConfig,
    *,
    name: str,
    version: str,
    dump_size: int,
    run_id: str,
    source: str,
    source_namespace: str = "",
    keep: bool = False,
) -> dict[str, Any]:
    """The ``postgresql`` resource of a staging cluster: one instance, no logical backups."""
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "postgresql",
        "metadata": {
            "name": name,
            "namespace": cfg.namespace,
            "labels": labels(run_id, source, source_namespace)
            | ({KEEP_LABEL: "true"} if keep else {}),
        },
        "spec": {
            "teamId": cfg.team,
            "numberOfInstances": 1,
            "postgresql": {"version": version},
            "volume": {"size": f"{volume_gib(dump_size, cfg)}Gi"},
            "enableLogicalBackup": False,
        },
    }
