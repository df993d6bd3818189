"""The weekly review: the backup checklist computed from storage and Kubernetes, each
finding with its evidence, signed off and archived.

Kubernetes keeps only a few Jobs, so the objects in storage are the durable record: the
runs a schedule expected are matched with objects (``services.health``), and the Jobs
and logs still kept add what storage cannot say. A review is made from a refreshed
catalog; a source that failed makes the review impossible rather than quietly clean.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services import health
from services.archive import Archive, ArchiveSpec, open_archive
from services.catalog import Catalog, CatalogState
from services.clock import Clock, system_clock
from services.config import ReviewConfig
from services.errors import PgdeckError, SourceError
from services.jsonable import iso
from services.models import Backup, Cluster, JobRun
from services.operator import retention_days
from services.text import safe_line, safe_text

CHECKS = (
    "missing_backup",
    "job_failed",
    "size_anomaly",
    "unencrypted",
    "retention",
    "integrity",
    "log_anomaly",
)
SEVERITIES = ("info", "warning", "critical")
RANK = {"ok": 0, "skipped": 0, "info": 1, "warning": 2, "critical": 3}
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


Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # "object", "run", "job", "log", "cronjob"
    ref: str  # the object's URL, the run's ISO time, the job's name, the pod's name
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    cluster: str
    namespace: str
    context: str
    check: str
    severity: str  # info, warning, critical
    detail: str
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = [asdict(e) for e in self.evidence]
        return out


@dataclass
class ClusterReview:
    cluster: str
    namespace: str
    context: str
    in_kubernetes: bool
    logical_backup: bool
    schedule: str | None
    objects: int  # objects written in the window
    marks: dict[str, str] = field(default_factory=dict)  # check -> ok/skipped/info/warning/critical

    @property
    def worst(self) -> str:
        return max(self.marks.values(), key=lambda m: RANK.get(m, 0), default="ok")


@dataclass
class Review:
    window_start: datetime
    window_end: datetime
    verify: bool
    clusters: list[ClusterReview] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # limited sources, said once
    reviewer: str | None = None
    note: str | None = None
    signed_at: datetime | None = None
    archived: dict[str, str] | None = None

    @property
    def exit_code(self) -> int:
        return 1 if any(RANK[f.severity] >= RANK["warning"] for f in self.findings) else 0

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            out[f.severity] += 1
        return out

    def for_cluster(self, c: ClusterReview) -> list[Finding]:
        return [
            f
            for f in self.findings
            if (f.cluster, f.namespace, f.context) == (c.cluster, c.namespace, c.context)
        ]

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "verify": self.verify,
            "signed_off": None
            if self.signed_at is None
            else {"reviewer": self.reviewer, "note": self.note, "at": iso(self.signed_at)},
            "summary": self.counts(),
            "clusters": [asdict(c) for c in self.clusters],
            "findings": [f.to_dict() for f in self.findings],
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        signed = data.get("signed_off") or {}
        return cls(
            window_start=_parse(data["window"]["start"]),
            window_end=_parse(data["window"]["end"]),
            verify=bool(data.get("verify")),
            clusters=[ClusterReview(**c) for c in data.get("clusters", [])],
            findings=[
                Finding(
                    **{k: v for k, v in f.items() if k != "evidence"},
                    evidence=tuple(Evidence(**e) for e in f.get("evidence", [])),
                )
                for f in data.get("findings", [])
            ],
            warnings=list(data.get("warnings", [])),
            reviewer=signed.get("reviewer"),
            note=signed.get("note"),
            signed_at=_parse(signed["at"]) if signed.get("at") else None,
        )

    def to_markdown(self) -> str:
        c = self.counts()
        lines = [
            "# pgdeck weekly backup review",
            "",
            f"- Window: {iso(self.window_start)} to {iso(self.window_end)}",
            f"- Clusters: {len(self.clusters)}; findings: {c['critical']} critical, "
            f"{c['warning']} warning, {c['info']} info",
            f"- Newest backups verified end to end: {'yes' if self.verify else 'no'}",
        ]
        if self.signed_at is not None:
            lines.append(
                f"- Signed off by {safe_text(self.reviewer or '')} at {iso(self.signed_at)}"
            )
            if self.note:
                lines.append(f"- Note: {safe_text(self.note)}")
        else:
            lines.append("- Not signed off")
        lines += ["", "## Checklist", "", "| Cluster | " + " | ".join(CHECKS) + " |"]
        lines.append("|---" * (len(CHECKS) + 1) + "|")
        for cr in self.clusters:
            where = f"{cr.namespace}/{cr.cluster}" if cr.namespace else f"{cr.cluster} (storage)"
            lines.append(
                f"| {safe_text(where)} | " + " | ".join(cr.marks.get(k, "-") for k in CHECKS) + " |"
            )
        off = [cr for cr in self.clusters if cr.in_kubernetes and not cr.logical_backup]
        if off:
            lines += [
                "",
                "Without logical backups: "
                + safe_text(", ".join(f"{cr.namespace}/{cr.cluster}" for cr in off)),
            ]
        lines += ["", "## Findings", ""]
        if not self.findings:
            lines.append("None.")
        for f in sorted(self.findings, key=lambda f: (-RANK[f.severity], f.cluster, f.check)):
            where = f"{f.namespace}/{f.cluster}" if f.namespace else f.cluster
            lines.append(
                f"- **{f.severity}** `{f.check}` {safe_text(where)}: {safe_text(f.detail)}"
            )
            lines += [
                f"  - {e.kind} `{safe_text(e.ref)}`"
                + (f": {safe_text(e.detail)}" if e.detail else "")
                for e in f.evidence
            ]
        if self.warnings:
            lines += ["", "## Sources", ""] + [f"- {safe_text(w)}" for w in self.warnings]
        return "\n".join(lines) + "\n"


class ReviewFailed(SourceError):
    """The review could not be made: a source it needs failed (exit status 2)."""

    exit_code = 2


# --- making a review -------------------------------------------------------------------------
def run_review(
    catalog: Catalog,
    *,
    since: timedelta | None = None,
    verify: bool = False,
    state: CatalogState | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Review:
    """Review every cluster of a refreshed catalog (``state``; refreshed here if None)."""
    say = progress or (lambda _stage, _done, _total: None)
    cfg = catalog.config.review
    if state is None:
        state = catalog.refresh()
    failed = [p for p in state.problems if p.fatal_for_source]
    if failed:
        p = failed[0]
        # Storage and Kubernetes errors mostly name their source already.
        named = p.message.startswith(p.source) or p.source.split()[-1] in p.message
        message = p.message if named else f"{p.source}: {p.message}"
        raise ReviewFailed(
            f"the review could not be made: {message}",
            "fix the source and run the review again (a partial review would look cleaner than it is)",
        )
    now = now or catalog.clock()
    window = since if since is not None else timedelta(days=cfg.since_days)
    review = Review(window_start=now - window, window_end=now, verify=verify)
    review.warnings = [f"{p.source}: {p.message}" for p in state.problems]
    summaries = state.clusters
    per_cluster: list[tuple[Cluster, list[Backup], list[JobRun]]] = []
    for i, s in enumerate(summaries):
        c = s.cluster
        per_cluster.append((c, catalog.backups(c), catalog.jobs(c)))
        say("backups", i + 1, len(summaries))
    in_window = [b for _, bs, _ in per_cluster for b in bs if b.time >= review.window_start]
    say("encryption", 0, len(in_window))
    sse = {b.url: b.sse for b in catalog.with_sse(in_window)}
    say("encryption", len(in_window), len(in_window))
    logs = _read_logs(catalog, [j for _, _, jobs in per_cluster for j in jobs], say)
    verified = _verify_newest(catalog, per_cluster, say) if verify else {}
    for c, backups, jobs in per_cluster:
        cr, findings = _review_cluster(
            c, backups, jobs, review, cfg, now, sse, logs, verified, catalog
        )
        review.clusters.append(cr)
        review.findings.extend(findings)
    return review


def _review_cluster(
    c: Cluster,
    backups: list[Backup],
    jobs: list[JobRun],
    review: Review,
    cfg: ReviewConfig,
    now: datetime,
    sse: dict[str, str | None],
    logs: dict[str, list[str] | str],
    verified: dict[str, tuple[bool, str]],
    catalog: Catalog,
) -> tuple[ClusterReview, list[Finding]]:
    start = review.window_start
    oldest_first = sorted(backups, key=lambda b: (b.time, b.key))
    window = [b for b in oldest_first if b.time >= start]
    cr = ClusterReview(
        cluster=c.name,
        namespace=c.namespace,
        context=c.context,
        in_kubernetes=c.in_kubernetes,
        logical_backup=c.logical_backup,
        schedule=c.schedule,
        objects=len(window),
    )
    out: list[Finding] = []

    def add(check: str, severity: str, detail: str, evidence: Iterable[Evidence] = ()) -> None:
        out.append(
            Finding(c.name, c.namespace, c.context, check, severity, detail, tuple(evidence))
        )

    if c.in_kubernetes and not c.logical_backup:
        cr.marks = dict.fromkeys(CHECKS, "skipped")
        add("missing_backup", "info", "logical backups are not enabled for this cluster")
        cr.marks["missing_backup"] = "info"
        return cr, out
    live = c.in_kubernetes
    grace = timedelta(minutes=cfg.grace_minutes)
    # missing_backup -------------------------------------------------------------------
    if live and c.schedule:
        run_start = max(start, c.created) if c.created else start
        try:
            runs = health.runs(c.schedule, [b.time for b in oldest_first], run_start, now, grace)
        except health.ScheduleError as exc:
            add("missing_backup", "critical", f"the schedule cannot be read: {exc}")
            runs = []
        missing = [r for r in runs if r.state == "missing"]
        judged = [r for r in runs if r.state != "pending"]
        if missing:
            late = bool(judged) and judged[-1].state == "missing"
            add(
                "missing_backup",
                "critical" if late or len(missing) == len(judged) else "warning",
                f"{len(missing)} of {len(judged)} runs of {c.schedule!r} in the window left no "
                "object" + (", the latest among them" if late else ""),
                [
                    Evidence(
                        "run",
                        iso(r.at),
                        f"no object between {r.at:%H:%M} and {r.until:%Y-%m-%d %H:%M} UTC",
                    )
                    for r in missing
                ],
            )
    elif live:
        add("missing_backup", "warning", "no schedule is known for this cluster's backups")
    # job_failed -------------------------------------------------------------------------
    if live:
        epoch0 = datetime.fromtimestamp(0, UTC)
        finished = sorted(
            (j for j in jobs if j.status in ("failed", "succeeded")),
            key=lambda j: j.started or epoch0,
        )
        for j in (j for j in finished if j.status == "failed"):
            newest = j is finished[-1]
            ev = [
                Evidence("job", j.name, f"{j.reason or 'failed'}: {j.message or ''}".rstrip(": "))
            ]
            for p in j.pods:
                ev.append(
                    Evidence(
                        "pod",
                        p.name,
                        f"{p.phase}, exit code {p.exit_code}, {p.reason or ''}".rstrip(", "),
                    )
                )
                text = logs.get(p.name)
                if isinstance(text, str):
                    ev.append(Evidence("log", p.name, f"log unavailable: {text}"))
                elif text:
                    bad = [line for line in text if _is_bad(line)]
                    ev += [
                        Evidence("log", p.name, quote(line))
                        for line in (bad or text)[-_LOG_LINES_KEPT:]
                    ]
            add(
                "job_failed",
                "critical" if newest else "warning",
                f"job {j.name} failed ({j.reason or 'no reason given'})"
                + ("" if newest else "; a later run succeeded"),
                ev,
            )
        cj = c.cronjob
        if cj is not None and cj.suspended:
            add(
                "job_failed",
                "warning",
                f"CronJob {cj.name} is suspended: no backup runs",
                [Evidence("cronjob", cj.name)],
            )
        elif cj is not None and c.schedule:
            try:
                recent = health.expected_runs(c.schedule, now - timedelta(days=400), now - grace)
            except health.ScheduleError:
                recent = []
            due = recent[-1] if recent else None
            if (
                due is not None
                and (cj.last_successful is None or cj.last_successful < due)
                and (c.created is None or c.created < due)
            ):
                last = iso(cj.last_successful) if cj.last_successful else "never"
                add(
                    "job_failed",
                    "critical",
                    f"CronJob {cj.name}'s last success ({last}) is older than its schedule allows "
                    f"(a run was due at {due:%Y-%m-%d %H:%M} UTC)",
                    [
                        Evidence(
                            "cronjob", cj.name, f"lastSuccessfulTime {last}, schedule {cj.schedule}"
                        )
                    ],
                )
    # size_anomaly -------------------------------------------------------------------------
    sizes = [b.size for b in oldest_first]
    flags = health.size_outliers(
        sizes,
        window=cfg.size_window,
        low=cfg.size_low_ratio,
        high=cfg.size_high_ratio,
        near_empty=cfg.near_empty_bytes,
    )
    for i, (b, flag) in enumerate(zip(oldest_first, flags, strict=True)):
        if flag is None or b.time < start:
            continue
        before = sizes[max(0, i - cfg.size_window) : i]
        norm = (
            f", the {len(before)} before it have a median of {_size(statistics.median(before))}"
            if before
            else ""
        )
        what = {"near-empty": "near-empty", "small": "a sudden drop", "large": "a sudden jump"}[
            flag
        ]
        add(
            "size_anomaly",
            "critical" if flag == "near-empty" else "warning",
            f"{what}: {_size(b.size)} at {b.time:%Y-%m-%d %H:%M} UTC{norm}",
            [Evidence("object", b.url, f"{b.size} bytes")],
        )
    # unencrypted ----------------------------------------------------------------------------
    expected = cfg.expect_sse or _operator_sse(catalog, c)
    plain = [b for b in window if sse.get(b.url) == ""]
    other = [b for b in window if expected and sse.get(b.url) not in (None, "", expected)]
    unknown = [b for b in window if sse.get(b.url) is None]
    if plain:
        add(
            "unencrypted",
            "warning",
            f"{len(plain)} object(s) stored without server-side encryption"
            + (f" (expected {expected})" if expected else ""),
            [Evidence("object", b.url, "no server-side encryption") for b in plain],
        )
    if other:
        add(
            "unencrypted",
            "warning",
            f"{len(other)} object(s) encrypted otherwise than the expected {expected}",
            [Evidence("object", b.url, str(sse.get(b.url))) for b in other],
        )
    if len(unknown) == len(window):
        # Nothing to judge: no object in the window, or a store that cannot tell.
        cr.marks["unencrypted"] = "skipped"
    # retention ----------------------------------------------------------------------------
    days = retention_days(c.retention)
    if days is not None and live:
        keep = timedelta(days=days)
        slack = timedelta(days=1)  # dump.sh deletes by date, after each run
        current = [b for b in oldest_first if b.uid == c.uid]
        stale = [b for b in current if b.time < now - keep - slack]
        if stale:
            add(
                "retention",
                "warning",
                f"{len(stale)} object(s) older than the retention of {c.retention}: deletion is not working",
                [Evidence("object", b.url, f"{b.time:%Y-%m-%d %H:%M} UTC") for b in stale[:20]],
            )
        elif (
            current
            and c.created
            and c.created < now - keep
            and current[0].time > now - keep + slack
        ):
            have = now - current[0].time
            add(
                "retention",
                "warning",
                f"history covers {have.days} day(s), less than the {c.retention} the retention promises",
                [Evidence("object", current[0].url, "the oldest object")],
            )
        old = [b for b in oldest_first if b.uid != c.uid]
        if old:
            uids = sorted({b.uid for b in old})
            add(
                "retention",
                "info",
                f"{len(old)} object(s) of earlier uid(s) {', '.join(u[:8] for u in uids)}: "
                "the backup job never deletes them",
            )
    # integrity ----------------------------------------------------------------------------
    future = [b for b in oldest_first if catalog.future_dated(b)]
    if future:
        add(
            "integrity",
            "warning",
            f"{len(future)} object(s) dated in the future (the latest "
            f"{future[-1].time:%Y-%m-%d %H:%M} UTC): a wrong clock where the backup ran, or a "
            "forged key; never chosen as the latest backup",
            [Evidence("object", b.url, f"dated {b.time:%Y-%m-%d %H:%M} UTC") for b in future[-20:]],
        )
    if review.verify:
        real = [b for b in oldest_first if not catalog.future_dated(b)]
        latest = real[-1] if real else None
        if latest is None:
            cr.marks["integrity"] = "skipped"
        elif latest.url in verified:
            ok, detail = verified[latest.url]
            if not ok:
                add(
                    "integrity",
                    "critical",
                    f"the latest backup is damaged: {detail}",
                    [Evidence("object", latest.url, detail)],
                )
    else:
        cr.marks["integrity"] = "skipped"
    # log_anomaly ---------------------------------------------------------------------------
    for j in jobs:
        if j.status != "succeeded":
            continue
        for p in j.pods:
            text = logs.get(p.name)
            if not isinstance(text, list):
                continue
            bad = [line for line in text if _is_bad(line)]
            if not bad:
                continue
            serious = [line for line in bad if not _WARNING_ONLY.search(line)]
            add(
                "log_anomaly",
                "warning" if serious else "info",
                f"job {j.name} succeeded but its log has {len(bad)} "
                + ("error" if serious else "warning")
                + " line(s)",
                [Evidence("job", j.name, "succeeded")]
                + [Evidence("log", p.name, quote(line)) for line in bad[:_LOG_LINES_KEPT]],
            )
    if not live:
        for check in ("missing_backup", "job_failed", "retention", "log_anomaly"):
            cr.marks.setdefault(check, "skipped")
        add("missing_backup", "info", "known only to storage: the cluster is gone from Kubernetes")
    for check in CHECKS:
        worst = max(
            (f.severity for f in out if f.check == check), key=lambda s: RANK[s], default=None
        )
        if worst is not None and RANK[worst] >= RANK.get(cr.marks.get(check, "ok"), 0):
            cr.marks[check] = worst
        cr.marks.setdefault(check, "ok")
    return cr, out


def _is_bad(line: str) -> bool:
    return not line.startswith("+") and bool(_BAD_LINE.search(line))


def _operator_sse(catalog: Catalog, c: Cluster) -> str | None:
    settings = catalog.operator_settings(c.context)
    return settings.sse if settings else None


def _read_logs(catalog: Catalog, jobs: list[JobRun], say: Progress) -> dict[str, list[str] | str]:
    """Every kept pod's log (list of lines), or why it could not be read (a string)."""
    pods = [(j.context, p.namespace, p.name) for j in jobs for p in j.pods]
    out: dict[str, list[str] | str] = {}
    if not pods:
        return out

    def read(item: tuple[str, str, str]) -> list[str] | str:
        context, namespace, name = item
        try:
            return list(catalog.read_log(context, namespace, name))
        except PgdeckError as exc:
            return str(exc)

    with cf.ThreadPoolExecutor(min(8, len(pods))) as pool:
        for i, (item, text) in enumerate(zip(pods, pool.map(read, pods), strict=True)):
            out[item[2]] = text
            say("logs", i + 1, len(pods))
    return out


