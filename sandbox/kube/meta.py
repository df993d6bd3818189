"""What every fabricated Kubernetes object shares: metadata, ids, references, times.

Times are written as the API server writes them (RFC 3339, seconds, ``Z``); ids and
resource versions derived from an object's identity are stable across runs.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

DEFAULT_SPILO_IMAGE = "ghcr.io/zalando/spilo-15:3.0-p1"
DEFAULT_CREATED = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)  # for objects given no time
SERVICE_ACCOUNT = "postgres-pod"

_UID_NAMESPACE = uuid.UUID("6f1c3d2e-8a57-4c1b-9d0e-5b7f2a4c8e11")
# The alphabet of k8s.io/apimachinery/pkg/util/rand.String: no vowels, no 0/1/3.
_RAND_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(dt: datetime) -> str:
    """``2025-01-06T09:00:00Z``: UTC, seconds precision, as the API server writes times."""
    if dt.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()


def stable_uid(*parts: object) -> str:
    return str(uuid.uuid5(_UID_NAMESPACE, "/".join(str(p) for p in parts)))


def _resource_version(*parts: object) -> str:
    return str(100000 + int.from_bytes(_digest(*parts)[:4], "big") % 9_000_000)


def rand_suffix(seed: str, n: int = 5) -> str:
    d = _digest(seed)
    return "".join(_RAND_ALPHABET[b % len(_RAND_ALPHABET)] for b in d[:n])


def hex_id(seed: str, n: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def ip_address(seed: str, prefix: str) -> str:
    d = _digest(seed)
    return f"{prefix}.{d[0] % 250 + 2}.{d[1] % 250 + 2}"


def object_meta(
    name: str,
    namespace: str | None,
    *,
    kind: str,
    uid: str,
    created: datetime,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    owners: list[dict] | None = None,
    generation: int | None = None,
    generate_name: str | None = None,
) -> dict:
    meta: dict = {"name": name}
    if generate_name is not None:
        meta["generateName"] = generate_name
    if namespace is not None:
        meta["namespace"] = namespace
    meta["uid"] = uid
    meta["resourceVersion"] = _resource_version(kind, namespace, name, uid)
    if generation is not None:
        meta["generation"] = generation
    meta["creationTimestamp"] = rfc3339(created)
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owners:
        meta["ownerReferences"] = owners
    return meta


def owner_reference(
    obj: dict, *, controller: bool = True, block_owner_deletion: bool | None = True
) -> dict:
    """An ownerReference pointing at ``obj`` (a complete object with apiVersion and kind)."""
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
    }
    if block_owner_deletion is not None:
        ref["blockOwnerDeletion"] = block_owner_deletion
    return ref


def object_reference(obj: dict) -> dict:
    """A core/v1 ObjectReference to ``obj``, as in a CronJob's ``status.active``."""
    m = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", "batch/v1"),
        "kind": obj.get("kind", "Job"),
        "name": m["name"],
        "namespace": m.get("namespace"),
        "resourceVersion": m.get("resourceVersion"),
        "uid": m.get("uid"),
    }


def created_at(obj: dict) -> datetime:
    return parse_rfc3339(obj["metadata"]["creationTimestamp"])
