"""The weekly review: every cluster against the checklist, the findings of the selected
cluster, the evidence of the selected finding; drill into the timeline, sign off, or open
an earlier review from the archive (read-only).

The review is made in a worker from a refreshed catalog (the app's state when it is a
refreshed one, else the app refreshes it); its progress, result and failure arrive as
messages.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, ProgressBar, Static
from textual.worker import get_current_worker

from services.archive import describe, open_archive, recover_quietly
from services.catalog import Catalog
from services.errors import PgdeckError
from services.marks import CheckMark, Severity
from services.review import (
    CHECK_NAMES,
    ClusterReview,
    Evidence,
    Finding,
    Review,
    list_reviews,
    load_review,
    run_review,
    sign_off,
)
from services.text import safe_text
from tui import glyphs
from tui.messages import (
    CatalogProgressed,
    ReviewLoaded,
    ReviewProgressed,
    ReviewSigned,
    ReviewsListed,
    ServiceFailed,
)
from tui.screens.review_dialogs import EarlierReviewsScreen, SignOff, SignOffScreen
from widgets.fitting_table import FittingTable
from widgets.folding_table import Column, FoldingTable
from widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from tui.app import PgdeckApp

# Short headers so that the checklist fits 80 columns.
CHECK_LABELS = {
    "missing_backup": "Runs",
    "job_failed": "Jobs",
    "size_anomaly": "Size",
    "unencrypted": "SSE",
    "retention": "Retention",
    "integrity": "Verify",
    "log_anomaly": "Logs",
}
STAGES = {
    "kubernetes": "asking Kubernetes",
    "storage": "listing storage",
    "done": "catalog refreshed",
    "backups": "reading backups",
    "encryption": "reading encryption",
    "logs": "reading job logs",
    "verify": "verifying newest backups",
}
DRILLABLE = ("object", "job", "pod", "log", "cronjob", "run")
# Narrow, a finding's words are cut to the width (whole in the line under the findings)
# rather than scrolled to; then the check's name folds.
FINDING_COLUMNS = (
    Column("severity", "Severity"),
    Column("check", "Check", fold=1),
    Column("detail", "Finding", squeeze=24),
)
EVIDENCE_COLUMNS = (
    Column("kind", "Evidence"),
    Column("ref", "Ref"),
    Column("detail", "Detail", squeeze=16, detail="{}"),
)


class _Cancelled(Exception):
    """A newer review replaced this one."""


def mark_text(mark: CheckMark) -> Text:
    return glyphs.CHECK[mark].text(sign_only=True, justify="center")


def severity_text(severity: Severity) -> Text:
    return glyphs.severity(severity).text()


def default_reviewer() -> str:
    try:
        return os.environ.get("PGDECK_USER") or getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return ""


class ReviewScreen(Screen[None]):
    AUTO_FOCUS = "#checklist"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("enter", "drill", "Open", id="drill", tooltip="Open the evidence in the timeline"),
        Binding("s", "sign_off", "Sign off", id="sign_off", tooltip="Sign off and archive"),
        Binding("o", "earlier", "Earlier", id="earlier", tooltip="Open an archived review"),
        Binding("ctrl+r", "rerun", "Re-run", id="rerun", tooltip="Refresh and review again"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.review: Review | None = None
        self.archived = False  # a review read back from the archive: read-only
        self.running = False
        self._clusters: dict[str, ClusterReview] = {}
        self._findings: list[Finding] = []

    @property
    def pgdeck(self) -> PgdeckApp:
        return self.app  # type: ignore[return-value]

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="title")
        with Horizontal(id="progress"):
            yield Static("starting the review ...", id="stage")
            yield ProgressBar(id="bar", show_eta=False)
        yield FittingTable(id="checklist", cursor_type="row")
        yield FoldingTable(FINDING_COLUMNS, id="findings", cursor_type="row")
        yield Static("", id="detail")  # the selected finding in full, wrapped
        yield FoldingTable(EVIDENCE_COLUMNS, id="evidence", cursor_type="row")
        yield Static("", id="evidence-folded")  # the selected evidence's detail, when cut
        yield Static("", id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "weekly review"
        checklist = self.query_one("#checklist", DataTable)
        checklist.add_column("Cluster", key="cluster")
        for check in CHECK_NAMES:
            checklist.add_column(CHECK_LABELS.get(check, check), key=check)
        self.action_rerun(refresh=False)

    # --- making the review ----------------------------------------------------------------
    def action_rerun(self, refresh: bool = True) -> None:
        self.running, self.archived, self.review = True, False, None
        self.sub_title = "weekly review"
        self._fill()  # nothing stale stays on screen while the new review is made
        self.query_one("#progress").display = True
        self.query_one("#stage", Static).update("starting the review ...")
        self.query_one("#bar", ProgressBar).update(total=None, progress=0)
        self._status("")
        self.refresh_bindings()
        self.make_review(refresh)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def make_review(self, refresh: bool) -> None:
        worker = get_current_worker()

        def say(stage: str, done: int, total: int) -> None:
            if worker.is_cancelled:
                raise _Cancelled
            self.post_message(ReviewProgressed(stage, done, total))

        try:
            state = self.pgdeck.catalog_state
            # A review needs a refreshed catalog: the cached one cannot say a source failed.
            # The app's refresh (the one under way, if any) makes it; its steps come as
            # CatalogProgressed.
            if refresh or not state.clusters or state.from_cache:
                state = self.app.call_from_thread(self.pgdeck.refreshed_catalog)
                if worker.is_cancelled:
                    return
            review = run_review(self.catalog, state=state, progress=say)
        except _Cancelled:
            return
        except Exception as exc:  # a worker must not take the screen down
            if not worker.is_cancelled:
                error = exc.message if isinstance(exc, PgdeckError) else str(exc)
                self.post_message(ServiceFailed("review", error))
            return
        if not worker.is_cancelled:
            self.post_message(ReviewLoaded(review, archived=False))

    def on_catalog_progressed(self, message: CatalogProgressed) -> None:
        if self.running:
            self.on_review_progressed(ReviewProgressed(message.stage, message.done, message.total))

    def on_review_progressed(self, message: ReviewProgressed) -> None:
        stage = STAGES.get(message.stage, message.stage)
        self.query_one("#stage", Static).update(f"{stage} {message.done}/{message.total}")
        self.query_one("#bar", ProgressBar).update(
            total=max(message.total, 1), progress=message.done
        )

    def on_review_loaded(self, message: ReviewLoaded) -> None:
        self.running = False
        self.review, self.archived = message.review, message.archived
        self.query_one("#progress").display = False
        review = message.review
        if message.archived:
            who = review.reviewer or "nobody"
            at = f" {review.signed_at:%d %b %H:%M}" if review.signed_at else ""
            self.sub_title = f"archived review, signed off by {who}{at}"
            note = f"note: {review.note}" if review.note else "no note"
            name = (review.archived or {}).get("json", "").rpartition("/")[2]
            self._status(f"read-only ({name}); {note}; ctrl+r reviews now")
        else:
            self._status("enter opens the evidence in the cluster's timeline; s signs off")
        self._fill()
        self.refresh_bindings()

    def _title(self) -> Text:
        review = self.review
        if review is None:
            return Text("")
        start, end = review.window_start.astimezone(UTC), review.window_end.astimezone(UTC)
        text = Text()
        if self.archived:
            text.append("ARCHIVED ", style="bold reverse")
            text.append(" ")
        text.append(f"{start:%d %b %H:%M} – {end:%d %b %H:%M} UTC", style="bold")
        c = review.counts()
        n = len(review.clusters)
        text.append(f"; {n} cluster{'' if n == 1 else 's'}: ")
        for s in (Severity.CRITICAL, Severity.WARNING):  # drawn when there are any
            text.append(f"{c[s]} {s}", style=glyphs.severity(s).style if c[s] else "")
            text.append(", ")
        text.append(f"{c[Severity.INFO]} info")
        if review.verify:
            text.append("; newest verified")
        return text

    def _fill(self) -> None:
        review = self.review
        self.query_one("#title", Static).update(self._title())
        table = self.query_one("#checklist", DataTable)
        if table.row_count:
            table.clear()
        self._clusters = {}
        for cr in review.clusters if review else ():
            key = "/".join((cr.context, cr.namespace, cr.cluster))
            self._clusters[key] = cr
            where = f"{cr.namespace}/{cr.cluster}" if cr.namespace else f"{cr.cluster} (storage)"
            table.add_row(
                Text(safe_text(where), style="" if cr.in_kubernetes else "dim"),
                *(mark_text(cr.marks.get(check, CheckMark.OK)) for check in CHECK_NAMES),
                key=key,
            )
        if review is not None and review.warnings:
            self.notify("; ".join(review.warnings), title="limited sources", markup=False)
        self._show_findings()

    # --- selection ----------------------------------------------------------------------
    def selected_cluster(self) -> ClusterReview | None:
        key = self.query_one("#checklist", FittingTable).selected_key()
        return self._clusters.get(key) if key is not None else None

    def selected_finding(self) -> Finding | None:
        table = self.query_one("#findings", DataTable)
        if not table.row_count or not self._findings:
            return None
        return self._findings[table.cursor_coordinate.row]

    def selected_evidence(self) -> Evidence | None:
        finding = self.selected_finding()
        table = self.query_one("#evidence", DataTable)
        if finding is None or not table.row_count or not finding.evidence:
            return None
        return finding.evidence[table.cursor_coordinate.row]

    def _show_findings(self) -> None:
        cr = self.selected_cluster()
        table = self.query_one("#findings", FoldingTable)
        table.clear_cells()
        found = [] if cr is None or self.review is None else self.review.for_cluster(cr)
        self._findings = sorted(
            found, key=lambda f: (-f.severity.rank, CHECK_NAMES.index(f.check), f.detail)
        )
        for f in self._findings:
            table.add_cells(
                str(len(table.rows)),
                {
                    "severity": severity_text(f.severity),
                    "check": f.check,
                    "detail": Text(safe_text(f.detail)),
                },
            )
        if cr is not None and not self._findings:
            table.add_cells(
                "0",
                {
                    "severity": mark_text(CheckMark.OK),
                    "check": "",
                    "detail": Text("nothing to report", style="dim"),
                },
            )
        self._show_evidence()

    def _show_evidence(self) -> None:
        finding = self.selected_finding()
        table = self.query_one("#evidence", FoldingTable)
        table.clear_cells()
        for n, e in enumerate(finding.evidence if finding else ()):
            # Refs and details quote keys, names and log lines (an archived review may
            # predate their neutralizing): as plain Text, never markup, controls escaped.
            table.add_cells(
                str(n),
                {
                    "kind": e.kind,
                    "ref": Text(safe_text(_short_ref(e))),
                    "detail": Text(safe_text(e.detail)),
                },
            )
        self._show_evidence_folded()
        detail = Text()
        if finding is not None:
            where = (
                f"{finding.namespace}/{finding.cluster}" if finding.namespace else finding.cluster
            )
            detail.append(f"{safe_text(where)} ", style="bold")
            detail.append(safe_text(finding.detail))
            if not finding.evidence:
                detail.append(" (no evidence to show)", style="dim")
        self.query_one("#detail", Static).update(detail)

    def _show_evidence_folded(self) -> None:
        """The selected evidence's detail in full under the table, when the table cuts it."""
        table = self.query_one("#evidence", FoldingTable)
        line = self.query_one("#evidence-folded", Static)
        line.display = bool(table.folded or table.squeezed)
        if line.display:
            line.update(table.folded_line(table.selected_key()))

    def on_folding_table_refolded(self, message: FoldingTable.Refolded) -> None:
        self._show_evidence_folded()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "checklist":
            self._show_findings()
        elif event.data_table.id == "findings":
            self._show_evidence()
        elif event.data_table.id == "evidence":
            self._show_evidence_folded()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "checklist":
            self.set_focus(self.query_one("#findings", DataTable))
        else:
            self.action_drill()

    # --- drilling in ----------------------------------------------------------------------
    def action_drill(self) -> None:
        finding = self.selected_finding()
        if finding is None:
            self.notify("no finding selected", severity="warning")
            return
        if self.focused is self.query_one("#evidence", DataTable):
            chosen = self.selected_evidence()
            evidence = chosen if chosen and chosen.kind in DRILLABLE else None
        else:  # the finding's first piece of evidence the timeline can show
            order = {kind: i for i, kind in enumerate(DRILLABLE)}
            drillable = [e for e in finding.evidence if e.kind in order]
            evidence = min(drillable, key=lambda e: order[e.kind], default=None)
        where = (finding.context, finding.namespace, finding.cluster)
        if evidence is None:
            self.pgdeck.action_open_cluster(*where)
        elif evidence.kind == "object":
            self.pgdeck.action_open_cluster(*where, select_url=evidence.ref)
        elif evidence.kind == "run":
            self.pgdeck.action_open_cluster(*where, tab="coverage-tab")
        elif evidence.kind == "cronjob":
            self.pgdeck.action_open_cluster(*where, tab="jobs-tab")
        else:  # a job, or its pod or log
            self.pgdeck.action_open_cluster(*where, select_job=evidence.ref)

    # --- sign-off -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "sign_off":
            return None if self.review is None or self.archived or self.signed else True
        return True

    @property
    def signed(self) -> bool:
        return self.review is not None and self.review.signed_at is not None

    def action_sign_off(self) -> None:
        review = self.review
        if review is None:
            self.notify("the review is not made yet", severity="warning")
            return
        if self.archived or review.signed_at is not None:
            self.notify(
                f"this review was signed off by {review.reviewer}; ctrl+r reviews now",
                severity="warning",
                markup=False,
            )
            return
        c = review.counts()
        n = len(review.clusters)
        summary = (
            f"{n} cluster{'' if n == 1 else 's'}: {c['critical']} critical, {c['warning']} "
            f"warning, {c['info']} info. Archived under {describe(self.catalog.config.archive)}."
        )

        def answer(result: SignOff | None) -> None:
            if result is not None:
                self._status(f"signing off as {result.reviewer} ...")
                self.sign(review, result.reviewer, result.note)

        self.app.push_screen(SignOffScreen(default_reviewer(), summary), answer)

    @work(thread=True, exclusive=True, group="sign", exit_on_error=False)
    def sign(self, review: Review, reviewer: str, note: str) -> None:
        try:
            archive = open_archive(self.catalog.config, self.catalog.clock)
            archive.recover_interrupted()
            signed = sign_off(review, reviewer, note, archive, clock=self.catalog.clock)
        except PgdeckError as exc:
            self.post_message(ServiceFailed("sign-off", exc.message))
            return
        except OSError as exc:
            self.post_message(ServiceFailed("sign-off", f"cannot write the archive: {exc}"))
            return
        self.post_message(ReviewSigned(signed, review))

    def on_review_signed(self, message: ReviewSigned) -> None:
        review = message.review
        if self.review is message.unsigned:
            self.review = review
        paths = review.archived or {}
        at = f"{review.signed_at:%H:%M} UTC" if review.signed_at else ""
        self.sub_title = f"weekly review, signed off by {review.reviewer} {at}".rstrip()
        folder, _, json_name = paths.get("json", "").rpartition("/")
        md_name = paths.get("markdown", "").rpartition("/")[2]
        self._status(f"signed off; archived in {folder}/ as {json_name} and {md_name}")
        self.notify(
            f"{paths.get('json')}\n{paths.get('markdown')}",
            title=f"review signed off by {review.reviewer}",
            markup=False,
        )
        self.refresh_bindings()

    # --- earlier reviews ------------------------------------------------------------------
    def action_earlier(self) -> None:
        self.list_earlier()

    @work(thread=True, exclusive=True, group="archive", exit_on_error=False)
    def list_earlier(self) -> None:
        try:
            archive = open_archive(self.catalog.config, self.catalog.clock)
            recover_quietly(archive)
            reviews = list_reviews(archive)
        except PgdeckError as exc:
            self.post_message(ServiceFailed("archive", f"cannot read the archive: {exc}"))
            return
        self.post_message(ReviewsListed(reviews))

    def on_reviews_listed(self, message: ReviewsListed) -> None:
        def chosen(location: str | None) -> None:
            if location:
                self._status(f"opening {location} ...")
                self.open_archived(location)

        where = describe(self.catalog.config.archive)
        self.app.push_screen(EarlierReviewsScreen(message.reviews, where), chosen)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def open_archived(self, location: str) -> None:
        try:
            review = load_review(open_archive(self.catalog.config), location)
        except PgdeckError as exc:
            self.post_message(ServiceFailed("archive", exc.message))
            return
        self.post_message(ReviewLoaded(review, archived=True))

    # --- failures ---------------------------------------------------------------------------
    def on_service_failed(self, message: ServiceFailed) -> None:
        if message.where == "review":
            self.running = False
            self.query_one("#progress").display = False
            error = message.error
            if not error.startswith("the review"):
                error = f"no review: {error}"
            self.query_one("#title", Static).update(Text(f"✗ {safe_text(error)}", style="bold red"))
            self._status("fix the source, then ctrl+r reviews again")
            self.refresh_bindings()
        else:
            self._status(f"{message.where} failed: {message.error}")
        self.notify(message.error, title=f"{message.where} failed", severity="error", markup=False)

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(Text(safe_text(text)))


def _short_ref(e: Evidence) -> str:
    """An object's time instead of its long URL (the timeline shows the URL), a run's time
    without seconds; others as they are."""
    if e.kind == "run":
        return e.ref.replace("T", " ").replace(":00Z", "Z")
    if e.kind != "object":
        return e.ref
    name = e.ref.rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    if stem.isdigit():
        return f"{datetime.fromtimestamp(int(stem), UTC):%Y-%m-%d %H:%MZ}"
    return name
