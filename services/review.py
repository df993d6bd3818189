"""The weekly review: the backup checklist computed from storage and Kubernetes, each
finding with its evidence, signed off and archived.

Kubernetes keeps only a few Jobs, so the objects in storage are the durable record: the
runs a schedule expected are matched with objects (``services.health``), and the Jobs
and logs still kept add what storage cannot say. A review is made from a refreshed
catalog; a source that failed makes the review impossible rather than quietly clean.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.archive import Archive, ArchiveSpec, open_archive
from services.catalog import Catalog, CatalogState
from services.clock import Clock, system_clock
from services.errors import PgdeckError, SourceError
from services.jsonable import iso
from services.marks import CheckMark, Severity
from services.models import Backup, Cluster, JobRun
from services.review_checks import (
    CHECK_NAMES,
    CHECKS,
    Check,
    ClusterFacts,
    Evidence,
    Verdict,
    quote,
    scrub,
)
from services.review_result import ClusterReview, Finding, Review

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "ArchivedReview",
    "ClusterReview",
    "Evidence",
    "Finding",
    "Review",
    "ReviewFailed",
    "archive_review",
    "list_reviews",
    "load_review",
    "quote",
    "run_review",
    "scrub",
    "sign_off",
]

Progress = Callable[[str, int, int], None]  # (stage, done, total)


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
    if state is None:
        state = catalog.refresh()
    _refuse_failed_sources(state)
    now = now or catalog.clock()
    window = since if since is not None else timedelta(days=catalog.config.review.since_days)
    facts = gather_facts(catalog, state, start=now - window, now=now, verify=verify, say=say)
    reviewed = [review_cluster(f) for f in facts]
    return Review(
        window_start=now - window,
        window_end=now,
        verify=verify,
        clusters=tuple(cr for cr, _ in reviewed),
        findings=tuple(f for _, found in reviewed for f in found),
        warnings=tuple(f"{p.source}: {p.message}" for p in state.problems),
    )


def gather_facts(
    catalog: Catalog,
    state: CatalogState,
    *,
    start: datetime,
    now: datetime,
    verify: bool,
    say: Progress,
) -> list[ClusterFacts]:
    """Every cluster's facts for the checks, each source asked once for them all: the
    objects' encryption (HEADs of the window's objects), the kept pods' logs, and the
    newest backups verified end to end when ``verify``."""
    cfg = catalog.config.review
    per_cluster: list[tuple[Cluster, list[Backup], list[JobRun]]] = []
    for i, s in enumerate(state.clusters):
        per_cluster.append((s.cluster, catalog.backups(s.cluster), catalog.jobs(s.cluster)))
        say("backups", i + 1, len(state.clusters))
    in_window = [b for _, bs, _ in per_cluster for b in bs if b.time >= start]
    say("encryption", 0, len(in_window))
    sse = {b.url: b.sse for b in catalog.with_sse(in_window)}
    say("encryption", len(in_window), len(in_window))
    logs = _read_logs(catalog, [j for _, _, jobs in per_cluster for j in jobs], say)
    verified = _verify_newest(catalog, per_cluster, say) if verify else {}
    out = []
    for c, backups, jobs in per_cluster:
        oldest_first = tuple(sorted(backups, key=lambda b: (b.time, b.key)))
        out.append(
            ClusterFacts(
                cluster=c,
                backups=oldest_first,
                window=tuple(b for b in oldest_first if b.time >= start),
                jobs=tuple(jobs),
                window_start=start,
                now=now,
                config=cfg,
                expected_sse=cfg.expect_sse or _operator_sse(catalog, c),
                sse=sse,
                logs=logs,
                future=frozenset(b.url for b in backups if catalog.future_dated(b)),
                verify=verify,
                verified=verified,
            )
        )
    return out


def _refuse_failed_sources(state: CatalogState) -> None:
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


def review_cluster(f: ClusterFacts) -> tuple[ClusterReview, tuple[Finding, ...]]:
    """One cluster against every check of ``CHECKS``: its row of the checklist and its
    findings, in the order of the checks."""
    c = f.cluster

    def finding(
        check: str, severity: Severity, detail: str, evidence: Iterable[Evidence] = ()
    ) -> Finding:
        return Finding(c.name, c.namespace, c.context, check, severity, detail, tuple(evidence))

    if c.in_kubernetes and not c.logical_backup:
        note = "logical backups are not enabled for this cluster"
        marks = dict.fromkeys(CHECK_NAMES, CheckMark.SKIPPED) | {"missing_backup": CheckMark.INFO}
        return _row(f, marks), (finding("missing_backup", Severity.INFO, note),)
    verdicts: list[tuple[Check, Verdict]] = [
        (check, check.run(f)) for check in CHECKS if c.in_kubernetes or not check.needs_kubernetes
    ]
    found = [
        finding(check.name, i.severity, i.detail, i.evidence)
        for check, v in verdicts
        for i in v.issues
    ]
    if not c.in_kubernetes:  # said after what the checks found, as reviews always have
        note = "known only to storage: the cluster is gone from Kubernetes"
        found.append(finding("missing_backup", Severity.INFO, note))
    return _row(f, _marks(verdicts, found, live=c.in_kubernetes)), tuple(found)


def _marks(
    verdicts: list[tuple[Check, Verdict]], found: list[Finding], *, live: bool
) -> dict[str, CheckMark]:
    """Each check's mark: the worst severity it found, else skipped or ok.

    The order of the marks is that of the archived JSON since its first version: the
    checks that skipped themselves, those a cluster gone from Kubernetes skips, then the
    rest, each in the order of ``CHECKS``."""
    marks = {check.name: CheckMark.SKIPPED for check, v in verdicts if v.skipped}
    for check in CHECKS:
        if check.needs_kubernetes and not live:
            marks.setdefault(check.name, CheckMark.SKIPPED)
    for name in CHECK_NAMES:
        worst = max(
            (x.severity for x in found if x.check == name), key=lambda s: s.rank, default=None
        )
        marks[name] = CheckMark(worst) if worst is not None else marks.get(name, CheckMark.OK)
    return marks


def _row(f: ClusterFacts, marks: dict[str, CheckMark]) -> ClusterReview:
    c = f.cluster
    return ClusterReview(
        cluster=c.name,
        namespace=c.namespace,
        context=c.context,
        in_kubernetes=c.in_kubernetes,
        logical_backup=c.logical_backup,
        schedule=c.schedule,
        objects=len(f.window),
        marks=marks,
    )


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
    """The review signed off (who reviewed and why), archived as JSON and Markdown."""
    if not reviewer.strip():
        raise PgdeckError("a sign-off needs the reviewer's name")
    signed = replace(
        review, reviewer=reviewer.strip(), note=(note or "").strip() or None, signed_at=clock()
    )
    return archive_review(signed, archive, clock=clock)


def archive_review(
    review: Review, archive: ArchiveSpec | Archive, *, clock: Clock = system_clock
) -> Review:
    """The review's JSON and Markdown, each under a name of its own, and its audit entry:
    the reviewer's name is recorded beside the OS user the archive records, never
    instead of it. The review returned names them (``archived``); ``ArchiveError`` when
    any of it cannot be written."""
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
    archived = {"json": done.json_url, "markdown": done.markdown_url, "location": done.json}
    return replace(review, archived=archived)


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
    archived = {
        "json": opened.url(location),
        "markdown": opened.url(location.removesuffix(".json") + ".md"),
        "location": location,
    }
    return replace(review, archived=archived)
