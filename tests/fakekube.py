"""A Kubernetes API server for tests: stdlib HTTP, real-shaped JSON, the official client works.

    kube = FakeKube().start()
    kube.add(ko.postgresql("acid-main", "db", created=...))
    write_kubeconfig(tmp_path / "kubeconfig", {"prod": kube})
    ...
    kube.stop()

What it does as a real API server does: bearer-token auth (401), 403/404/400 ``Status``
bodies, lists sorted by namespace/name with ``labelSelector``, ``fieldSelector``, ``limit``
and ``continue`` (``remainingItemCount`` only without selectors, as the real one), list items
of built-in types without ``apiVersion``/``kind`` (CRD items keep them), pod logs whole or
followed in chunks (400 while the pod is Pending), ``/version`` and minimal discovery. It creates (POST) and deletes
(DELETE) namespaced objects as the real server does: the created object comes back with
``uid``, ``resourceVersion`` and ``creationTimestamp``, a second create of one name is 409
``AlreadyExists``, a delete of a missing one 404 ``NotFound``; hooks (``on_create``,
``on_delete``) let a stand-in controller react, as ``tests/standin_operator.py`` does. A pod's
``portforward`` is served over a WebSocket with the kubelet's channel protocol, to a real TCP
endpoint the pod names (``tests/fakekube_portforward.py``). No PUT or PATCH, no watches.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from sandbox import kube as ko

USER = "system:serviceaccount:pgdeck:pgdeck-reader"

VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:36:04Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# (group, version, plural) -> (kind, namespaced)
_RESOURCES: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("", "v1", "secrets"): ("Secret", True),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "endpoints"): ("Endpoints", True),
    ("", "v1", "events"): ("Event", True),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("", "v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True),
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "nodes"): ("Node", False),
    ("apps", "v1", "deployments"): ("Deployment", True),
    ("apps", "v1", "statefulsets"): ("StatefulSet", True),
    ("apps", "v1", "replicasets"): ("ReplicaSet", True),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True),
    ("batch", "v1", "jobs"): ("Job", True),
    ("batch", "v1", "cronjobs"): ("CronJob", True),
    ("acid.zalan.do", "v1", "postgresqls"): ("postgresql", True),
    ("acid.zalan.do", "v1", "operatorconfigurations"): ("OperatorConfiguration", True),
    ("acid.zalan.do", "v1", "postgresteams"): ("PostgresTeam", True),
}
_BUILTIN_GROUPS = {"", "apps", "batch"}
_SINGULAR = {"postgresqls": "pg", "operatorconfigurations": "opconfig"}

# Field selectors a real server accepts besides metadata.name / metadata.namespace.
_FIELDS = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "jobs": {"status.successful"},
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "reason",
        "type",
    },
}


def _plural_of(kind: str) -> str:
    k = kind.lower()
    if k.endswith("s"):
        return k + "es"
    if k.endswith("y") and k[-2:-1] not in "aeiou":
        return k[:-1] + "ies"
    return k + "s"


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class _BadRequest(Exception):
    pass


# --- selectors -------------------------------------------------------------------------

_REQ_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_REQ_OP = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)\s*$")
_REQ_EXISTS = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


# A requirement: (key, operator, values); operators "=", "!=", "in", "notin", "exists", "!".
Requirement = tuple[str, str, frozenset[str]]


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse the Kubernetes label selector syntax; ``_BadRequest`` when it is invalid."""
    reqs: list[Requirement] = []
    for req in _split_outside_parens(selector):
        if m := _REQ_SET.match(req):
            values = frozenset(v.strip() for v in m[3].split(",") if v.strip())
            reqs.append((m[1], m[2], values))
        elif m := _REQ_OP.match(req):
            reqs.append((m[1], "!=" if m[2] == "!=" else "=", frozenset({m[3]})))
        elif m := _REQ_EXISTS.match(req):
            reqs.append((m[2], "!" if m[1] else "exists", frozenset()))
        else:
            raise _BadRequest(f"unable to parse requirement: {req.strip()!r}")
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str]) -> bool:
    for key, op, values in reqs:
        present = key in labels
        if op in ("=", "in"):
            ok = present and labels[key] in values
        elif op in ("!=", "notin"):
            ok = not present or labels[key] not in values
        elif op == "exists":
            ok = present
        else:
            ok = not present
        if not ok:
            return False
    return True


