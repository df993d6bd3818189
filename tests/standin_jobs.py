"""A stand-in for the Job controller and the kubelet beside ``FakeKube``: Jobs run.

When a ``batch/v1`` Job is created over the fake API it does, in short, what Kubernetes
does: the API server's defaults (selector and template labels with the controller uid),
``status.active`` 1 and a pod labelled ``job-name`` / ``batch.kubernetes.io/job-name`` /
``controller-uid``, Pending (ContainerCreating, its log a 400) for ``pending_for``
seconds, then running; the pod's log is written in chunks, as a container prints;
then the container "exits": the pod becomes Succeeded or Failed and the Job gets the
conditions the 1.31 controller sets (``SuccessCriteriaMet`` + ``Complete``, or
``FailureTarget`` + ``Failed`` with ``BackoffLimitExceeded``). What each Job's pod does is
decided by ``plan(job)`` (a ``PodRun``): its log chunks, its exit code, the restore-test
report it archives (written with ``Archive.complete`` into ``archive``, as pgdeck in the
pod would) and an optional ``hold`` event it waits for before exiting; or, given
``pgdeck_config``, it runs pgdeck itself with the container's arguments. Deleting a Job
removes its pods (the garbage collector, propagation Background) and stops its run: the
pod is "killed" and archives nothing. ``peak`` is the most Jobs running at once.

    jobs = StandinJobs(kube, plan=lambda job: PodRun(["ok\\n"]), archive=archive).start()
    ...
    jobs.stop()
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox import kube as ko
from services.archive import Archive
from services.staging_spec import RUN_ID_LABEL, SOURCE_LABEL, SOURCE_NAMESPACE_LABEL
from tests.fakekube import FakeKube


@dataclass
class PodRun:
    """What one Job's pod does."""

    chunks: list[str] = field(default_factory=lambda: ["restore test running\n"])
    exit_code: int = 0
    report: str | None = "passed"  # the result of the report it archives; None: none
    delay: float = 0.02  # between log chunks
    hold: threading.Event | None = None  # exits only once this is set
    # Run pgdeck for real: ``python -m tui.cli`` with the container's arguments, this file
    # standing in for the mounted config; its output is the log, its exit the pod's.
    pgdeck_config: Path | None = None
    # The container never starts: the kubelet's waiting reason (ImagePullBackOff, ...).
    cannot_start: str | None = None


def report_document(job: dict[str, Any], result: str) -> dict[str, Any]:
    """A restore-test report as the contract shapes it (the fields a launcher reads)."""
    labels = job["metadata"].get("labels") or {}
    passed = result == "passed"
    return {
        "status": "success" if result != "error" else "failed",
        "ttr_seconds": 812.4,
        "error": None if result != "error" else "the restore failed",
        "kind": "restore-test",
        "run_id": labels.get(RUN_ID_LABEL),
        "result": result,
        "reasons": [] if passed else ["validation failed: shop.orders has 119 rows, expected 120"],
        "started_by": {
            "user": "pgdeck",
            "os_user": "pgdeck",
            "host": "pod",
            "command": "pgdeck restore-test",
            "in_cluster": True,
            "job": job["metadata"]["name"],
        },
        "source": {
            "cluster": labels.get(SOURCE_LABEL),
            "namespace": labels.get(SOURCE_NAMESPACE_LABEL, "db"),
            "uid": "0b5f3b0e-0000-4000-8000-000000000001",
            "context": "in-cluster",
            "version": "16",
        },
        "objective": {
            "rto_seconds": 3600.0,
            "measured_seconds": 812.4,
            "met": True,
            "measured": "staging ready + restore + validation",
        },
        "time_to_restore": {
            "staging_seconds": 30.1,
            "restore_seconds": 782.3,
            "total_seconds": 812.4,
        },
        "teardown": {"status": "deleted", "error": None},
    }


