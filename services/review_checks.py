"""The weekly review's checklist: one function per check, over one cluster's facts.

The facts of a cluster (its objects, Jobs, logs, encryption, what was verified) are
gathered once by ``services.review``; each check reads them and says what it found as
``Issue`` values, and whether it had nothing to judge (skipped). Adding a check is adding
a function and its line in ``CHECKS``: the checklist, the reports and the console take
their columns from there.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services import health
from services.config import ReviewConfig
from services.health import RunState
from services.jsonable import iso
from services.marks import Severity
from services.models import Backup, Cluster, JobRun
from services.operator import retention_days
from services.text import safe_line

# Lines a backup job's log should not have. Bash's xtrace lines ("+ cmd ...") echo the
# script's own commands, not what happened, and are left out.
_BAD_LINE = re.compile(r"\b(error|fatal|panic|failed|failure|denied|refused|warning)\b", re.I)
_WARNING_ONLY = re.compile(r"\bwarning\b", re.I)
_LOG_LINES_KEPT = 6
# A log line quoted as evidence goes into archived reviews: whatever looks like a secret's
# value (PGPASSWORD=..., password: ..., AWS_SECRET_ACCESS_KEY=..., a token) is masked.
_SECRET = re.compile(
    r"(?i)((?:password|passwd|pgpassword|secret|token|access_key)[a-z_]*\s*[=:]\s*)(['\"]?)[^\s'\"]+"
)


def scrub(line: str) -> str:
    """A log line as reviews may quote it: secret-looking values masked."""
    return _SECRET.sub(r"\1\2***", line)


def quote(line: str) -> str:
    """A log line as a review's evidence (and so its archived reports) holds it: secrets
    masked, escape sequences and control characters neutralized, at most LINE_LIMIT long."""
    return safe_line(scrub(line))


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # "object", "run", "job", "pod", "log", "cronjob"
    ref: str  # the object's URL, the run's ISO time, the job's name, the pod's name
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Issue:
    """What a check found, before the review names the cluster and the check on it."""

    severity: Severity
    detail: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    issues: tuple[Issue, ...] = ()
    skipped: bool = False  # nothing to judge: the checklist shows it skipped, not ok


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """Everything the checks read of one cluster, gathered once."""

    cluster: Cluster
    backups: tuple[Backup, ...]  # every object of the cluster (all its uids), oldest first
    window: tuple[Backup, ...]  # those written in the reviewed window
    jobs: tuple[JobRun, ...]  # the Jobs Kubernetes keeps, newest first
    window_start: datetime
    now: datetime
    config: ReviewConfig
    expected_sse: str | None  # the configured or the operator's; None: any
    sse: Mapping[str, str | None]  # url -> algorithm, "" for none; absent or None: unknown
    logs: Mapping[str, list[str] | str]  # pod -> its lines, or why they could not be read
    future: frozenset[str]  # urls of objects dated in the future
    verify: bool  # whether the newest backups were verified end to end
    verified: Mapping[str, tuple[bool, str]]  # url -> (intact, what verifying said)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.config.grace_minutes)


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # the checklist's column, the findings' ``check``
    run: Callable[[ClusterFacts], Verdict]
    # Reads what only Kubernetes knows (schedules, Jobs, retention): skipped for a cluster
    # known only to storage.
    needs_kubernetes: bool = False


def missing_backup(f: ClusterFacts) -> Verdict:
    """The runs the schedule expected in the window that left no object."""
    c = f.cluster
    if not c.schedule:
        return Verdict(
            (Issue(Severity.WARNING, "no schedule is known for this cluster's backups"),)
        )
    out: list[Issue] = []
    run_start = max(f.window_start, c.created) if c.created else f.window_start
    try:
        runs = health.runs(c.schedule, [b.time for b in f.backups], run_start, f.now, f.grace)
    except health.ScheduleError as exc:
        out.append(Issue(Severity.CRITICAL, f"the schedule cannot be read: {exc}"))
        runs = []
    missing = [r for r in runs if r.state is RunState.MISSING]
    judged = [r for r in runs if r.state is not RunState.PENDING]
    if missing:
        late = bool(judged) and judged[-1].state is RunState.MISSING
        out.append(
            Issue(
                Severity.CRITICAL if late or len(missing) == len(judged) else Severity.WARNING,
                f"{len(missing)} of {len(judged)} runs of {c.schedule!r} in the window left no "
                "object" + (", the latest among them" if late else ""),
                tuple(
                    Evidence(
                        "run",
                        iso(r.at),
                        f"no object between {r.at:%H:%M} and {r.until:%Y-%m-%d %H:%M} UTC",
                    )
                    for r in missing
                ),
            )
        )
    return Verdict(tuple(out))


def job_failed(f: ClusterFacts) -> Verdict:
    """Failed Jobs (with their pods and log lines), and a CronJob suspended or behind."""
    epoch0 = datetime.fromtimestamp(0, UTC)
    finished = sorted(
        (j for j in f.jobs if j.status in ("failed", "succeeded")),
        key=lambda j: j.started or epoch0,
    )
    out = [
        Issue(
            Severity.CRITICAL if j is finished[-1] else Severity.WARNING,
            f"job {j.name} failed ({j.reason or 'no reason given'})"
            + ("" if j is finished[-1] else "; a later run succeeded"),
            _failed_job_evidence(j, f.logs),
        )
        for j in finished
        if j.status == "failed"
    ]
    c = f.cluster
    cj = c.cronjob
    if cj is not None and cj.suspended:
        out.append(
            Issue(
                Severity.WARNING,
                f"CronJob {cj.name} is suspended: no backup runs",
                (Evidence("cronjob", cj.name),),
            )
        )
    elif cj is not None and c.schedule:
        try:
            recent = health.expected_runs(c.schedule, f.now - timedelta(days=400), f.now - f.grace)
        except health.ScheduleError:
            recent = []
        due = recent[-1] if recent else None
        if (
            due is not None
            and (cj.last_successful is None or cj.last_successful < due)
            and (c.created is None or c.created < due)
        ):
            last = iso(cj.last_successful) if cj.last_successful else "never"
            out.append(
                Issue(
                    Severity.CRITICAL,
                    f"CronJob {cj.name}'s last success ({last}) is older than its schedule "
                    f"allows (a run was due at {due:%Y-%m-%d %H:%M} UTC)",
                    (
                        Evidence(
                            "cronjob", cj.name, f"lastSuccessfulTime {last}, schedule {cj.schedule}"
                        ),
                    ),
                )
            )
    return Verdict(tuple(out))


def _failed_job_evidence(j: JobRun, logs: Mapping[str, list[str] | str]) -> tuple[Evidence, ...]:
    ev = [Evidence("job", j.name, f"{j.reason or 'failed'}: {j.message or ''}".rstrip(": "))]
    for p in j.pods:
        ev.append(
            Evidence(
                "pod", p.name, f"{p.phase}, exit code {p.exit_code}, {p.reason or ''}".rstrip(", ")
            )
        )
        text = logs.get(p.name)
        if isinstance(text, str):
            ev.append(Evidence("log", p.name, f"log unavailable: {text}"))
        elif text:
            bad = [line for line in text if _is_bad(line)]
            ev += [
                Evidence("log", p.name, quote(line)) for line in (bad or text)[-_LOG_LINES_KEPT:]
            ]
    return tuple(ev)


_SIZE_WHAT = {"near-empty": "near-empty", "small": "a sudden drop", "large": "a sudden jump"}


def size_anomaly(f: ClusterFacts) -> Verdict:
    """Objects in the window much smaller or larger than the ones before them."""
    cfg = f.config
    sizes = [b.size for b in f.backups]
    flags = health.size_outliers(
        sizes,
        window=cfg.size_window,
        low=cfg.size_low_ratio,
        high=cfg.size_high_ratio,
        near_empty=cfg.near_empty_bytes,
    )
    out = []
    for i, (b, flag) in enumerate(zip(f.backups, flags, strict=True)):
        if flag is None or b.time < f.window_start:
            continue
        before = sizes[max(0, i - cfg.size_window) : i]
        norm = (
            f", the {len(before)} before it have a median of {_size(statistics.median(before))}"
            if before
            else ""
        )
        out.append(
            Issue(
                Severity.CRITICAL if flag == "near-empty" else Severity.WARNING,
                f"{_SIZE_WHAT[flag]}: {_size(b.size)} at {b.time:%Y-%m-%d %H:%M} UTC{norm}",
                (Evidence("object", b.url, f"{b.size} bytes"),),
            )
        )
    return Verdict(tuple(out))


def unencrypted(f: ClusterFacts) -> Verdict:
    """Objects in the window stored without server-side encryption, or with another one."""
    expected = f.expected_sse
    plain = [b for b in f.window if f.sse.get(b.url) == ""]
    other = [b for b in f.window if expected and f.sse.get(b.url) not in (None, "", expected)]
    unknown = [b for b in f.window if f.sse.get(b.url) is None]
    out = []
    if plain:
        out.append(
            Issue(
                Severity.WARNING,
                f"{len(plain)} object(s) stored without server-side encryption"
                + (f" (expected {expected})" if expected else ""),
                tuple(Evidence("object", b.url, "no server-side encryption") for b in plain),
            )
        )
    if other:
        out.append(
            Issue(
                Severity.WARNING,
                f"{len(other)} object(s) encrypted otherwise than the expected {expected}",
                tuple(Evidence("object", b.url, str(f.sse.get(b.url))) for b in other),
            )
        )
    # Nothing to judge: no object in the window, or a store that cannot tell.
    return Verdict(tuple(out), skipped=len(unknown) == len(f.window))


def retention(f: ClusterFacts) -> Verdict:
    """Objects the retention should have deleted, a history shorter than it promises, and
    objects of earlier uids (which the backup job never deletes)."""
    c, now = f.cluster, f.now
    days = retention_days(c.retention)
    if days is None:
        return Verdict()
    keep = timedelta(days=days)
    slack = timedelta(days=1)  # dump.sh deletes by date, after each run
    current = [b for b in f.backups if b.uid == c.uid]
    stale = [b for b in current if b.time < now - keep - slack]
    out = []
    if stale:
        out.append(
            Issue(
                Severity.WARNING,
                f"{len(stale)} object(s) older than the retention of {c.retention}: "
                "deletion is not working",
                tuple(
                    Evidence("object", b.url, f"{b.time:%Y-%m-%d %H:%M} UTC") for b in stale[:20]
                ),
            )
        )
    elif current and c.created and c.created < now - keep and current[0].time > now - keep + slack:
        have = now - current[0].time
        out.append(
            Issue(
                Severity.WARNING,
                f"history covers {have.days} day(s), less than the {c.retention} the "
                "retention promises",
                (Evidence("object", current[0].url, "the oldest object"),),
            )
        )
    old = [b for b in f.backups if b.uid != c.uid]
    if old:
        uids = sorted({b.uid for b in old})
        out.append(
            Issue(
                Severity.INFO,
                f"{len(old)} object(s) of earlier uid(s) {', '.join(u[:8] for u in uids)}: "
                "the backup job never deletes them",
            )
        )
    return Verdict(tuple(out))


def integrity(f: ClusterFacts) -> Verdict:
    """Objects dated in the future, and (when verifying) the latest backup damaged."""
    future = [b for b in f.backups if b.url in f.future]
    out = []
    if future:
        out.append(
            Issue(
                Severity.WARNING,
                f"{len(future)} object(s) dated in the future (the latest "
                f"{future[-1].time:%Y-%m-%d %H:%M} UTC): a wrong clock where the backup ran, "
                "or a forged key; never chosen as the latest backup",
                tuple(
                    Evidence("object", b.url, f"dated {b.time:%Y-%m-%d %H:%M} UTC")
                    for b in future[-20:]
                ),
            )
        )
    if not f.verify:
        return Verdict(tuple(out), skipped=True)
    real = [b for b in f.backups if b.url not in f.future]
    if not real:
        return Verdict(tuple(out), skipped=True)
    latest = real[-1]
    ok, detail = f.verified.get(latest.url, (True, ""))
    if not ok:
        out.append(
            Issue(
                Severity.CRITICAL,
                f"the latest backup is damaged: {detail}",
                (Evidence("object", latest.url, detail),),
            )
        )
    return Verdict(tuple(out))


def log_anomaly(f: ClusterFacts) -> Verdict:
    """Jobs that succeeded with error or warning lines in their logs."""
    out = []
    for j in f.jobs:
        if j.status != "succeeded":
            continue
        for p in j.pods:
            text = f.logs.get(p.name)
            if not isinstance(text, list):
                continue
            bad = [line for line in text if _is_bad(line)]
            if not bad:
                continue
            serious = [line for line in bad if not _WARNING_ONLY.search(line)]
            out.append(
                Issue(
                    Severity.WARNING if serious else Severity.INFO,
                    f"job {j.name} succeeded but its log has {len(bad)} "
                    + ("error" if serious else "warning")
                    + " line(s)",
                    (
                        Evidence("job", j.name, "succeeded"),
                        *(Evidence("log", p.name, quote(line)) for line in bad[:_LOG_LINES_KEPT]),
                    ),
                )
            )
    return Verdict(tuple(out))


# The checklist, in the order of its columns (and of the findings of one cluster).
CHECKS: tuple[Check, ...] = (
    Check("missing_backup", missing_backup, needs_kubernetes=True),
    Check("job_failed", job_failed, needs_kubernetes=True),
    Check("size_anomaly", size_anomaly),
    Check("unencrypted", unencrypted),
    Check("retention", retention, needs_kubernetes=True),
    Check("integrity", integrity),
    Check("log_anomaly", log_anomaly, needs_kubernetes=True),
)
CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in CHECKS)


def _is_bad(line: str) -> bool:
    return not line.startswith("+") and bool(_BAD_LINE.search(line))


def _size(n: float) -> str:
    import humanize

    return humanize.naturalsize(n, binary=True)
