"""A stand-in for the Postgres Operator beside ``FakeKube``: it makes staging clusters happen.

When a ``postgresql`` is created over the fake API it does, in short, what the operator and
Kubernetes do in minutes: the status becomes ``Creating`` at once; after ``running_after``
seconds the credentials Secret and the master pod (not yet Ready) exist and the status is
``Running`` (set, as the real operator sets it, before the database is up); after
``ready_after`` more seconds the pod is Ready (``ready_after`` None: never). Told ``never_running``, it leaves the cluster
``Creating`` for good; told ``fail_with``, it sets that status (``CreateFailed``) instead.
Deleting the ``postgresql`` removes its pod and Secret, as the operator's finaliser-free
delete does. ``primary`` optionally names a real PostgreSQL (``host``, ``port``) the pod
stands for, written as the pod's IP and a ``pgdeck.io/test-port`` annotation.
``primary_factory`` instead gives each cluster its own: called with the cluster's name as
it is created (during the ``running_after`` wait, as a real pod starts while the operator
works; ``Running`` waits for it), it returns that cluster's (``host``, ``port``).
``release`` is called with the name when the cluster is deleted (or the stand-in stops).
``alive`` holds the clusters that exist now, ``peak_alive`` the most that ever did at once.

    operator = StandinOperator(kube).start()
    ...
    operator.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sandbox import kube as ko
from services.operator import credentials_secret_name
from tests.fakekube import FakeKube


class StandinOperator:
    def __init__(
        self,
        kube: FakeKube,
        *,
        running_after: float = 0.05,
        ready_after: float | None = 0.1,  # None: the pod never becomes Ready
        never_running: bool = False,
        fail_with: str | None = None,
        username: str = "postgres",
        password: str = "standin-secret-password",
        primary: tuple[str, int] | None = None,
        primary_factory: Callable[[str], tuple[str, int]] | None = None,
        release: Callable[[str], None] | None = None,
    ) -> None:
        self.kube = kube
        self.running_after = running_after
        self.ready_after = ready_after
        self.never_running = never_running
        self.fail_with = fail_with
        self.username = username
        self.password = password
        self.primary = primary
        self.primary_factory = primary_factory
        self.release = release
        self.seen: list[str] = []  # names of the postgresqls it handled, in order
        self.alive: set[str] = set()
        self.peak_alive = 0
        self._primaries: dict[str, tuple[str, int]] = {}  # from primary_factory, by name
        self._making: dict[str, threading.Event] = {}  # set when the factory has answered
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> StandinOperator:
        self.kube.on_create.append(self._created)
        self.kube.on_delete.append(self._deleted)
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timers, self._timers = self._timers, []
            made = list(self._primaries)
            making = list(self._making.values())
        for t in timers:
            t.cancel()
        for event in making:  # a Running that waits for a factory cancelled with it
            event.set()
        for name in made:  # clusters kept (--keep) or never deleted
            self._release(name)
        for hooks, hook in (
            (self.kube.on_create, self._created),
            (self.kube.on_delete, self._deleted),
        ):
            if hook in hooks:
                hooks.remove(hook)

    def __enter__(self) -> StandinOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reacting to the API

    def _created(self, obj: dict) -> None:
        if obj.get("kind") != "postgresql":
            return
        ns, name, uid = (
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            obj["metadata"]["uid"],
        )
        self.seen.append(name)
        with self._lock:
            self.alive.add(name)
            self.peak_alive = max(self.peak_alive, len(self.alive))
        self._set_status(ns, name, uid, "Creating")
        if self.never_running:
            return
        if self.primary_factory is not None:
            with self._lock:
                self._making[name] = threading.Event()
            self._later(0, self._make_primary, ns, name, uid)
        self._later(self.running_after, self._running, ns, name, uid)

    def _deleted(self, obj: dict) -> None:
        if obj.get("kind") != "postgresql":
            return
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        self.kube.remove("Pod", ns, f"{name}-0")
        self.kube.remove("Secret", ns, credentials_secret_name(name))
        with self._lock:
            self.alive.discard(name)
        self._release(name)

    def _running(self, ns: str, name: str, uid: str) -> None:
        if self.fail_with:
            self._set_status(ns, name, uid, self.fail_with)
            return
        with self._lock:
            making = self._making.get(name)
        if making is not None:
            making.wait()
            with self._lock:
                self._making.pop(name, None)
        with self.kube._lock:  # the cluster may have been deleted meanwhile
            pg = self._current(ns, name, uid)
            if pg is None:
                return
            secret = ko.secret(
                credentials_secret_name(name),
                ns,
                {"username": self.username, "password": self.password},
            )
            self.kube.add(secret, self._pod(pg, ready=False))
            self._set_status(ns, name, uid, "Running")
        if self.ready_after is not None:
            self._later(self.ready_after, self._ready, ns, name, uid)

    def _ready(self, ns: str, name: str, uid: str) -> None:
        with self.kube._lock:
            pg = self._current(ns, name, uid)
            if pg is not None:
                self.kube.add(self._pod(pg, ready=True))

    def _make_primary(self, ns: str, name: str, uid: str) -> None:
        try:
            factory = self.primary_factory
            if factory is None or self._current(ns, name, uid) is None:
                return
            made = factory(name)  # slow: outside every lock
            with self._lock:
                self._primaries[name] = made
                stopped = self._stopped
            if stopped or self._current(ns, name, uid) is None:
                self._release(name)  # deleted (or stopped) while its primary was made
        finally:
            with self._lock:
                making = self._making.get(name)
            if making is not None:
                making.set()

    def _release(self, name: str) -> None:
        with self._lock:
            made = self._primaries.pop(name, None)
        if made is not None and self.release is not None:
            self.release(name)

    # -- helpers

    def _current(self, ns: str, name: str, uid: str) -> dict | None:
        pg = self.kube.get("postgresql", ns, name)
        return pg if pg is not None and pg["metadata"].get("uid") == uid else None

    def _set_status(self, ns: str, name: str, uid: str, status: str) -> None:
        with self.kube._lock:
            pg = self._current(ns, name, uid)
            if pg is not None:
                pg["status"] = {"PostgresClusterStatus": status}
                self.kube.add(pg)

    def _pod(self, pg: dict, *, ready: bool) -> dict:
        pod = ko.database_pod(pg, 0, role="master")
        status: dict[str, Any] = pod["status"]
        if not ready:
            for cond in status["conditions"]:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond["status"] = "False"
                    cond["reason"] = "ContainersNotReady"
            for cs in status["containerStatuses"]:
                cs["ready"] = False
        primary = self._primaries.get(pg["metadata"]["name"], self.primary)
        if primary is not None:
            host, port = primary
            status["podIP"] = host
            status["podIPs"] = [{"ip": host}]
            pod["metadata"].setdefault("annotations", {})["pgdeck.io/test-port"] = str(port)
        return pod

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            t = threading.Timer(delay, fn, args)
            t.daemon = True
            self._timers.append(t)
        t.start()