def _field_value(obj: dict, path: str) -> str:
    cur: object = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(selector: str, plural: str) -> list[tuple[str, bool, str]]:
    """(field, equal, value) for each requirement; only fields the real server supports."""
    allowed = {"metadata.name", "metadata.namespace"} | _FIELDS.get(plural, set())
    reqs = []
    for req in _split_outside_parens(selector):
        m = re.match(r"^\s*([\w.]+)\s*(==|!=|=)\s*(.*?)\s*$", req)
        if m is None:
            raise _BadRequest(f"invalid selector: {req.strip()!r}")
        if m[1] not in allowed:
            raise _BadRequest(f"field label not supported: {m[1]}")
        reqs.append((m[1], m[2] != "!=", m[3]))
    return reqs


def fields_match(reqs: list[tuple[str, bool, str]], obj: dict) -> bool:
    return all((_field_value(obj, f) == v) == equal for f, equal, v in reqs)


def _encode_continue(rv: str, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": int(rv), "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data.get("start"), str):
            raise ValueError
        return data["start"]
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise _BadRequest(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from e


# --- the server ------------------------------------------------------------------------


class FakeKube:
    """An in-memory Kubernetes API server on 127.0.0.1 (GET, and POST/DELETE of namespaced
    objects)."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], dict] = {}
        self._resources = dict(_RESOURCES)
        self._logs: dict[tuple[str, str], tuple[list[str], float]] = {}
        self._forbidden: list[re.Pattern[str]] = []
        self._rv = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        # Called (outside the lock) with a copy of each object created or deleted over HTTP.
        self.on_create: list[Callable[[dict], None]] = []
        self.on_delete: list[Callable[[dict], None]] = []

    # -- lifecycle

    def start(self) -> FakeKube:
        kube = self

        class Handler(_Handler):
            fake = kube

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self._server = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content

    def add(self, *objs: dict) -> None:
        """Store objects (a ``List`` adds its items); same kind/namespace/name replaces."""
        with self._lock:
            for obj in objs:
                if obj.get("kind") == "List" or obj.get("kind", "").endswith("List"):
                    self.add(*obj.get("items", []))
                    continue
                group, version = _split_api_version(obj["apiVersion"])
                plural = self._plural_for(group, version, obj["kind"])
                meta = obj["metadata"]
                key = (f"{group}/{version}", plural, meta.get("namespace") or "", meta["name"])
                self._objects[key] = copy.deepcopy(obj)
                self._rv += 1

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Remove by kind (``CronJob``) or plural (``cronjobs``), case-insensitive."""
        k = kind.lower()
        with self._lock:
            for key in list(self._objects):
                gv, plural, ns, nm = key
                obj_kind = self._objects[key]["kind"].lower()
                if k in (plural, obj_kind) and ns == (namespace or "") and nm == name:
                    del self._objects[key]
                    self._rv += 1

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """A copy of a stored object, by kind (``postgresql``) or plural, or None."""
        k = kind.lower()
        with self._lock:
            for (_, plural, ns, nm), obj in self._objects.items():
                if k in (plural, obj["kind"].lower()) and (ns, nm) == (namespace, name):
                    return copy.deepcopy(obj)
        return None

    def clear(self) -> None:
        with self._lock:
            self.on_create.clear()
            self.on_delete.clear()
            self._objects.clear()
            self._logs.clear()
            self._forbidden.clear()
            self.requests.clear()
            self._rv += 1

    def set_log(self, namespace: str, pod: str, text: str) -> None:
        with self._lock:
            self._logs[(namespace, pod)] = ([text], 0.0)

    def stream_log(self, namespace: str, pod: str, chunks: list[str], delay: float = 0.05) -> None:
        with self._lock:
            self._logs[(namespace, pod)] = (list(chunks), delay)

    def forbid(self, path_regex: str) -> None:
        with self._lock:
            self._forbidden.append(re.compile(path_regex))

    def allow_all(self) -> None:
        with self._lock:
            self._forbidden.clear()

    # -- internals

    def _plural_for(self, group: str, version: str, kind: str) -> str:
        for (g, v, plural), (k, _) in self._resources.items():
            if g == group and v == version and k == kind:
                return plural
        plural = _plural_of(kind)
        self._resources[(group, version, plural)] = (kind, kind not in ("Namespace", "Node"))
        return plural

    def _namespaces(self) -> list[dict]:
        stored = {
            key[3]: obj
            for key, obj in self._objects.items()
            if key[0] == "/v1" and key[1] == "namespaces"
        }
        names = {"default", "kube-system"} | {key[2] for key in self._objects if key[2]}
        return [stored.get(n) or ko.namespace(n) for n in sorted(names | set(stored))]

    def _list(self, gv: str, plural: str, namespace: str | None) -> list[dict]:
        with self._lock:
            if (gv, plural) == ("/v1", "namespaces"):
                return self._namespaces()
            items = [
                (key[2], key[3], obj)
                for key, obj in self._objects.items()
                if key[0] == gv and key[1] == plural and (namespace is None or key[2] == namespace)
            ]
        items.sort(key=lambda t: (t[0], t[1]))
        return [obj for _, _, obj in items]

    def _get(self, gv: str, plural: str, namespace: str, name: str) -> dict | None:
        with self._lock:
            if (gv, plural) == ("/v1", "namespaces"):
                return next((n for n in self._namespaces() if n["metadata"]["name"] == name), None)
            return self._objects.get((gv, plural, namespace, name))


# --- request handling ------------------------------------------------------------------


class _Route:
    __slots__ = ("group", "version", "plural", "namespace", "name", "sub", "discovery")

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        self.plural: str | None = None
        self.namespace: str | None = None
        self.name: str | None = None
        self.sub: str | None = None
        self.discovery = False

    @property
    def gv(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def resource(self) -> str:
        """``postgresqls.acid.zalan.do`` / ``pods`` as the server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else str(self.plural)


def _route(path: str) -> _Route | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
        r, rest = _Route("", "v1"), parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        r, rest = _Route(parts[1], parts[2]), parts[3:]
    else:
        return None
    if not rest:
        r.discovery = True
    elif len(rest) == 1:
        r.plural = rest[0]
    elif len(rest) == 2:
        r.plural, r.name = rest
    elif rest[0] == "namespaces" and len(rest) in (3, 4, 5):
        r.namespace, r.plural = rest[1], rest[2]
        if len(rest) >= 4:
            r.name = rest[3]
        if len(rest) == 5:
            r.sub = rest[4]
    else:
        return None
    return r


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKube  # set on the subclass made by FakeKube.start
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fakekube"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.fake._lock:
                self.fake._conns.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    # -- responses

    def _object_not_found(self, route: _Route) -> None:
        """The API server's 404 for a named object, with the details it gives."""
        details: dict = {"name": route.name}
        if route.group:
            details["group"] = route.group
        details["kind"] = route.plural
        self._status(404, "NotFound", f'{route.resource} "{route.name}" not found', details)

    def _send_json(self, code: int, body: dict) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        # headers and body in one write: one segment for small answers
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]
        self.flush_headers()

    def _status(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        self._send_json(code, ko.status(code, reason, message, details=details))

    def _not_found_path(self) -> None:
        self._status(404, "NotFound", "the server could not find the requested resource", {})

    # -- methods

    def do_GET(self) -> None:  # noqa: N802
        self.fake.requests.append(("GET", self.path))
        try:
            self._get()
        except _BadRequest as e:
            self._status(400, "BadRequest", str(e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _refuse(self) -> None:
        self.fake.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._status(405, "MethodNotAllowed", "the fake API server only serves GET")

    do_PUT = do_PATCH = _refuse  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        self._write(self._create)

    def do_DELETE(self) -> None:  # noqa: N802
        self._write(self._delete)

    def _write(self, act: Callable[[_Route, str, bytes], None]) -> None:
        """Authorise, route and hand a create or delete to ``act``."""
        fake = self.fake
        fake.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                self._status(401, "Unauthorized", "Unauthorized")
                return
            path = urlsplit(self.path).path
            route = _route(path)
            with fake._lock:
                forbidden = any(p.search(path) for p in fake._forbidden)
                known = (
                    fake._resources.get((route.group, route.version, route.plural or ""))
                    if route is not None
                    else None
                )
            if route is None or known is None or not known[1] or route.namespace is None:
                self._not_found_path()
                return
            if forbidden:
                self._write_forbidden(route)
                return
            act(route, known[0], body)
        except _BadRequest as e:
            self._status(400, "BadRequest", str(e))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _create(self, route: _Route, kind: str, body: bytes) -> None:
        fake = self.fake
        if route.name is not None:
            self._status(405, "MethodNotAllowed", "the server does not allow this method")
            return
        try:
            obj = json.loads(body)
        except ValueError as e:
            raise _BadRequest(f"the body of the request was in an unknown format: {e}") from e
        if not isinstance(obj, dict):
            raise _BadRequest("the body of the request was in an unknown format")
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if meta.get("namespace", route.namespace) != route.namespace:
            raise _BadRequest(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        if not name:
            self._status(
                422,
                "Invalid",
                f'{kind} "" is invalid: metadata.name: Required value: name or generateName '
                "is required",
                {
                    "kind": kind,
                    "causes": [{"reason": "FieldValueRequired", "field": "metadata.name"}],
                },
            )
            return
        group = route.group
        with fake._lock:
            key = (route.gv, route.plural or "", route.namespace or "", name)
            if key in fake._objects:
                exists = True
            else:
                exists = False
                fake._rv += 1
                meta["namespace"] = route.namespace
                meta["uid"] = str(uuid.uuid4())
                meta["resourceVersion"] = str(fake._rv)
                meta["creationTimestamp"] = ko.rfc3339(datetime.now(UTC))
                if group not in _BUILTIN_GROUPS:
                    meta["generation"] = 1
                obj["apiVersion"] = route.gv.lstrip("/")
                obj["kind"] = kind
                fake._objects[key] = copy.deepcopy(obj)
        if exists:
            details: dict = {"name": name}
            if group:
                details["group"] = group
            details["kind"] = route.plural
            self._status(409, "AlreadyExists", f'{route.resource} "{name}" already exists', details)
            return
        self._send_json(201, obj)
        for hook in list(fake.on_create):
            hook(copy.deepcopy(obj))

    def _delete(self, route: _Route, kind: str, body: bytes) -> None:
        fake = self.fake
        if route.name is None or route.sub is not None:
            self._status(405, "MethodNotAllowed", "the server does not allow this method")
            return
        with fake._lock:
            key = (route.gv, route.plural or "", route.namespace or "", route.name)
            obj = fake._objects.pop(key, None)
            if obj is not None:
                fake._rv += 1
        if obj is None:
            self._object_not_found(route)
            return
        if route.plural == "pods":
            # Pods are deleted gracefully: the server answers with the object, now marked.
            answer = copy.deepcopy(obj)
            answer["metadata"]["deletionTimestamp"] = ko.rfc3339(datetime.now(UTC))
        else:
            gone: dict = {"name": route.name}
            if route.group:
                gone["group"] = route.group
            gone["kind"] = route.plural
            gone["uid"] = obj["metadata"].get("uid", "")
            answer = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": gone,
            }
        self._send_json(200, answer)
        for hook in list(fake.on_delete):
            hook(copy.deepcopy(obj))

    def _write_forbidden(self, route: _Route) -> None:
        verb = "create" if self.command == "POST" else "delete"
        who = route.resource + (f' "{route.name}"' if route.name else "")
        message = (
            f'{who} is forbidden: User "{USER}" cannot {verb} resource "{route.plural}" '
            f'in API group "{route.group}" in the namespace "{route.namespace}"'
        )
        details: dict = {"name": route.name} if route.name else {}
        if route.group:
            details["group"] = route.group
        details["kind"] = route.plural
        self._status(403, "Forbidden", message, details)

    def _get(self) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}

        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._status(401, "Unauthorized", "Unauthorized")
            return

        route = _route(path)
        with fake._lock:
            forbidden = any(p.search(path) for p in fake._forbidden)
        if forbidden:
            self._forbidden(path, route)
            return

        if path.rstrip("/") == "/version":
            self._send_json(200, VERSION_INFO)
            return
        if path.rstrip("/") == "/api":
            self._send_json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": url.netloc or "127.0.0.1"}
                    ],
                },
            )
            return
        if path.rstrip("/") == "/apis":
            self._send_json(200, self._group_list())
            return
        if route is None:
            self._not_found_path()
            return
        if route.discovery:
            self._send_resource_list(route)
            return

        with fake._lock:
            known = fake._resources.get((route.group, route.version, route.plural or ""))
        if known is None:
            self._not_found_path()
            return
        kind, namespaced = known

        if query.get("watch") in ("true", "1"):
            raise _BadRequest("watch is not supported by the fake API server")

        if route.name is None:
            if route.namespace is not None and not namespaced:
                self._not_found_path()
                return
            self._send_list(route, kind, query)
            return
        if route.namespace is None and namespaced:
            self._not_found_path()
            return
        if route.sub == "log" and route.plural == "pods":
            self._send_log(route, query)
            return
        if route.sub == "portforward" and route.plural == "pods":
            self._portforward(route, parse_qs(url.query, keep_blank_values=True))
            return
        if route.sub is not None and route.sub != "status":
            self._not_found_path()
            return
        obj = fake._get(route.gv, route.plural or "", route.namespace or "", route.name)
        if obj is None:
            self._object_not_found(route)
            return
        self._send_json(200, obj)

    def _forbidden(self, path: str, route: _Route | None) -> None:
        if route is None or route.discovery or route.plural is None:
            self._status(403, "Forbidden", f'forbidden: User "{USER}" cannot get path "{path}"', {})
            return
        verb = "list" if route.name is None else "get"
        resource = route.plural + (f"/{route.sub}" if route.sub else "")
        scope = (
            f'in the namespace "{route.namespace}"'
            if route.namespace is not None
            else "at the cluster scope"
        )
        who = route.resource + (f' "{route.name}"' if route.name else "")
        message = (
            f'{who} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
            f'in API group "{route.group}" {scope}'
        )
        details: dict = {}
        if route.name:
            details["name"] = route.name
        if route.group:
            details["group"] = route.group
        details["kind"] = route.plural
        self._status(403, "Forbidden", message, details)

    def _group_list(self) -> dict:
        with self.fake._lock:
            gvs = sorted({(g, v) for g, v, _ in self.fake._resources if g})
        groups: dict[str, list[str]] = {}
        for g, v in gvs:
            groups.setdefault(g, []).append(v)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }

    def _send_resource_list(self, route: _Route) -> None:
        with self.fake._lock:
            res = [
                (p, k, ns)
                for (g, v, p), (k, ns) in self.fake._resources.items()
                if g == route.group and v == route.version
            ]
        if not res:
            self._not_found_path()
            return
        resources = []
        for plural, kind, namespaced in sorted(res):
            entry = {
                "name": plural,
                "singularName": _SINGULAR.get(plural, kind.lower()),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list", "watch"],
            }
            resources.append(entry)
            if plural == "pods":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
                resources.append(
                    {
                        "name": "pods/portforward",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "PodPortForwardOptions",
                        "verbs": ["create", "get"],
                    }
                )
        self._send_json(
            200,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": route.gv.lstrip("/"),
                "resources": resources,
            },
        )

    def _send_list(self, route: _Route, kind: str, query: dict[str, str]) -> None:
        fake = self.fake
        items = fake._list(route.gv, route.plural or "", route.namespace)
        label_sel = query.get("labelSelector", "")
        field_sel = query.get("fieldSelector", "")
        if label_sel:
            lreqs = parse_label_selector(label_sel)
            items = [o for o in items if labels_match(lreqs, o["metadata"].get("labels") or {})]
        if field_sel:
            freqs = parse_field_selector(field_sel, route.plural or "")
            items = [o for o in items if fields_match(freqs, o)]

        def key(o: dict) -> str:
            m = o["metadata"]
            return f"{m.get('namespace') or ''}/{m['name']}"

        if token := query.get("continue"):
            start = _decode_continue(token)
            items = [o for o in items if key(o) >= start]
        rv = str(fake._rv)
        continue_token = None
        remaining = None
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as e:
            raise _BadRequest(f"invalid limit: {query.get('limit')}") from e
        if limit > 0 and len(items) > limit:
            continue_token = _encode_continue(rv, key(items[limit - 1]) + "\x00")
            if not label_sel and not field_sel:
                remaining = len(items) - limit
            items = items[:limit]
        if route.group in _BUILTIN_GROUPS:
            # the API server writes typed list items without TypeMeta
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        api_version = route.gv.lstrip("/")
        body = ko.object_list(
            items,
            api_version=api_version,
            kind=f"{kind[:1].upper()}{kind[1:]}List",
            resource_version=rv,
            continue_token=continue_token,
            remaining=remaining,
        )
        self._send_json(200, body)

    def _portforward(self, route: _Route, query: dict[str, list[str]]) -> None:
        """Upgrade to a WebSocket and forward the pod's ports (``tests/fakekube_portforward``)."""
        from tests import fakekube_portforward as pf

        pod = self.fake._get("/v1", "pods", route.namespace or "", route.name or "")
        if pod is None:
            self._object_not_found(route)
            return
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade") or "").lower() != "websocket" or not key:
            self._status(400, "BadRequest", "Upgrade request required")
            return
        try:
            ports = pf.ports_of(query)
            protocol = pf.choose_protocol(self.headers.get("Sec-WebSocket-Protocol"))
        except pf.Refused as e:
            self._status(e.code, e.reason, e.message)
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", pf.accept_key(key))
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # the connection is the WebSocket's now, then gone
        pf.Session(self.connection, self.rfile, pod, ports).run()

    def _send_log(self, route: _Route, query: dict[str, str]) -> None:
        fake = self.fake
        ns, name = route.namespace or "", route.name or ""
        pod = fake._get("/v1", "pods", ns, name)
        with fake._lock:
            log = fake._logs.get((ns, name))
        if pod is None and log is None:
            self._status(
                404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"}
            )
            return
        if pod is not None:
            containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
            container = query.get("container")
            if container and container not in containers:
                raise _BadRequest(f"container {container} is not valid for pod {name}")
            if not container and len(containers) > 1:
                raise _BadRequest(
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(containers)}]"
                )
            if (pod.get("status") or {}).get("phase") == "Pending":
                # As the kubelet answers through the API server until the container starts.
                statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
                waiting = (statuses[0].get("state") or {}).get("waiting") or {}
                raise _BadRequest(
                    f'container "{container or containers[0]}" in pod "{name}" is waiting to '
                    f"start: {waiting.get('reason') or 'ContainerCreating'}"
                )
        chunks, delay = log if log is not None else ([""], 0.0)
        follow = query.get("follow") in ("true", "1")
        tail = query.get("tailLines")
        limit_bytes = query.get("limitBytes")
        if tail is not None or limit_bytes is not None or not follow:
            text = "".join(chunks)
            if tail is not None:
                n = int(tail)
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-n:]) if n > 0 else ""
            if limit_bytes is not None:
                text = text.encode()[: int(limit_bytes)].decode(errors="ignore")
            chunks = [text]
        if not follow:
            data = chunks[0].encode()
            self.send_response(200)
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for chunk in chunks:
            if delay:
                time.sleep(delay)
            data = chunk.encode()
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --- kubeconfig ------------------------------------------------------------------------


def write_kubeconfig(
    path: Path,
    servers: dict[str, FakeKube],
    current: str | None = None,
    namespace: str | None = None,
) -> Path:
    """A kubeconfig with one cluster/user/context per entry (context name = key), bearer
    tokens, ``current-context`` = ``current`` or the first key; ``namespace`` on every context."""
    if not servers:
        raise ValueError("at least one server")
    contexts = []
    for name in servers:
        ctx: dict = {"cluster": name, "user": name}
        if namespace:
            ctx["namespace"] = namespace
        contexts.append({"name": name, "context": ctx})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": s.url}} for n, s in servers.items()],
        "users": [{"name": n, "user": {"token": s.token}} for n, s in servers.items()],
        "contexts": contexts,
        "current-context": current or next(iter(servers)),
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