def _verify_newest(
    catalog: Catalog,
    per_cluster: list[tuple[Cluster, list[Backup], list[JobRun]]],
    say: Progress,
) -> dict[str, tuple[bool, str]]:
    from services.verify import verify_backup

    # Each cluster's newest backup (they come newest first) that is not future-dated.
    chosen = (
        next((b for b in bs if not catalog.future_dated(b)), None) for _, bs, _ in per_cluster
    )
    newest = [b for b in chosen if b is not None]
    out: dict[str, tuple[bool, str]] = {}

    def check(b: Backup) -> tuple[bool, str]:
        try:
            store, key, _ = catalog.resolve(b.url)
            result = verify_backup(store, key)
        except PgdeckError as exc:
            return False, str(exc)
        return result.ok, result.problem or f"intact ({len(result.summary.tables)} tables)"

    with cf.ThreadPoolExecutor(4) as pool:
        for i, (b, result) in enumerate(zip(newest, pool.map(check, newest), strict=True)):
            out[b.url] = result
            say("verify", i + 1, len(newest))
    return out


# --- sign-off and archive -----------------------------------------------------------------
def sign_off(
    review: Review,
    reviewer: str,
    note: str | None,
    archive: ArchiveSpec | Archive,
    *,
    clock: Clock = system_clock,
) -> Review:
    """Record who reviewed and why, and archive the review as JSON and Markdown."""
    if not reviewer.strip():
        raise PgdeckError("a sign-off needs the reviewer's name")
    review.reviewer = reviewer.strip()
    review.note = (note or "").strip() or None
    review.signed_at = clock()
    return archive_review(review, archive, clock=clock)


