"""Core objects (ConfigMap, Secret, Namespace) and the envelopes of API answers.

Lists as the API server and ``kubectl get -o yaml`` return them, and the metav1 Status
body sent with an error.
"""

from __future__ import annotations

import base64
from datetime import datetime

from sandbox.kube.meta import DEFAULT_CREATED, object_meta, stable_uid


def configmap(
    name: str, namespace: str, data: dict[str, str], *, created: datetime | None = None
) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(
            name,
            namespace,
            kind="ConfigMap",
            uid=stable_uid("ConfigMap", namespace, name),
            created=created or DEFAULT_CREATED,
        ),
        "data": {k: str(v) for k, v in data.items()},
    }


def secret(name: str, namespace: str, data: dict[str, str]) -> dict:
    """An Opaque Secret; values are base64-encoded as the API serves them."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(
            name,
            namespace,
            kind="Secret",
            uid=stable_uid("Secret", namespace, name),
            created=DEFAULT_CREATED,
        ),
        "data": {k: base64.b64encode(v.encode()).decode("ascii") for k, v in data.items()},
        "type": "Opaque",
    }


def namespace(name: str, *, created: datetime | None = None) -> dict:
    """A Namespace as the API server returns it (phase Active)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": object_meta(
            name,
            None,
            kind="Namespace",
            uid=stable_uid("Namespace", name),
            created=created or DEFAULT_CREATED,
            labels={"kubernetes.io/metadata.name": name},
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def object_list(
    items: list[dict],
    *,
    api_version: str,
    kind: str,
    resource_version: str = "1000",
    continue_token: str | None = None,
    remaining: int | None = None,
) -> dict:
    """A list answer such as ``PodList``; ``metadata.continue`` / ``remainingItemCount``
    only when given."""
    meta: dict = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    return {"apiVersion": api_version, "items": items, "kind": kind, "metadata": meta}


def kubectl_list(items: list[dict]) -> dict:
    """What ``kubectl get -o yaml`` writes for several objects."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def status(code: int, reason: str, message: str, *, details: dict | None = None) -> dict:
    """A metav1 Status body, as the API server sends with an error."""
    body: dict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if 200 <= code < 300 else "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body
