"""Restore tests run as Kubernetes Jobs (``restore-test --in-cluster``): launch, follow, collect.

The launcher creates one Job per source cluster (``services.restore_test_jobs`` says what
it is) in the staging namespace, never more than ``staging.max_parallel`` alive at once (the
next starts when one ends), follows each Job's pod log as it is written and hands every line
to ``on_line(cluster, line)``, waits for the Job to complete or fail (the Job controller
enforces its active deadline; the launcher gives up a little after it too, by the injected
clock), then reads the test's report from the archive: the ``restore-test`` document whose
``run_id`` is this run's and whose ``source.cluster`` is the Job's. A Job that fails, or
succeeds without such a report, is an ``error`` outcome with one line naming the Job, why,
and its last log lines. Jobs are deleted when done (propagation ``Background``, so their pods
go too) unless ``keep``; a cancel deletes the running ones at once (their pods get SIGTERM,
and pgdeck inside tears down its staging cluster). Creations and deletions are audited with
``Archive.note``. Everything the API and the archive return is untrusted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.archive import Archive, open_archive
from services.clock import Clock, system_clock
from services.config import Config
from services.errors import KubeError, PgdeckError
from services.kube import LiveSource, LogStream, _contexts, call_json, kube_error
from services.restore_test import TestCancelled, TestOutcome, TestRequest, TestsCancel
from services.restore_test_jobs import job_manifest, require_image
from services.staging_spec import RUN_ID_LABEL, SOURCE_LABEL
from services.text import safe_line

_TIMEOUT = (5, 30)  # connect, read
RESULTS = ("passed", "failed", "error", "cancelled")
TAIL = 3  # log lines a failure names
GRACE = timedelta(minutes=2)  # past the active deadline, the launcher stops waiting itself
FIRST_POLL = 0.1  # seconds; polls then back off to poll_seconds
FOLLOW_GRACE = 10.0  # seconds a finished Job's log may take to reach its end
# The kubelet's reasons for a container that waits and will not start by waiting longer.
CANNOT_START = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)

OnLine = Callable[[str, str], None]
log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Running:
    index: int
    test: TestRequest
    name: str
    uid: str
    deadline: datetime
    finished: threading.Event = field(default_factory=threading.Event)  # the Job ended
    stop: threading.Event = field(default_factory=threading.Event)  # stop following
    last: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL))
    stream: LogStream | None = None
    follower: threading.Thread | None = None
    started: bool = False  # its pod got past Pending
    stuck_since: datetime | None = None  # its pod has waited for a reason in CANNOT_START


@dataclass(frozen=True, slots=True)
class _Pod:
    name: str
    phase: str
    waiting: str  # the reason its container waits, if it does
    message: str


class JobLauncher:
    """Restore-test Jobs in ``config.staging.namespace`` of one Kubernetes context."""

    def __init__(
        self,
        config: Config,
        *,
        context: str | None = None,
        clock: Clock = system_clock,
        poll_seconds: float = 2.0,
        archive: Archive | None = None,
    ) -> None:
        if context is None:
            found = _contexts(config.kubernetes)
            if not found:
                raise KubeError(
                    "no Kubernetes context to run restore-test Jobs in",
                    "set kubernetes.kubeconfig or kubernetes.contexts",
                )
            context = found[0]
        self.config = config
        self.context = context
        self.namespace = config.staging.namespace
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.archive = archive if archive is not None else open_archive(config, clock)
        self.created: list[str] = []  # names of the Jobs created, in order
        self._source = LiveSource(config.kubernetes, context)
        self._emit = threading.Lock()

    # --- what would be created ------------------------------------------------------
    def manifests(self, tests: Sequence[TestRequest], run_id: str) -> list[dict[str, Any]]:
        return [self._manifest(t, run_id) for t in tests]

    def _manifest(self, test: TestRequest, run_id: str) -> dict[str, Any]:
        return job_manifest(
            self.config.restore_tests,
            self.namespace,
            source=test.cluster,
            run_id=run_id,
            backup=str(test.choice),
            seed=test.seed,
            keep=test.keep,
            source_namespace=test.namespace or "",
            jobs=test.jobs_in(self.config),
        )

    # --- the run --------------------------------------------------------------------
    def run(
        self,
        tests: Sequence[TestRequest],
        *,
        run_id: str,
        on_line: OnLine,
        cancel: TestsCancel,
        max_parallel: int | None = None,
    ) -> list[TestOutcome]:
        """Every test's outcome, in the order of ``tests``."""
        require_image(self.config.restore_tests)
        manifests = self.manifests(tests, run_id)  # every name and label checked first
        self.archive.check_writable()  # every creation is audited: refuse before any
        limit = max(1, max_parallel or self.config.staging.max_parallel)
        pending = deque(enumerate(tests))
        running: dict[int, _Running] = {}
        outcomes: dict[int, TestOutcome] = {}
        misses, pause = 0, FIRST_POLL
        try:
            while (pending or running) and not cancel.cancelled:
                while pending and len(running) < limit and not cancel.cancelled:
                    i, test = pending.popleft()
                    try:
                        running[i] = self._start(i, test, manifests[i], on_line)
                    except PgdeckError as exc:
                        outcomes[i] = TestOutcome(test.cluster, "error", {}, {}, str(exc))
                if not running:
                    continue
                try:
                    jobs = self._jobs(run_id)
                    misses = 0
                except KubeError:
                    misses += 1
                    if misses >= 3:
                        raise
                    _pause(cancel, self.poll_seconds)
                    continue
                ended = False
                for i, r in list(running.items()):
                    verdict = _verdict(jobs.get(r.name))
                    if verdict is None and self.clock() >= r.deadline:
                        verdict = ("failed", "still running past its active deadline")
                    if verdict is None and not r.started:
                        verdict = self._cannot_start(r)
                    if verdict is not None:
                        del running[i]
                        outcomes[i] = self._finish(r, verdict, run_id)
                        ended = True
                # Quick Jobs are seen ending quickly, long ones cost a poll every few seconds.
                pause = FIRST_POLL if ended else min(pause * 2, self.poll_seconds)
                if running and not (ended and pending):
                    _pause(cancel, pause)
        finally:
            for r in running.values():
                outcomes[r.index] = self._cancel(r)
            for i, test in pending:
                outcomes[i] = TestOutcome(
                    test.cluster, "cancelled", {}, {}, "cancelled before it started"
                )
        return [outcomes[i] for i in range(len(tests))]

    def _start(self, i: int, test: TestRequest, body: dict[str, Any], on_line: OnLine) -> _Running:
        from kubernetes import client

        name = body["metadata"]["name"]
        what = f"create Job {self.namespace}/{name}"
        payload: Any = body  # a dict: the client sends it as it is
        try:
            resp = client.BatchV1Api(self._source.api()).create_namespaced_job(
                self.namespace, payload, _preload_content=False, _request_timeout=_TIMEOUT
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise KubeError(f"{what}: it exists already", "start the run again") from None
            raise kube_error(exc, self.context, what) from None
        created = _answer(resp)
        uid = str(_dict(created.get("metadata")).get("uid") or "")
        self.created.append(name)
        deadline = (
            self.clock() + timedelta(seconds=self.config.restore_tests.job_deadline_seconds) + GRACE
        )
        r = _Running(i, test, name, uid, deadline)
        try:
            self._note("restore-test-job-create", name, uid, test, body)
        except BaseException:
            # No Job may run that the audit log does not name.
            with contextlib.suppress(Exception):
                self._delete(r, audit=False)
            raise
        r.follower = threading.Thread(
            target=self._follow, args=(r, on_line), name=f"follow-{name}", daemon=True
        )
        r.follower.start()
        return r

    def _finish(self, r: _Running, verdict: tuple[str, str], run_id: str) -> TestOutcome:
        r.finished.set()
        if r.follower is not None:
            r.follower.join(FOLLOW_GRACE)  # the log's end comes just after the container's
        self._stop_following(r)
        item, unread = self._report(run_id, r.test)
        if not r.last:
            self._tail(r)
        if not r.test.keep and verdict[0] != "gone":
            try:
                self._delete(r)
            except PgdeckError as exc:  # the test's outcome stands; the Job stays behind
                log.warning("%s", exc)
        if item is not None:
            doc = item.document
            found = doc.get("result")
            result = found if isinstance(found, str) and found in RESULTS else "error"
            error = None
            if result in ("error", "cancelled"):
                error = safe_line(str(doc.get("error") or _first(doc.get("reasons")) or result))
            archived = {"json": item.url, "markdown": self.archive.url(item.markdown)}
            return TestOutcome(r.test.cluster, str(result), doc, archived, error)
        state, why = verdict
        where = f"Job {self.namespace}/{r.name}"
        if state == "succeeded":
            head = (
                f"{where} succeeded but archived no restore-test report of run {run_id}"
                " (does the Job's config name this archive?)"
            )
        elif state == "gone":
            head = f"{where} disappeared before it ended (deleted by someone else?)"
        else:
            head = f"{where} failed ({why}) and archived no report"
        if unread:
            head += f"; the archive's reports could not be read ({unread})"
        tail = " | ".join(r.last) if r.last else "none"
        line = safe_line(f"{r.test.cluster}: {head}; its last log lines: {tail}")
        return TestOutcome(r.test.cluster, "error", {}, {}, line)

    def _cancel(self, r: _Running) -> TestOutcome:
        r.finished.set()
        self._stop_following(r)
        with contextlib.suppress(PgdeckError):
            self._delete(r)  # its pod gets SIGTERM: pgdeck inside tears its staging down
        return TestOutcome(
            r.test.cluster, "cancelled", {}, {}, f"cancelled; Job {self.namespace}/{r.name} deleted"
        )

    # --- following the pod's log --------------------------------------------------------
    def _follow(self, r: _Running, on_line: OnLine) -> None:
        pause = FIRST_POLL
        while not r.stop.is_set():
            ended = r.finished.is_set()
            try:
                pod = self._pod(r.name)
                if pod is not None and (pod.phase != "Pending" or ended):
                    r.stream = self._source.read_log(self.namespace, pod.name, follow=True)
                    for line in r.stream:
                        r.last.append(line)
                        with self._emit:
                            on_line(r.test.cluster, line)
                    return
            except KubeError:
                pass  # the container is not started yet, or the API blinked: try again
            except Exception:  # a stream cut short by a cancel, or a broken connection
                if r.stop.is_set():
                    return
            if ended:
                return  # the Job ended and left no pod to read
            r.stop.wait(pause)
            pause = min(pause * 2, self.poll_seconds)

    def _cannot_start(self, r: _Running) -> tuple[str, str] | None:
        """A verdict for a Job whose pod has waited for a reason that waiting will not
        mend (an image that cannot be pulled, a missing Secret) for
        ``restore_tests.pod_start_timeout_seconds``; None while it may still start."""
        try:
            pod = self._pod(r.name)
        except KubeError:
            return None
        if pod is None:
            return None
        if pod.phase != "Pending":
            r.started = True
            return None
        if pod.waiting not in CANNOT_START:
            r.stuck_since = None
            return None
        now = self.clock()
        r.stuck_since = r.stuck_since or now
        limit = self.config.restore_tests.pod_start_timeout_seconds
        if (now - r.stuck_since).total_seconds() < limit:
            return None
        why = f"its pod {pod.name} cannot start: {pod.waiting}"
        return ("failed", f"{why}: {pod.message}" if pod.message else why)

    def _stop_following(self, r: _Running) -> None:
        r.stop.set()
        if r.stream is not None:
            r.stream.close()
        if r.follower is not None:
            r.follower.join(2.0)

    def _tail(self, r: _Running) -> None:
        """The last lines of a pod whose log was never followed (it ended at once)."""
        try:
            pod = self._pod(r.name)
            if pod is not None:
                stream = self._source.read_log(self.namespace, pod.name, tail_lines=TAIL)
                for line in stream:
                    r.last.append(line)
        except Exception:  # only a better message was at stake
            return

    # --- reading and deleting -----------------------------------------------------------
    def _call(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call_json(self.context, what, call, *args, **kwargs)

    def cleanup(self, older_than: timedelta) -> list[str]:
        """Delete the restore-test Jobs created longer than ``older_than`` ago (those a
        killed launcher left; their deadline stops them, but they stay listed); their
        names, each deletion audited."""
        from kubernetes import client

        from services.clock import parse_instant
        from services.staging_spec import SELECTOR

        batch = client.BatchV1Api(self._source.api())
        body = self._call(
            f"list Jobs in {self.namespace}",
            batch.list_namespaced_job,
            self.namespace,
            label_selector=SELECTOR,
        )
        cutoff = self.clock() - older_than
        deleted = []
        for job in _dict(body).get("items") or []:
            md = _dict(_dict(job).get("metadata"))
            name, stamp = md.get("name"), md.get("creationTimestamp")
            if not isinstance(name, str) or not isinstance(stamp, str):
                continue
            try:
                if parse_instant(stamp, "creationTimestamp") > cutoff:
                    continue
            except PgdeckError:
                continue
            gone = self._call(
                f"delete Job {self.namespace}/{name}",
                batch.delete_namespaced_job,
                name,
                self.namespace,
                propagation_policy="Background",
            )
            if gone is not None:
                source = str(_dict(md.get("labels")).get(SOURCE_LABEL) or "")
                self._note(
                    "restore-test-job-delete",
                    name,
                    str(md.get("uid") or ""),
                    TestRequest(source),
                    None,
                )
                deleted.append(name)
        return deleted

    def _jobs(self, run_id: str) -> dict[str, dict[str, Any]]:
        from kubernetes import client

        body = self._call(
            f"list Jobs in {self.namespace}",
            client.BatchV1Api(self._source.api()).list_namespaced_job,
            self.namespace,
            label_selector=f"{RUN_ID_LABEL}={run_id}",
        )
        out = {}
        for job in _dict(body).get("items") or []:
            name = _dict(_dict(job).get("metadata")).get("name")
            if isinstance(name, str):
                out[name] = job
        return out

    def _pod(self, job: str) -> _Pod | None:
        """The Job's newest pod, found by the labels the Job controller
        sets (``batch.kubernetes.io/job-name`` since Kubernetes 1.27, ``job-name`` before)."""
        from kubernetes import client

        core = client.CoreV1Api(self._source.api())
        for label in ("batch.kubernetes.io/job-name", "job-name"):
            body = self._call(
                f"list the pods of Job {self.namespace}/{job}",
                core.list_namespaced_pod,
                self.namespace,
                label_selector=f"{label}={job}",
            )
            pods = [p for p in _dict(body).get("items") or [] if isinstance(p, dict)]
            if pods:
                newest = max(
                    pods, key=lambda p: str(_dict(p.get("metadata")).get("creationTimestamp"))
                )
                name = _dict(newest.get("metadata")).get("name")
                status = _dict(newest.get("status"))
                waiting: dict[str, Any] = {}
                for cs in status.get("containerStatuses") or []:
                    waiting = _dict(_dict(_dict(cs).get("state")).get("waiting")) or waiting
                if not isinstance(name, str):
                    return None
                return _Pod(
                    name,
                    str(status.get("phase") or ""),
                    str(waiting.get("reason") or ""),
                    safe_line(str(waiting.get("message") or ""))[:300],
                )
        return None

    def _delete(self, r: _Running, *, audit: bool = True) -> None:
        from kubernetes import client

        body = self._call(
            f"delete Job {self.namespace}/{r.name}",
            client.BatchV1Api(self._source.api()).delete_namespaced_job,
            r.name,
            self.namespace,
            propagation_policy="Background",  # its pods go too
        )
        if audit:
            gone = "" if body is not None else "-gone"
            self._note(f"restore-test-job-delete{gone}", r.name, r.uid, r.test, None)

    def _report(self, run_id: str, test: TestRequest) -> tuple[Any, str]:
        """The newest restore-test report of this run and source (or None), and why the
        archive could not be read ("" when it could). Nothing escapes: ``run`` must go on
        following the other tests' Jobs whatever one lookup meets."""
        try:
            for item in self.archive.list("restore-test"):
                doc = item.document
                source = _dict(doc.get("source"))
                if doc.get("run_id") != run_id or source.get("cluster") != test.cluster:
                    continue
                if test.namespace and source.get("namespace") not in (None, "", test.namespace):
                    continue
                return item, ""
        except Exception as exc:
            log.warning("restore-test reports not read: %r", exc)
            return None, safe_line(str(exc) or type(exc).__name__)
        return None, ""

    def _note(
        self, action: str, name: str, uid: str, test: TestRequest, body: dict[str, Any] | None
    ) -> None:
        fields: dict[str, Any] = {
            "action": action,
            "context": self.context,
            "namespace": self.namespace,
            "job": name,
            "uid": uid,
            "source_cluster": test.cluster,
        }
        if body is not None:
            fields["run_id"] = _dict(_dict(body["metadata"]).get("labels")).get(RUN_ID_LABEL)
            fields["image"] = self.config.restore_tests.image
        self.archive.note(fields)


def _pause(cancel: TestsCancel, seconds: float) -> None:
    with contextlib.suppress(TestCancelled):  # the loop sees the cancel and stops
        cancel.sleep(seconds)


def _verdict(job: dict[str, Any] | None) -> tuple[str, str] | None:
    """None while the Job runs; ("succeeded" | "failed" | "gone", why) once it ended."""
    if job is None:
        return ("gone", "")
    status = _dict(job.get("status"))
    for cond in status.get("conditions") or []:
        cond = _dict(cond)
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return ("succeeded", "")
        if cond.get("type") in ("Failed", "FailureTarget"):
            why = ": ".join(str(cond[k]) for k in ("reason", "message") if cond.get(k))
            return ("failed", why or "failed")
    if _count(status.get("succeeded")):
        return ("succeeded", "")
    if _count(status.get("failed")):
        return ("failed", "its pod failed")
    return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _answer(resp: Any) -> dict[str, Any]:
    try:
        body = json.loads(resp.data)
    except ValueError:
        body = {}
    finally:
        resp.release_conn()
    return body if isinstance(body, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> str | None:
    if isinstance(value, list) and value:
        return str(value[0])
    return None