class StandinJobs:
    def __init__(
        self,
        kube: FakeKube,
        *,
        plan: Callable[[dict[str, Any]], PodRun] = lambda job: PodRun(),
        archive: Archive | None = None,
        start_after: float = 0.02,
        pending_for: float = 0.05,
    ) -> None:
        self.kube = kube
        self.plan = plan
        self.archive = archive
        self.start_after = start_after
        self.pending_for = pending_for
        self.seen: list[str] = []  # names of the Jobs created, in order
        self.deleted: list[str] = []
        self.running: set[str] = set()
        self.peak = 0
        self._killed: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> StandinJobs:
        self.kube.on_create.append(self._created)
        self.kube.on_delete.append(self._deleted)
        return self

    def stop(self) -> None:
        for hooks, hook in (
            (self.kube.on_create, self._created),
            (self.kube.on_delete, self._deleted),
        ):
            if hook in hooks:
                hooks.remove(hook)
        with self._lock:
            killed = list(self._killed.values())
        for event in killed:
            event.set()
        for t in self._threads:
            t.join(60)  # a pgdeck sent SIGTERM tears its staging cluster down first

    def __enter__(self) -> StandinJobs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reacting to the API

    def _created(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Job":
            return
        name = obj["metadata"]["name"]
        killed = threading.Event()
        with self._lock:
            self.seen.append(name)
            self._killed[name] = killed
            self.running.add(name)
            self.peak = max(self.peak, len(self.running))
        t = threading.Thread(target=self._run, args=(obj, killed), daemon=True)
        self._threads.append(t)
        t.start()

    def _deleted(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Job":
            return
        name, ns = obj["metadata"]["name"], obj["metadata"]["namespace"]
        with self._lock:
            self.deleted.append(name)
            self.running.discard(name)
            killed = self._killed.get(name)
        if killed is not None:
            killed.set()
        for pod in self._pods(ns, name):
            self.kube.remove("Pod", ns, pod["metadata"]["name"])

    # -- the Job controller and the kubelet

    def _run(self, job: dict[str, Any], killed: threading.Event) -> None:
        md = job["metadata"]
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        if killed.wait(self.start_after):
            return
        started = datetime.now(UTC)
        job = self._defaulted(job)
        pod = ko.pod(job, started=started)
        pod_name = pod["metadata"]["name"]
        run = self.plan(job)
        with self.kube._lock:
            if not self._current(ns, name, uid):
                return
            self.kube.add(_pending(pod))
            self._set_status(job, {"startTime": ko.rfc3339(started), "active": 1, "ready": 0})
        if run.cannot_start is not None:
            with self.kube._lock:
                if self._current(ns, name, uid):
                    self.kube.add(_pending(pod, run.cannot_start))
            killed.wait()  # Pending until the Job is deleted (or its deadline, not modelled)
            return
        if killed.wait(self.pending_for):  # the image is pulled, the container created
            return
        if run.pgdeck_config is not None:
            # The log is whole once the process ends (the fake API serves fixed chunks):
            # the pod counts as starting until then.
            done = _run_pgdeck(job, run.pgdeck_config, killed)
            if done is None:
                return
            output, code = done
            run = PodRun(output.splitlines(keepends=True), code, report=None, delay=0.01)
        with self.kube._lock:
            if not self._current(ns, name, uid):
                return
            self.kube.stream_log(ns, pod_name, run.chunks, run.delay)
            self.kube.add(pod)
            self._set_status(job, {"startTime": ko.rfc3339(started), "active": 1, "ready": 1})
        # The container prints its log, then exits (or waits to be told it may).
        if killed.wait(run.delay * (len(run.chunks) + 1)):
            return
        if run.hold is not None:
            while not run.hold.wait(0.02):
                if killed.is_set():
                    return
        if killed.is_set():
            return
        if run.report is not None and self.archive is not None:
            doc = report_document(job, run.report)
            self.archive.complete(
                None,
                "restore-test",
                f"{doc['source']['cluster']}",
                doc,
                f"# Restore test of {doc['source']['cluster']}: {run.report}\n",
                {"outcome": run.report, "run_id": doc["run_id"]},
            )
        finished = datetime.now(UTC)
        with self.kube._lock:
            if not self._current(ns, name, uid):
                return
            self.kube.add(
                ko.pod(
                    job,
                    started=started,
                    finished=finished,
                    exit_code=run.exit_code,
                    name=pod_name,
                    uid=pod["metadata"]["uid"],
                )
            )
            self._set_status(job, _final(started, finished, run.exit_code == 0))
        with self._lock:
            self.running.discard(name)

    def _defaulted(self, job: dict[str, Any]) -> dict[str, Any]:
        """What the API server adds to a created Job: the selector, the template's labels."""
        md = job["metadata"]
        uid, name = md["uid"], md["name"]
        extra = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec = job["spec"]
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template_md = spec["template"].setdefault("metadata", {})
        template_md["labels"] = {**(template_md.get("labels") or {}), **extra}
        return job

    def _current(self, ns: str, name: str, uid: str) -> bool:
        now = self.kube.get("Job", ns, name)
        return now is not None and now["metadata"].get("uid") == uid

    def _set_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        md = job["metadata"]
        with self.kube._lock:
            stored = self.kube.get("Job", md["namespace"], md["name"])
            if stored is None or stored["metadata"].get("uid") != md["uid"]:
                return
            stored["spec"] = job["spec"]
            stored["status"] = status
            self.kube.add(stored)

    def _pods(self, ns: str, job: str) -> list[dict[str, Any]]:
        with self.kube._lock:
            return [
                o
                for (gv, plural, pns, _), o in self.kube._objects.items()
                if (gv, plural, pns) == ("/v1", "pods", ns)
                and (o["metadata"].get("labels") or {}).get("job-name") == job
            ]


def _run_pgdeck(
    job: dict[str, Any], config: Path, killed: threading.Event
) -> tuple[str, int] | None:
    """(output, exit code) of pgdeck run as the Job's container; None when the Job was
    deleted meanwhile (the process got SIGTERM, as the kubelet sends it)."""
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    env = {**os.environ, "PGDECK_JOB": env.get("PGDECK_JOB", ""), "PGDECK_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *container["args"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    while proc.poll() is None:
        if killed.wait(0.05):
            proc.terminate()
            proc.communicate(timeout=60)
            return None
    out, _ = proc.communicate()
    return out, proc.returncode


def _pending(pod: dict[str, Any], reason: str = "ContainerCreating") -> dict[str, Any]:
    """The pod as it is before its container starts: Pending, ContainerCreating (or the
    kubelet's reason for a container that cannot start, with its message)."""
    pod = copy.deepcopy(pod)
    status = pod["status"]
    status["phase"] = "Pending"
    for key in ("podIP", "podIPs"):
        status.pop(key, None)
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
            cond["status"] = "False"
    for cs in status["containerStatuses"]:
        waiting = {"reason": reason}
        if reason != "ContainerCreating":
            waiting["message"] = f'Back-off pulling image "{cs.get("image", "")}"'
        cs.update(ready=False, started=False, state={"waiting": waiting})
        cs.pop("containerID", None)
    return pod


def _final(started: datetime, finished: datetime, succeeded: bool) -> dict[str, Any]:
    at = ko.rfc3339(finished)
    if succeeded:
        reason, message = "CompletionsReached", "Reached expected number of succeeded pods"
        types = ("SuccessCriteriaMet", "Complete")
    else:
        reason, message = "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        types = ("FailureTarget", "Failed")
    status: dict[str, Any] = {
        "conditions": [
            {
                "lastProbeTime": at,
                "lastTransitionTime": at,
                "message": message,
                "reason": reason,
                "status": "True",
                "type": t,
            }
            for t in types
        ],
        "startTime": ko.rfc3339(started),
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    if succeeded:
        status.update(completionTime=at, succeeded=1)
    else:
        status["failed"] = 1
    return status
