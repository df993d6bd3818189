"""Throwaway staging clusters for restore tests: create, wait until ready, read, delete.

A staging cluster is a ``postgresql`` resource (``services.staging_spec`` says which)
created through the official Kubernetes client with the same kubeconfig and context
handling as the catalog's ``LiveSource``. Ready means what a restore needs, not only what
the operator says: the operator writes ``Running`` as soon as its creation code returns
(its own source doubts it), so the master pod (``spilo-role=master``) must also be Ready.
Every wait runs on the injected clock, with a short sleep between polls, and ends with one
clear line. The superuser's password comes from the cluster's credentials Secret and is
never logged nor ``repr``-ed. Creations and deletions go to ``audit`` (an ``Archive.note``)
when one is given. Everything the API returns is untrusted.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.clock import Clock, system_clock
from services.config import KubernetesConfig, StagingConfig
from services.errors import PgdeckError
from services.kube import LiveSource, _contexts, call_json, kube_error
from services.operator import (
    API_GROUP,
    API_VERSION,
    DEFAULT_CLUSTER_NAME_LABEL,
    PLURAL,
    credentials_secret_name,
)
from services.staging_spec import (
    KEEP_LABEL,
    RUN_ID_LABEL,
    SELECTOR,
    SOURCE_LABEL,
    checked_version,
    manifest,
    staging_name,
)
from services.text import safe_text

_TIMEOUT = (5, 30)  # connect, read
FAILED = ("CreateFailed", "Invalid")  # the operator gave up: waiting longer cannot help

Audit = Callable[[dict[str, Any]], object]


class StagingError(PgdeckError):
    """A staging cluster could not be made ready (or could not be found)."""


@dataclass(frozen=True, slots=True)
class StagingCluster:
    """A staging ``postgresql`` that pgdeck created (or found by its labels)."""

    context: str
    namespace: str
    name: str
    uid: str
    created: datetime | None
    run_id: str
    source: str
    version: str
    volume: str  # as the manifest asks, e.g. "8Gi"
    status: str | None = None  # PostgresClusterStatus when it was read
    kept: bool = False  # labelled as kept on purpose (--keep)

    def to_dict(self) -> dict[str, Any]:
        from services.jsonable import iso

        return {
            "context": self.context,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "created": iso(self.created),
            "run_id": self.run_id,
            "source": self.source,
            "version": self.version,
            "volume": self.volume,
            "status": self.status,
            "kept": self.kept,
        }


@dataclass(frozen=True, slots=True)
class Credentials:
    """The staging superuser's login; the password is never shown."""

    username: str
    password: str = field(repr=False)


