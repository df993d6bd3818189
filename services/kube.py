"""Reading the operator's world from Kubernetes: a live API per context, or manifests.

Both sources hand out the same thing, a ``KubeSnapshot`` of plain dicts shaped as the
API serves them (``kubectl get -o yaml`` writes the same shape), so one parser
(``services.resources``) serves the live cluster, a GitOps checkout and the demo.
Live calls ask for raw JSON (``_preload_content=False``): the client's typed models
cost time and, in kubernetes 37, refuse objects a real server would happily send.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from services.config import KubernetesConfig
from services.errors import ConfigError, KubeError
from services.models import OperatorSettings, SourceProblem
from services.operator import (
    API_GROUP,
    API_VERSION,
    BACKUP_APPLICATION_LABEL,
    OPERATOR_CONFIG_PLURAL,
    PLURAL,
)
from services.text import LINE_LIMIT, bounded_lines

BACKUP_SELECTOR = f"application={BACKUP_APPLICATION_LABEL}"
OPERATOR_CONFIGMAP = "postgres-operator"
_TIMEOUT = (5, 30)  # connect, read: a hung API must not hang the console
_PAGE = 500
# libyaml's safe loader where PyYAML was built with it (ten times quicker on a directory
# of a thousand manifests), else the pure-Python one: the same documents either way.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class KubeSnapshot:
    """Everything one context (or manifests directory) says about logical backups."""

    context: str
    postgresqls: list[dict[str, Any]] = field(default_factory=list)
    cronjobs: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    operator: OperatorSettings | None = None
    problems: list[SourceProblem] = field(default_factory=list)
    reachable: bool = True


class LogStream:
    """The lines of a pod's log, read as they are iterated.

    ``close()`` may be called from any thread: a read blocked on a quiet followed log then
    ends at once (urllib3's ``HTTPResponse.shutdown``) and the iteration stops, so a reader
    thread does not outlive the screen that wanted the log. A stream never iterated gives
    its connection back on ``close()``; an iterated one when the iteration ends.
    """

    def __init__(
        self,
        lines: Iterator[str],
        shutdown: Callable[[], None] | None = None,
        release: Callable[[], None] | None = None,
    ):
        self._lines = lines
        self._shutdown = shutdown
        self._release = release
        self._started = False
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        self._started = True
        try:
            for line in self._lines:
                if self.closed:
                    return
                yield line
        except Exception:
            if self.closed:
                return  # the read was cut short on purpose
            raise
        finally:
            close = getattr(self._lines, "close", None)
            if close is not None:
                close()  # a generator left mid-way runs its own cleanup now

    def close(self) -> None:
        self.closed = True
        for step in (self._shutdown, None if self._started else self._release):
            if step is not None:
                with contextlib.suppress(Exception):
                    step()


class KubeSource(Protocol):
    context: str

    def snapshot(self) -> KubeSnapshot: ...

    def read_log(
        self, namespace: str, pod: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> LogStream: ...


def open_kube_sources(cfg: KubernetesConfig) -> list[KubeSource]:
    """The sources the configuration names: a manifests directory, or one per context."""
    if not cfg.enabled:
        return []
    if cfg.manifests is not None:
        return [ManifestSource(cfg.manifests, namespaces=cfg.namespaces)]
    return [LiveSource(cfg, ctx) for ctx in _contexts(cfg)]


def _kubeconfig_path(cfg: KubernetesConfig) -> str | None:
    if cfg.kubeconfig is not None:
        return str(cfg.kubeconfig)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _contexts(cfg: KubernetesConfig) -> list[str]:
    path = _kubeconfig_path(cfg)
    if path is None or not Path(path).is_file():
        if cfg.kubeconfig is not None:
            raise ConfigError(f"kubernetes.kubeconfig: {cfg.kubeconfig} not found")
        return ["in-cluster"] if _in_cluster() else []
    if cfg.contexts:
        return list(cfg.contexts)
    from kubernetes import config as kconfig

    try:
        _, active = kconfig.list_kube_config_contexts(config_file=path)
    except Exception as exc:  # the loader raises ConfigException and plain errors alike
        raise ConfigError(
            f"kubeconfig {path}: {exc}", "fix it or set kubernetes.kubeconfig"
        ) from exc
    return [active["name"]] if active else []


class LiveSource:
    """One Kubernetes context, read through the official client."""

    def __init__(self, cfg: KubernetesConfig, context: str) -> None:
        self.cfg = cfg
        self.context = context
        self._api: Any = None

    # --- plumbing -------------------------------------------------------------------
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            conf = client.Configuration()
            try:
                if self.context == "in-cluster":
                    config.load_incluster_config(client_configuration=conf)
                else:
                    config.load_kube_config(
                        config_file=_kubeconfig_path(self.cfg),
                        context=self.context,
                        client_configuration=conf,
                        persist_config=False,
                    )
            except Exception as exc:
                raise ConfigError(
                    f"kubernetes context {self.context!r}: {exc}",
                    "check kubernetes.contexts and the kubeconfig",
                ) from exc
            conf.retries = 1
            self._api = client.ApiClient(conf)
        return self._api

    def _json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        resp = call(*args, _preload_content=False, _request_timeout=_TIMEOUT, **kwargs)
        try:
            return json.loads(resp.data)
        finally:
            resp.release_conn()

    def _list(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            extra: dict[str, Any] = {"_continue": token} if token else {}
            body = self._json(call, *args, limit=_PAGE, **kwargs, **extra)
            items.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _error(self, exc: BaseException, what: str) -> KubeError:
        return kube_error(exc, self.context, what)

    # --- the snapshot -----------------------------------------------------------------
    def snapshot(self) -> KubeSnapshot:
        from kubernetes import client

        snap = KubeSnapshot(context=self.context)
        api = self.api()
        custom = client.CustomObjectsApi(api)
        batch = client.BatchV1Api(api)
        core = client.CoreV1Api(api)
        try:
            namespaces = self._scope(snap, custom)
        except KubeError as exc:
            snap.reachable = False
            snap.problems.append(SourceProblem(f"kubernetes {self.context}", str(exc)))
            return snap
        snap.operator = self._operator_settings(snap, custom, core, namespaces)
        # The CronJob carries the cluster's labels (application: spilo by default, and
        # configurable); only its pod template adds application: spilo-logical-backup,
        # which the Jobs and pods inherit. So CronJobs are found by the cluster-name label.
        label = (snap.operator.cluster_name_label if snap.operator else None) or "cluster-name"
        for ns in namespaces:
            for kind, target, fetch, selector in (
                ("cronjobs", snap.cronjobs, self._fetcher(batch, "cron_job", ns), label),
                ("jobs", snap.jobs, self._fetcher(batch, "job", ns), BACKUP_SELECTOR),
                ("pods", snap.pods, self._fetcher(core, "pod", ns), BACKUP_SELECTOR),
            ):
                try:
                    target.extend(fetch(label_selector=selector))
                except Exception as exc:
                    err = self._error(exc, f"list {kind}" + (f" in {ns}" if ns else ""))
                    snap.problems.append(
                        SourceProblem(f"kubernetes {self.context}", str(err), False)
                    )
        return snap

    def _fetcher(self, api: Any, kind: str, ns: str | None) -> Callable[..., list[dict[str, Any]]]:
        if ns is None:
            call = getattr(api, f"list_{kind}_for_all_namespaces")
            return lambda **kw: self._list(call, **kw)
        call = getattr(api, f"list_namespaced_{kind}")
        return lambda **kw: self._list(call, ns, **kw)

    def _scope(self, snap: KubeSnapshot, custom: Any) -> list[str | None]:
        """List postgresqls; returns the namespaces the rest is read in (None = all)."""
        from kubernetes.client import ApiException

        if self.cfg.namespaces:
            for ns in self.cfg.namespaces:
                try:
                    snap.postgresqls.extend(
                        self._list(
                            custom.list_namespaced_custom_object, API_GROUP, API_VERSION, ns, PLURAL
                        )
                    )
                except ApiException as exc:
                    if exc.status in (401,) or exc.status is None:
                        raise self._error(exc, f"list postgresqls in {ns}") from exc
                    err = self._error(exc, f"list postgresqls in {ns}")
                    snap.problems.append(SourceProblem(f"kubernetes {self.context}", str(err)))
                except Exception as exc:
                    raise self._error(exc, f"list postgresqls in {ns}") from exc
            return list(self.cfg.namespaces)
        try:
            snap.postgresqls.extend(
                self._list(custom.list_cluster_custom_object, API_GROUP, API_VERSION, PLURAL)
            )
            return [None]
        except ApiException as exc:
            if exc.status != 403:
                raise self._error(exc, "list postgresqls") from exc
        except Exception as exc:
            raise self._error(exc, "list postgresqls") from exc
        fallback = self._context_namespace()
        snap.problems.append(
            SourceProblem(
                f"kubernetes {self.context}",
                "listing postgresqls in all namespaces is forbidden (403); "
                f"reading namespace {fallback!r} only: set kubernetes.namespaces to choose",
                fatal_for_source=False,
            )
        )
        try:
            snap.postgresqls.extend(
                self._list(
                    custom.list_namespaced_custom_object, API_GROUP, API_VERSION, fallback, PLURAL
                )
            )
        except Exception as exc:
            raise self._error(exc, f"list postgresqls in {fallback}") from exc
        return [fallback]

    def _context_namespace(self) -> str:
        from kubernetes import config as kconfig

        try:
            contexts, _ = kconfig.list_kube_config_contexts(config_file=_kubeconfig_path(self.cfg))
        except Exception:
            return "default"
        for ctx in contexts:
            if ctx.get("name") == self.context:
                return (ctx.get("context") or {}).get("namespace") or "default"
        return "default"

    def _operator_settings(
        self, snap: KubeSnapshot, custom: Any, core: Any, namespaces: list[str | None]
    ) -> OperatorSettings | None:

        try:
            configs = self._list(
                custom.list_cluster_custom_object, API_GROUP, API_VERSION, OPERATOR_CONFIG_PLURAL
            )
        except Exception:  # forbidden, absent CRD, ...: try the namespaces
            configs = []
            for ns in namespaces:
                if ns is None:
                    continue
                with contextlib.suppress(Exception):
                    configs.extend(
                        self._list(
                            custom.list_namespaced_custom_object,
                            API_GROUP,
                            API_VERSION,
                            ns,
                            OPERATOR_CONFIG_PLURAL,
                        )
                    )
        if configs:
            return operator_settings_from_object(sorted(configs, key=_ns_name)[0])
        maps: list[dict[str, Any]] = []
        try:
            maps = self._list(
                core.list_config_map_for_all_namespaces,
                field_selector=f"metadata.name={OPERATOR_CONFIGMAP}",
            )
        except Exception:
            for ns in [n for n in namespaces if n] + ["default", OPERATOR_CONFIGMAP]:
                try:
                    maps.append(self._json(core.read_namespaced_config_map, OPERATOR_CONFIGMAP, ns))
                    break
                except Exception:
                    continue
        if maps:
            return operator_settings_from_object(sorted(maps, key=_ns_name)[0])
        return None

    # --- logs -------------------------------------------------------------------------
    def read_log(
        self, namespace: str, pod: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> LogStream:
        """The pod's log; the request is made here, its lines arrive as they are read."""
        from kubernetes import client

        core = client.CoreV1Api(self.api())
        kwargs: dict[str, Any] = {"follow": follow, "_preload_content": False}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if not follow:
            kwargs["_request_timeout"] = _TIMEOUT
        resp: Any
        try:
            resp = core.read_namespaced_pod_log(pod, namespace, **kwargs)
        except Exception as exc:
            raise self._error(exc, f"read the log of pod {namespace}/{pod}") from exc

        def lines() -> Iterator[str]:
            try:
                yield from _lines(resp.stream(8192))
            finally:
                resp.release_conn()

        return LogStream(lines(), getattr(resp, "shutdown", None), resp.release_conn)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    # Bounded per line: a pod that prints megabytes without a newline costs LINE_LIMIT.
    return bounded_lines(chunks, LINE_LIMIT)


def _ns_name(obj: dict[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return (md.get("namespace") or "", md.get("name") or "")


def call_json(context: str, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call``'s JSON answer (a dict; {} for one that is not an object); None for 404
    Not Found; a ``KubeError`` naming ``what`` for the rest, a body not JSON included."""
    try:
        resp = call(*args, _preload_content=False, _request_timeout=_TIMEOUT, **kwargs)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise kube_error(exc, context, what) from None
    try:
        body = json.loads(resp.data)
    except ValueError:
        raise KubeError(f"kubernetes context {context!r}: {what}: not JSON") from None
    finally:
        resp.release_conn()
    return body if isinstance(body, dict) else {}


def kube_error(exc: BaseException, context: str, what: str) -> KubeError:
    """One line for what the client raised; never the token or the request headers."""
    status = getattr(exc, "status", None)
    where = f"kubernetes context {context!r}: cannot {what}"
    if status is not None and hasattr(exc, "body"):
        reason = ""
        try:
            reason = json.loads(exc.body or "{}").get("message", "")  # type: ignore[attr-defined]
        except (ValueError, AttributeError):
            reason = getattr(exc, "reason", "") or ""
        if status == 401:
            return KubeError(
                f"{where}: unauthorized (401)", "log in again or refresh the kubeconfig's token"
            )
        if status == 403:
            return KubeError(
                f"{where}: forbidden (403): {reason}",
                "ask for read access or narrow kubernetes.namespaces",
            )
        if status == 404:
            return KubeError(
                f"{where}: not found (404)", "is the Postgres Operator's CRD installed here?"
            )
        return KubeError(f"{where}: HTTP {status}: {reason or getattr(exc, 'reason', '')}")
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text or "Max retries" in text:
        return KubeError(
            f"{where}: API server unreachable", "check the network, VPN or kubeconfig server URL"
        )
    if "timed out" in text.lower():
        return KubeError(f"{where}: API server timed out", "check the network or try again")
    return KubeError(f"{where}: {type(exc).__name__}: {text.splitlines()[0] if text else ''}")


# --- operator settings --------------------------------------------------------------
_SETTING_KEYS = {
    "bucket": "logical_backup_s3_bucket",
    "prefix": "logical_backup_s3_bucket_prefix",
    "schedule": "logical_backup_schedule",
    "retention": "logical_backup_s3_retention_time",
    "sse": "logical_backup_s3_sse",
    "endpoint": "logical_backup_s3_endpoint",
    "region": "logical_backup_s3_region",
    "job_prefix": "logical_backup_job_prefix",
}


def operator_settings_from_object(obj: dict[str, Any]) -> OperatorSettings:
    """Settings from an OperatorConfiguration or the operator's ConfigMap."""
    md = obj.get("metadata") or {}
    kind = obj.get("kind", "ConfigMap")
    source = f"{kind} {md.get('namespace', '')}/{md.get('name', '')}"
    if kind == "OperatorConfiguration":
        conf = obj.get("configuration") or {}
        flat = dict(conf.get("logical_backup") or {})
        label = (conf.get("kubernetes") or {}).get("cluster_name_label")
    else:
        flat = dict(obj.get("data") or {})
        label = flat.get("cluster_name_label")
    values: dict[str, str | None] = {}
    for attr, key in _SETTING_KEYS.items():
        v = flat.get(key)
        values[attr] = None if v is None else str(v)
    return OperatorSettings(source=source, cluster_name_label=label, **values)


# --- manifests ----------------------------------------------------------------------
class ManifestSource:
    """A directory of YAML as ``kubectl get ... -o yaml`` writes it, logs as ``<pod>.log``."""

    def __init__(self, directory: Path, namespaces: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.namespaces = set(namespaces)
        self.context = f"manifests:{directory.name}"
        self._logs: dict[tuple[str, str], Path] | None = None

    def snapshot(self) -> KubeSnapshot:
        snap = KubeSnapshot(context=self.context)
        if not self.directory.is_dir():
            snap.reachable = False
            snap.problems.append(
                SourceProblem(self.context, f"{self.directory}: manifests directory not found")
            )
            return snap
        operator_objs: list[dict[str, Any]] = []
        for path in sorted(self.directory.rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            try:
                docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER))
            except (OSError, yaml.YAMLError) as exc:
                snap.problems.append(
                    SourceProblem(self.context, f"{path}: cannot be read as YAML ({exc})", False)
                )
                continue
            for obj in _flatten(docs):
                kind = obj.get("kind")
                ns = (obj.get("metadata") or {}).get("namespace", "")
                if (
                    self.namespaces
                    and ns not in self.namespaces
                    and kind != "OperatorConfiguration"
                ) and not (kind == "ConfigMap" and _ns_name(obj)[1] == OPERATOR_CONFIGMAP):
                    continue
                labels = (obj.get("metadata") or {}).get("labels") or {}
                backup_obj = labels.get("application") == BACKUP_APPLICATION_LABEL
                if kind == "postgresql":
                    snap.postgresqls.append(obj)
                elif kind == "CronJob":  # matched to clusters by name later
                    snap.cronjobs.append(obj)
                elif kind == "Job" and backup_obj:
                    snap.jobs.append(obj)
                elif kind == "Pod" and backup_obj:
                    snap.pods.append(obj)
                elif kind == "OperatorConfiguration" or (
                    kind == "ConfigMap" and _ns_name(obj)[1] == OPERATOR_CONFIGMAP
                ):
                    operator_objs.append(obj)
        if operator_objs:
            operator_objs.sort(
                key=lambda o: (o.get("kind") != "OperatorConfiguration", _ns_name(o))
            )
            snap.operator = operator_settings_from_object(operator_objs[0])
        return snap

    def _log_index(self) -> dict[tuple[str, str], Path]:
        if self._logs is None:
            self._logs = {}
            for path in self.directory.rglob("*.log"):
                self._logs[(path.parent.name, path.stem)] = path
                self._logs.setdefault(("", path.stem), path)
        return self._logs

    def read_log(
        self, namespace: str, pod: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> LogStream:
        index = self._log_index()
        path = index.get((namespace, pod)) or index.get(("", pod))
        if path is None:
            raise KubeError(
                f"{self.context}: no log for pod {namespace}/{pod}",
                f"logs are read from {self.directory}/**/{pod}.log",
            )
        return LogStream(_file_lines(path, tail_lines))


def _file_lines(path: Path, tail_lines: int | None) -> Iterator[str]:
    """A log file's lines, read as they are iterated, each bounded as a live log's are."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise KubeError(f"{path}: cannot be read ({exc.strerror})") from exc
    with f:
        lines = bounded_lines(iter(lambda: f.read(1 << 16), b""), LINE_LIMIT)
        if tail_lines is None:
            yield from lines
        elif tail_lines > 0:
            yield from collections.deque(lines, maxlen=tail_lines)


def _flatten(docs: list[Any]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List"):
            yield from (d for d in doc["items"] if isinstance(d, dict))
        else:
            yield doc
