"""A cluster's timeline: sizes over time, every backup, the coverage grid, the backup jobs.

The screen draws what ``services.timeline.load_timeline`` gathers (in a worker), with
the encryption the cache knows; what it does not know yet (HEADs), a job's log and a
verify arrive later, as messages, and so does what the app's encryption check found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Static, TabbedContent, TabPane
from textual.worker import Worker, get_current_worker

from services.catalog import Catalog
from services.kube import LogStream
from services.marks import CoverageCell
from services.models import Backup, ClusterSummary, JobRun
from services.schedule import next_backup_run
from services.text import safe_text
from services.timeline import Timeline, load_timeline
from tui import glyphs, present
from tui.messages import (
    EncryptionChecked,
    EncryptionKnown,
    JobLogRead,
    ServiceFailed,
    TimelineLoaded,
    VerifyFinished,
    VerifyProgressed,
)
from widgets.coverage_grid import CoverageGrid, GridDay
from widgets.fitting_table import FittingTable
from widgets.folding_table import Column, FoldingTable
from widgets.key_footer import KeyFooter
from widgets.size_sparkline import SizeSparkline

if TYPE_CHECKING:
    from tui.app import PgdeckApp

# What matters at 3 a.m. stays: when, how old, how big, encrypted or not, and the note
# (verified, damaged, unusual); narrow, the uid, UTC time and change fold into a line.
BACKUP_COLUMNS = (
    Column("local", "Local time"),
    Column("utc", "UTC", fold=2, detail="{}"),
    Column("age", "Age"),
    Column("size", "Size"),
    Column("change", "Change", fold=3, detail="change {}"),
    Column("uid", "uid", fold=1, detail="uid {}"),
    Column("sse", "SSE"),
    Column("note", "Note", squeeze=12, detail="{}"),
)
JOB_COLUMNS = (
    Column("name", "Job"),
    Column("status", "Status"),
    Column("started", "Started", detail="started {}"),
    Column("took", "Took", fold=1, detail="took {}"),
    Column("reason", "Reason", squeeze=10, detail="{}"),
)
UNUSUAL = glyphs.COVERAGE[CoverageCell.UNUSUAL]  # a backup of an unusual size
_STATUS_STYLE = {"failed": "bold red", "succeeded": "green", "running": "cyan"}


class TimelineScreen(Screen[None]):
    AUTO_FOCUS = "#backups"
    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="back"),
        Binding("r", "restore", "Restore", id="restore", tooltip="Restore the selected backup"),
        Binding(
            "i", "verify", "Verify", id="verify", tooltip="Check the selected backup end to end"
        ),
        Binding("b", "tab('backups-tab')", "Backups", id="tab_backups"),
        Binding("g", "tab('coverage-tab')", "Coverage", id="tab_coverage"),
        Binding("j", "tab('jobs-tab')", "Jobs", id="tab_jobs"),
        Binding(
            "l", "follow_log", "Follow log", id="follow", tooltip="Follow the selected job's log"
        ),
    ]

    def __init__(
        self,
        catalog: Catalog,
        summary: ClusterSummary,
        *,
        select_url: str | None = None,
        select_job: str | None = None,
        tab: str | None = None,
    ) -> None:
        """``select_url`` puts the cursor on that backup once loaded; ``select_job`` (a job's
        name or one of its pods') opens the Jobs tab on it; ``tab`` is the tab shown first."""
        super().__init__()
        self.catalog = catalog
        self.summary = summary
        self.cluster = summary.cluster
        self.select_url = select_url
        self.select_job = select_job
        self._initial_tab = tab or ("jobs-tab" if select_job else "backups-tab")
        self.timeline: Timeline | None = None
        self.backups: list[Backup] = []
        self.jobs: list[JobRun] = []
        self._notes: dict[str, Text] = {}
        self._flags: Mapping[str, str] = {}
        self._following: str | None = None  # the job whose log is shown
        self._log_request = 0  # lines of an older request are dropped
        self._log_worker: Worker[None] | None = None
        # Each log reader's stream, for closing it from here: a read blocked on a quiet
        # followed pod ends only when its stream is closed.
        self._log_streams: dict[Worker[None], LogStream] = {}
        self._spark_for: list[Backup] | None = None
        self._verifying: set[str] = set()

    @property
    def pgdeck(self) -> PgdeckApp:
        return self.app  # type: ignore[return-value]

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._title(), id="title")
        yield SizeSparkline(id="spark")
        with TabbedContent(initial=self._initial_tab):
            with TabPane("Backups", id="backups-tab"), Vertical():
                yield FoldingTable(
                    BACKUP_COLUMNS, id="backups", cursor_type="row", zebra_stripes=True
                )
                yield Static("", id="folded")  # what a narrow table folded away
            with TabPane("Coverage", id="coverage-tab"):
                yield CoverageGrid(glyphs.COVERAGE, glyphs.COVERAGE_LEGEND, id="grid")
            with TabPane("Jobs", id="jobs-tab"), Vertical():
                yield Static("", id="cronjob")
                yield FoldingTable(JOB_COLUMNS, id="jobs", cursor_type="row")
                yield Static("", id="job-folded")  # what a narrow jobs table folded away
                yield Log(id="log", max_lines=10_000, highlight=False)
        yield Static("loading backups ...", id="status")
        yield KeyFooter()

    def _title(self) -> Text:
        c = self.cluster
        where = (
            f"{c.context}/{c.namespace}/{c.name}" if c.in_kubernetes else f"{c.name} (storage only)"
        )
        text = Text(safe_text(where), style="bold")
        if c.logical_backup:
            text.append(safe_text(f"  backups {c.schedule or '?'}"))
            if c.retention:
                text.append(safe_text(f", kept {c.retention}"))
        elif c.in_kubernetes:
            text.append("  logical backups off", style="dim")
        h = self.summary.health
        if h is not None:
            text.append("  ")
            text.append_text(glyphs.health(h).text())
            text.append(f" {h.detail}", style="dim")
        return text

    def on_mount(self) -> None:
        self.sub_title = self.cluster.name
        table = self.query_one("#backups", FoldingTable)
        table.on_cursor_row = lambda _row: self._follow_cursor()
        self.load()

    # --- loading ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="timeline", exit_on_error=False)
    def load(self) -> None:
        worker = get_current_worker()
        try:
            timeline = load_timeline(self.catalog, self.cluster)
        except Exception as exc:
            self.post_message(ServiceFailed("backups", str(exc)))
            return
        self.post_message(TimelineLoaded(timeline))
        # The cache's answers are in the timeline already: only the others are HEADed.
        unknown = [b for b in timeline.backups if b.sse is None]
        if not unknown or worker.is_cancelled:
            return
        try:
            known = self.catalog.with_sse(unknown)
        except Exception as exc:
            self.post_message(ServiceFailed("encryption", str(exc)))
            return
        self.post_message(EncryptionKnown({b.url: b.sse for b in known if b.sse is not None}))

    def on_encryption_checked(self, message: EncryptionChecked) -> None:
        unknown = [b for b in self.backups if b.sse is None]
        if unknown:
            self.read_cached_sse(unknown)

    @work(thread=True, exclusive=True, group="sse-cached", exit_on_error=False)
    def read_cached_sse(self, backups: list[Backup]) -> None:
        """What the app's encryption check told of ``backups``, from the cache (no HEAD)."""
        try:
            known = self.catalog.cached_sse(backups)
        except Exception as exc:
            self.post_message(ServiceFailed("encryption", str(exc)))
            return
        found = {b.url: b.sse for b in known if b.sse is not None}
        if found:
            self.post_message(EncryptionKnown(found))

    def on_timeline_loaded(self, message: TimelineLoaded) -> None:
        t = self.timeline = message.timeline
        self.backups, self.jobs = list(t.backups), list(t.jobs)
        self._flags = t.flags
        self._fill_backups()
        days = [GridDay(d.day.strftime("%a %d %b"), d.cells) for d in t.coverage]
        self.query_one(CoverageGrid).set_days(days, t.caption)
        self._fill_jobs()
        n = len(self.backups)
        span = ""
        if n:
            age = present.age(self.backups[-1].time, t.now)
            span = f", {age.removesuffix(' ago')} of history"
        jobs = f"{len(self.jobs)} job{'' if len(self.jobs) == 1 else 's'}"
        self._status(f"{n} backups{span}; {jobs} kept by Kubernetes")
        self._apply_selection()

    def _apply_selection(self) -> None:
        """The backup or job the screen was opened for (from a review's evidence), once."""
        url, wanted = self.select_url, self.select_job
        self.select_url = self.select_job = None
        if url is not None:
            table = self.query_one("#backups", DataTable)
            if url in table.rows:
                table.move_cursor(row=table.get_row_index(url))
                self._follow_cursor()
            else:
                self.notify(f"{url} is no longer in storage", severity="warning", markup=False)
        if wanted is not None:
            job = next(
                (j for j in self.jobs if wanted == j.name or any(p.name == wanted for p in j.pods)),
                None,
            )
            if job is None:
                self.notify(
                    f"Kubernetes no longer keeps {wanted}", severity="warning", markup=False
                )
                return
            self.query_one(TabbedContent).active = "jobs-tab"
            table = self.query_one("#jobs", DataTable)
            row = table.get_row_index(job.name)
            self.set_focus(table)
            if table.cursor_row == row:
                self._show_log(job.name, follow=False)
            else:  # the highlight shows its log
                table.move_cursor(row=row)

    def _fill_backups(self) -> None:
        table = self.query_one("#backups", FoldingTable)
        table.clear_cells()
        assert self.timeline is not None
        now, future = self.timeline.now, self.timeline.future
        for i, b in enumerate(self.backups):
            older = self.backups[i + 1] if i + 1 < len(self.backups) else None
            change = ""
            if older and older.size:
                pct = (b.size - older.size) / older.size * 100
                change = f"{pct:+.1f}%" if abs(pct) >= 0.05 else "="
            flag = self._flags.get(b.url)
            note = self._notes.get(b.url) or (
                Text("✗ future-dated: never latest", style="bold red")
                if b.url in future
                else Text(f"{UNUSUAL.sign} {flag}", style=UNUSUAL.style)
                if flag
                else Text("")
            )
            table.add_cells(
                b.url,
                {
                    "local": b.time.astimezone().strftime("%a %d %b %H:%M"),
                    "utc": b.time.strftime("%H:%MZ"),
                    "age": present.age(b.time, now),
                    "size": Text(present.size(b.size), justify="right"),
                    "change": Text(change, justify="right", style="yellow" if flag else ""),
                    "uid": Text(safe_text(b.uid[:8])),
                    "sse": _sse_text(b.sse),
                    "note": note,
                },
            )
        self._follow_cursor()

    def _fill_jobs(self) -> None:
        cj = self.cluster.cronjob
        now = self.timeline.now if self.timeline else self.catalog.clock()
        if cj is None:
            line = Text(
                "no backup CronJob" if self.cluster.in_kubernetes else "not in Kubernetes",
                style="dim",
            )
        else:
            line = Text(safe_text(f"CronJob {cj.namespace}/{cj.name} "), style="bold")
            line.append(safe_text(f"{cj.schedule}{' SUSPENDED' if cj.suspended else ''}; "))
            line.append(f"last scheduled {present.age(cj.last_schedule, now)}, ")
            line.append(f"last success {present.age(cj.last_successful, now)}; ")
            line.append(present.next_run(next_backup_run(self.cluster, now), now))
            if cj.active:
                line.append(f"; {cj.active} running", style="cyan")
        self.query_one("#cronjob", Static).update(line)
        table = self.query_one("#jobs", FoldingTable)
        table.clear_cells()
        for j in self.jobs:
            took = ""
            if j.started and j.finished:
                took = present.duration((j.finished - j.started).total_seconds())
            table.add_cells(
                j.name,
                {
                    "name": Text(safe_text(j.name)),
                    "status": Text(safe_text(j.status), style=_STATUS_STYLE.get(j.status, "")),
                    "started": present.age(j.started, now),
                    "took": took,
                    "reason": Text(safe_text(j.reason or "")),
                },
            )
        self._show_job_folded()
        if not self.jobs:
            self.query_one("#log", Log).write_line(
                "Kubernetes keeps no backup job of this cluster."
            )

    def on_encryption_known(self, message: EncryptionKnown) -> None:
        table = self.query_one("#backups", FoldingTable)
        self.backups = [
            b if b.url not in message.sse else _with_sse(b, message.sse[b.url])
            for b in self.backups
        ]
        for url, sse in message.sse.items():
            table.set_cell(url, "sse", _sse_text(sse))
        self._show_folded()

    def on_service_failed(self, message: ServiceFailed) -> None:
        if message.where == "log":  # shown where the log would be
            self.query_one("#log", Log).write_line(f"[log unavailable: {safe_text(message.error)}]")
            return
        self.notify(message.error, title=f"{message.where} failed", severity="error", markup=False)
        self._status(f"{message.where}: {message.error}")

    # --- selection ------------------------------------------------------------------------
    def selected_backup(self) -> Backup | None:
        url = self.query_one("#backups", FittingTable).selected_key()
        return next((b for b in self.backups if b.url == url), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # The backups table moves the sparkline itself, in the cursor's own frame.
        if event.data_table.id == "jobs":
            self._show_job_folded()
            if event.row_key.value and self._jobs_shown():
                self._show_log(event.row_key.value, follow=False)

    def _jobs_shown(self) -> bool:
        return self.query_one(TabbedContent).active == "jobs-tab"

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # A log is read when its panel is looked at, not for every cursor move elsewhere.
        if event.pane.id == "jobs-tab" and self._following is None:
            job = self._selected_job()
            if job is not None:
                self._show_log(job.name, follow=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "backups":
            self.action_restore()

    def _follow_cursor(self) -> None:
        table = self.query_one("#backups", DataTable)
        n = len(self.backups)
        row = table.cursor_coordinate.row if table.row_count else None
        cursor = None if row is None else n - 1 - row
        spark = self.query_one(SizeSparkline)
        if self._spark_for is not self.backups:  # new values only when the backups change
            self._spark_for = self.backups
            spark.set_values([b.size for b in reversed(self.backups)], cursor)
        else:
            spark.cursor = cursor
        self._show_folded()

    def on_folding_table_refolded(self, message: FoldingTable.Refolded) -> None:
        self._show_folded()
        self._show_job_folded()

    def _show_folded(self) -> None:
        """The selected backup's folded cells on a line under the table, when any fold."""
        table = self.query_one("#backups", FoldingTable)
        folded = self.query_one("#folded", Static)
        # Kept while anything folds, even empty for a row: the table does not jump.
        folded.display = bool(table.folded or table.squeezed)
        if folded.display:  # nothing to say, nothing to lay out, on each key when wide
            folded.update(table.folded_line(table.selected_key(), sep=", "))

    def _show_job_folded(self) -> None:
        """The selected job's folded cells (its reason, cut in the table) under the table."""
        table = self.query_one("#jobs", FoldingTable)
        folded = self.query_one("#job-folded", Static)
        folded.display = bool(table.folded or table.squeezed)
        if folded.display:
            folded.update(table.folded_line(table.selected_key(), sep=", "))

    # --- logs -------------------------------------------------------------------------------
    def _selected_job(self) -> JobRun | None:
        name = self.query_one("#jobs", FittingTable).selected_key()
        return next((j for j in self.jobs if j.name == name), None)

    def action_follow_log(self) -> None:
        job = self._selected_job()
        self.query_one(TabbedContent).active = "jobs-tab"
        if job is None:
            self.notify("no backup job is kept to follow", severity="warning")
            return
        self._show_log(job.name, follow=True)

    def _show_log(self, name: str, *, follow: bool) -> None:
        job = next((j for j in self.jobs if j.name == name), None)
        log = self.query_one("#log", Log)
        log.clear()
        self._stop_log()  # the log shown before must not go on under this one
        self._log_request += 1
        self._following = name
        if job is None or not job.pods:
            log.write_line(f"{safe_text(name)}: Kubernetes keeps no pod of this job, so no log.")
            return
        pod = job.pods[-1]
        how = "following" if follow else "log of"
        log.write_line(safe_text(f"--- {how} pod {pod.namespace}/{pod.name} ({pod.phase}) ---"))
        self._log_worker = self.read_log(self._log_request, pod.namespace, pod.name, follow)

    @work(thread=True, exclusive=True, group="log", exit_on_error=False)
    def read_log(self, request: int, namespace: str, pod: str, follow: bool) -> None:
        """Read a pod's log into ``JobLogRead`` messages. A followed log of a quiet pod
        blocks in its read for minutes: ``_stop_log`` closes the stream to end it."""
        worker = get_current_worker()
        try:
            stream = self.catalog.read_log(self.cluster.context, namespace, pod, follow=follow)
        except Exception as exc:
            if not worker.is_cancelled:
                self.post_message(JobLogRead(request, [], error=safe_text(str(exc))))
            return
        self._log_streams[worker] = stream
        batch: list[str] = []
        try:
            # Stopped while the stream was being opened: ``_stop_log`` did not see it.
            if worker.is_cancelled:
                stream.close()
                return
            for line in stream:
                if worker.is_cancelled:
                    return
                # Neutralized here, off the event loop: Textual's Log lets ESC and C1
                # controls through to the terminal (it replaces only \x00-\x14).
                batch.append(safe_text(line))
                if len(batch) >= 200 or follow:
                    self.post_message(JobLogRead(request, batch))
                    batch = []
        except Exception as exc:
            if not worker.is_cancelled:
                self.post_message(JobLogRead(request, batch, error=safe_text(str(exc))))
            return
        finally:
            self._log_streams.pop(worker, None)
        if not worker.is_cancelled:
            self.post_message(JobLogRead(request, batch, ended=True))

    def _stop_log(self) -> None:
        """End the log reading under way, even one blocked on a quiet followed pod."""
        if self._log_worker is not None:
            self._log_worker.cancel()
        for worker, stream in self._log_streams.copy().items():
            worker.cancel()
            stream.close()

    def on_job_log_read(self, message: JobLogRead) -> None:
        if message.request != self._log_request:
            return  # a reading of a log no longer shown
        log = self.query_one("#log", Log)
        if message.lines:
            log.write_lines(message.lines)
        if message.error:
            log.write_line(f"[log unavailable: {message.error}]")
        if message.ended:
            log.write_line("--- end of log ---")

    def on_unmount(self) -> None:
        self._stop_log()

    # --- actions ----------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_restore(self) -> None:
        backup = self.selected_backup()
        if backup is None:
            self.notify("no backup to restore", severity="warning")
            return
        self.pgdeck.action_open_restore(self.cluster, backup)

    def action_verify(self) -> None:
        backup = self.selected_backup()
        if backup is None:
            self.notify("no backup to verify", severity="warning")
            return
        if backup.url in self._verifying:
            self.notify("this backup is being verified already")
            return
        self._verifying.add(backup.url)
        self._note(backup.url, Text("verifying ...", style="cyan"))
        self.verify(backup)

    @work(thread=True, group="verify", exit_on_error=False)
    def verify(self, backup: Backup) -> None:
        from services.verify import verify_backup

        worker = get_current_worker()
        try:
            store, key, url = self.catalog.resolve(backup.url)

            def progress(p: object) -> None:
                if worker.is_cancelled:
                    raise _Left()  # the screen is gone: stop reading the backup
                self.post_message(
                    VerifyProgressed(backup.url, p.compressed_read, p.compressed_total)  # type: ignore[attr-defined]
                )

            result = verify_backup(store, key, progress=progress)
        except _Left:
            return
        except Exception as exc:
            self.post_message(VerifyFinished(backup.url, False, str(exc)))
            return
        s = result.summary
        if result.ok:
            detail = (
                f"intact: {len(s.databases)} databases, {len(s.tables)} tables, "
                f"{sum(t.rows for t in s.tables):,} rows, {present.size(s.bytes)} of SQL"
            )
        else:
            detail = result.problem or "damaged"
        self.post_message(VerifyFinished(backup.url, result.ok, detail))

    def on_verify_progressed(self, message: VerifyProgressed) -> None:
        if message.total:
            pct = int(100 * message.read / message.total)
            self._note(message.url, Text(f"verifying {pct}%", style="cyan"))

    def on_verify_finished(self, message: VerifyFinished) -> None:
        self._verifying.discard(message.url)
        if message.ok:
            self._note(message.url, Text("✓ intact", style="green"))
            self.notify(message.detail, title="backup verified", markup=False)
        else:
            self._note(message.url, Text("✗ DAMAGED", style="bold red"))
            self.notify(message.detail, title="backup damaged", severity="error", markup=False)
        self._status(message.detail)

    def _note(self, url: str, text: Text) -> None:
        self._notes[url] = text
        self.query_one("#backups", FoldingTable).set_cell(url, "note", text)
        self._show_folded()

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(Text(safe_text(text)))


class _Left(Exception):
    """The screen was left while a worker of it still ran."""


def _sse_text(sse: str | None) -> Text:
    if sse is None:
        return Text("?", style="dim")
    if sse == "":
        return Text("✗ none", style="bold red")
    return Text(sse, style="green")


def _with_sse(b: Backup, sse: str) -> Backup:
    import dataclasses

    return dataclasses.replace(b, sse=sse)