class StagingClusters:
    """Staging clusters in ``cfg.namespace`` of one Kubernetes context."""

    def __init__(
        self,
        kube: KubernetesConfig,
        cfg: StagingConfig,
        *,
        context: str | None = None,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 2.0,
        audit: Audit | None = None,
        cluster_name_label: str = DEFAULT_CLUSTER_NAME_LABEL,
    ) -> None:
        if context is None:
            found = _contexts(kube)
            if not found:
                raise StagingError(
                    "no Kubernetes context to create staging clusters in",
                    "set kubernetes.kubeconfig or kubernetes.contexts",
                )
            context = found[0]
        self.context = context
        self.cfg = cfg
        self.clock = clock
        self.sleep = sleep
        self.poll_seconds = poll_seconds
        self.audit = audit
        self.cluster_name_label = cluster_name_label
        self._source = LiveSource(kube, context)

    # --- plumbing -------------------------------------------------------------------
    def _call(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call``'s JSON answer; None for 404 Not Found; a ``KubeError`` for the rest."""
        return call_json(self.context, what, call, *args, **kwargs)

    def _custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._source.api())

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self._source.api())

    def _note(self, action: str, cluster: StagingCluster) -> None:
        if self.audit is not None:
            self.audit(
                {
                    "action": action,
                    "context": cluster.context,
                    "namespace": cluster.namespace,
                    "staging_cluster": cluster.name,
                    "uid": cluster.uid,
                    "run_id": cluster.run_id,
                    "source_cluster": cluster.source,
                }
            )

    # --- the lifecycle --------------------------------------------------------------
    def create(
        self,
        *,
        source: str,
        version: str | None,
        dump_size: int,
        run_id: str,
        source_namespace: str = "",
        keep: bool = False,
    ) -> StagingCluster:
        """Create the staging cluster of ``run_id`` for ``source``; it is not ready yet.
        When this raises, the cluster may still exist (a create that timed out, an audit
        entry not written): ``name_for`` names it, for the caller's teardown."""
        version = checked_version(version, source)
        name = self.name_for(source, run_id, source_namespace)
        body = manifest(
            self.cfg,
            name=name,
            version=version,
            dump_size=dump_size,
            run_id=run_id,
            source=source,
            source_namespace=source_namespace,
            keep=keep,
        )
        what = f"create postgresql {self.cfg.namespace}/{name}"
        try:
            resp = self._custom().create_namespaced_custom_object(
                API_GROUP,
                API_VERSION,
                self.cfg.namespace,
                PLURAL,
                body,
                _preload_content=False,
                _request_timeout=_TIMEOUT,
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise StagingError(
                    f"staging cluster {self.cfg.namespace}/{name} exists already",
                    "a run with this run id made it; delete it, or run "
                    "`pgdeck restore-test --cleanup` once that run is over",
                ) from None
            raise kube_error(exc, self.context, what) from None
        try:
            created = json.loads(resp.data)
        except ValueError:
            created = {}
        finally:
            resp.release_conn()
        cluster = self._cluster(created if isinstance(created, dict) else {}, fallback=body)
        self._note("staging-create", cluster)
        return cluster

    def name_for(self, source: str, run_id: str, source_namespace: str = "") -> str:
        """The name ``create`` gives the staging cluster of ``run_id`` for ``source``."""
        return staging_name(self.cfg.team, source, run_id, f"{self.context}/{source_namespace}")

    def get(self, name: str) -> StagingCluster | None:
        obj = self._call(
            f"read postgresql {self.cfg.namespace}/{name}",
            self._custom().get_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.cfg.namespace,
            PLURAL,
            name,
        )
        return None if obj is None else self._cluster(obj)

    def wait_ready(self, cluster: StagingCluster, timeout: float | None = None) -> StagingCluster:
        """Wait until the operator says ``Running`` and the master pod is Ready; a
        ``StagingError`` when the operator gives up, the cluster goes, or time runs out."""
        limit = self.cfg.ready_timeout_seconds if timeout is None else timeout
        deadline = self.clock() + timedelta(seconds=limit)
        where = f"staging cluster {cluster.namespace}/{cluster.name}"
        # Quick polls first (a stand-in or a warm operator is fast), then every poll_seconds.
        delay = min(0.1, self.poll_seconds)
        while True:
            now = self.get(cluster.name)
            if now is None:
                raise StagingError(f"{where} disappeared while it was being created")
            pod = self.master_pod_state(cluster.name)
            if now.status in FAILED:
                raise StagingError(
                    f"{where}: the operator reports {now.status}",
                    "see the operator's log and the namespace's events",
                )
            if now.status == "Running" and pod == "ready":
                return now
            if self.clock() >= deadline:
                raise StagingError(
                    f"{where} not ready within {limit:g} s (operator status "
                    f"{safe_text(now.status or 'none')}, master pod {pod})",
                    "see the operator's log and the namespace's events, "
                    "or raise staging.ready_timeout_seconds",
                )
            self.sleep(delay)
            delay = min(self.poll_seconds, delay * 2)

    def master_pod_state(self, name: str) -> str:
        """``ready``, ``not ready`` or ``missing``: the pod labelled as the cluster's master."""
        pods = self._master_pods(name)
        if not pods:
            return "missing"
        return "ready" if any(_ready(p) for p in pods) else "not ready"

    def master_pod(self, name: str) -> str | None:
        """The name of the cluster's master pod (a Ready one first), for a port-forward;
        None when there is none."""
        pods = sorted(self._master_pods(name), key=lambda p: not _ready(p))
        for pod in pods:
            pod_name = _dict(pod.get("metadata")).get("name")
            if isinstance(pod_name, str) and pod_name:
                return pod_name
        return None

    def _master_pods(self, name: str) -> list[dict[str, Any]]:
        """The pods labelled as the cluster's master, those being deleted left out."""
        body = self._call(
            f"list pods of {self.cfg.namespace}/{name}",
            self._core().list_namespaced_pod,
            self.cfg.namespace,
            label_selector=f"spilo-role=master,{self.cluster_name_label}={name}",
        )
        pods = [p for p in _dict(body).get("items") or [] if isinstance(p, dict)]
        return [p for p in pods if not _dict(p.get("metadata")).get("deletionTimestamp")]

    def credentials(self, cluster: StagingCluster) -> Credentials:
        """The superuser's name and password from the cluster's credentials Secret."""
        secret = credentials_secret_name(cluster.name)
        where = f"secret {cluster.namespace}/{secret}"
        body = self._call(
            f"read {where}", self._core().read_namespaced_secret, secret, cluster.namespace
        )
        if body is None:
            raise StagingError(f"{where} not found", "has the operator finished creating it?")
        data = _dict(body.get("data"))
        values: dict[str, str] = {}
        for key in ("username", "password"):
            raw = data.get(key)
            try:
                values[key] = base64.b64decode(str(raw or ""), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                values[key] = ""
            if not values[key]:
                raise StagingError(f"{where} has no usable {key}")  # never the value itself
        return Credentials(values["username"], values["password"])

    def address(self, cluster: StagingCluster) -> str:
        """``host:port`` of the primary, from ``staging.address``."""
        return self.cfg.address.format(cluster=cluster.name, namespace=cluster.namespace)

    def delete(self, cluster: StagingCluster) -> bool:
        """Delete it (the operator then removes its pods, volumes and Secrets); False when
        it was gone already. Audited either way."""
        body = self._call(
            f"delete postgresql {cluster.namespace}/{cluster.name}",
            self._custom().delete_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            cluster.namespace,
            PLURAL,
            cluster.name,
        )
        self._note("staging-delete" if body is not None else "staging-delete-gone", cluster)
        return body is not None

    def managed(self) -> list[StagingCluster]:
        """The staging clusters pgdeck made in the namespace (found by their labels)."""
        body = self._call(
            f"list postgresqls in {self.cfg.namespace}",
            self._custom().list_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            self.cfg.namespace,
            PLURAL,
            label_selector=SELECTOR,
        )
        items = [o for o in _dict(body).get("items") or [] if isinstance(o, dict)]
        return [self._cluster(o) for o in items]

    def cleanup(self, older_than: timedelta) -> list[StagingCluster]:
        """Delete the staging clusters created longer than ``older_than`` ago (a crashed
        run's); those without a creation time, and those kept on purpose (``--keep``), are
        left alone. The deleted, oldest first."""
        cutoff = self.clock() - older_than
        old = [
            c
            for c in self.managed()
            if c.created is not None and c.created <= cutoff and not c.kept
        ]
        old.sort(key=lambda c: (c.created, c.name))
        return [c for c in old if self.delete(c)]

    # --- reading answers ------------------------------------------------------------
    def _cluster(
        self, obj: dict[str, Any], fallback: dict[str, Any] | None = None
    ) -> StagingCluster:
        md, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
        if fallback is not None and not md.get("name"):  # an answer without the object
            md, spec = fallback["metadata"], fallback["spec"]
        labels = _dict(md.get("labels"))
        return StagingCluster(
            context=self.context,
            namespace=str(md.get("namespace") or self.cfg.namespace),
            name=str(md.get("name") or ""),
            uid=str(md.get("uid") or ""),
            created=_time(md.get("creationTimestamp")),
            run_id=str(labels.get(RUN_ID_LABEL) or ""),
            source=str(labels.get(SOURCE_LABEL) or ""),
            kept=labels.get(KEEP_LABEL) == "true",
            version=str(_dict(spec.get("postgresql")).get("version") or ""),
            volume=str(_dict(spec.get("volume")).get("size") or ""),
            status=_status(obj.get("status")),
        )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        isinstance(cond, dict) and (cond.get("type"), cond.get("status")) == ("Ready", "True")
        for cond in _dict(pod.get("status")).get("conditions") or []
    )


def _status(status: Any) -> str | None:
    if isinstance(status, dict):
        value = status.get("PostgresClusterStatus")
        return str(value) if value else None
    return None


def _time(text: Any) -> datetime | None:
    from services.clock import parse_instant

    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_instant(text, "creationTimestamp")
    except PgdeckError:
        return None