def archive_review(
    review: Review, archive: ArchiveSpec | Archive, *, clock: Clock = system_clock
) -> Review:
    """The review's JSON and Markdown, each under a name of its own, and its audit entry:
    the reviewer's name is recorded beside the OS user the archive records, never
    instead of it. ``ArchiveError`` when any of it cannot be written."""
    done = open_archive(archive, clock).complete(
        None,
        "review",
        "review",
        review.to_dict(),
        review.to_markdown(),
        {
            "action": "review",
            "reviewer": review.reviewer,
            "signed_at": iso(review.signed_at) if review.signed_at else None,
            "window": [iso(review.window_start), iso(review.window_end)],
            "outcome": review.counts(),
            "note": review.note,
        },
    )
    review.archived = {"json": done.json_url, "markdown": done.markdown_url, "location": done.json}
    return review


@dataclass(frozen=True, slots=True)
class ArchivedReview:
    location: str  # in the archive: reviews/<name>.json
    path: str  # as the user sees it: a path or an s3:// URL
    signed_at: str | None
    reviewer: str | None
    summary: dict[str, int]


def list_reviews(archive: ArchiveSpec | Archive) -> list[ArchivedReview]:
    """Earlier reviews, newest first; an unreadable one is left out."""
    out = []
    for item in open_archive(archive).list("review"):
        signed = item.document.get("signed_off") or {}
        summary = item.document.get("summary")
        out.append(
            ArchivedReview(
                item.location,
                item.url,
                signed.get("at") if isinstance(signed, dict) else None,
                signed.get("reviewer") if isinstance(signed, dict) else None,
                summary if isinstance(summary, dict) else {},
            )
        )
    return out


def load_review(archive: ArchiveSpec | Archive, location: str) -> Review:
    opened = open_archive(archive)
    data = opened.read_json(location)
    try:
        review = Review.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise PgdeckError(f"cannot read the review {opened.url(location)}: {exc}") from exc
    review.archived = {
        "json": opened.url(location),
        "markdown": opened.url(location.removesuffix(".json") + ".md"),
        "location": location,
    }
    return review


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _size(n: float) -> str:
    import humanize

    return humanize.naturalsize(n, binary=True)
