"""A cluster's timeline: sizes over time, every backup, the coverage grid, the backup jobs."""

from __future__ import annotations

import queue
import threading

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Static, TabbedContent, TabPane

from services import health
from services.catalog import Catalog
from services.kube import LogStream
from services.models import Backup, ClusterSummary, JobRun
from services.text import safe_text
from tui import present
from tui.messages import (
    EncryptionKnown,
    ServiceFailed,
    TimelineLoaded,
    VerifyFinished,
    VerifyProgressed,
)
from widgets.cluster_table import health_text
from widgets.coverage_grid import CoverageGrid, GridDay
from widgets.fitting_table import FittingTable
from widgets.key_footer import KeyFooter
from widgets.size_sparkline import SizeSparkline

BACKUP_COLUMNS = (
    ("local", "Local time"),
    ("utc", "UTC"),
    ("age", "Age"),
    ("size", "Size"),
    ("change", "Change"),
    ("uid", "uid"),
    ("sse", "SSE"),
    ("note", "Note"),
)
JOB_COLUMNS = (
    ("name", "Job"),
    ("status", "Status"),
    ("started", "Started"),
    ("took", "Took"),
    ("reason", "Reason"),
)
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
        self.backups: list[Backup] = []
        self.jobs: list[JobRun] = []
        self._notes: dict[str, Text] = {}
        self._flags: dict[str, str] = {}
        self._following: str | None = None  # the job whose log is shown
        self._log_request = 0  # lines of an older request are dropped
        self._log_lines: queue.Queue[tuple[int, list[str] | None, str | None]] = queue.Queue()
        self._log_reader = _LogReader()
        self._spark_for: list[Backup] | None = None
        self._verifying: set[str] = set()
        self._leaving = threading.Event()

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._title(), id="title")
        yield SizeSparkline(id="spark")
        with TabbedContent(initial=self._initial_tab):
            with TabPane("Backups", id="backups-tab"):
                yield FittingTable(id="backups", cursor_type="row", zebra_stripes=True)
            with TabPane("Coverage", id="coverage-tab"):
                yield CoverageGrid(id="grid")
            with TabPane("Jobs", id="jobs-tab"), Vertical():
                yield Static("", id="cronjob")
                yield FittingTable(id="jobs", cursor_type="row")
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
            text.append_text(health_text(h.mark))
            text.append(f" {h.detail}", style="dim")
        return text

    def on_mount(self) -> None:
        self.sub_title = self.cluster.name
        table = self.query_one("#backups", DataTable)
        for key, label in BACKUP_COLUMNS:
            table.add_column(label, key=key)
        table.on_cursor_row = lambda _row: self._follow_cursor()
        jobs = self.query_one("#jobs", DataTable)
        for key, label in JOB_COLUMNS:
            jobs.add_column(label, key=key)
        self._log_timer = self.set_interval(0.1, self._drain_log)
        self.load()

    # --- loading ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="timeline", exit_on_error=False)
    def load(self) -> None:
        try:
            backups = self.catalog.backups(self.cluster)
            jobs = self.catalog.jobs(self.cluster)
        except Exception as exc:
            self.post_message(ServiceFailed("backups", str(exc)))
            return
        try:
            grid, caption = self._grid(backups)
        except Exception as exc:  # a schedule no one can run is shown, not fatal
            grid, caption = [], f"no grid: {exc}"
        oldest_first = list(reversed(backups))
        flags = health.size_outliers([b.size for b in oldest_first])
        self.post_message(
            TimelineLoaded(
                backups,
                jobs,
                grid=grid,
                caption=caption,
                flags={b.url: f for b, f in zip(oldest_first, flags, strict=True) if f},
            )
        )
        if not backups:
            return
        try:
            known = self.catalog.with_sse(backups)
        except Exception as exc:
            self.post_message(ServiceFailed("encryption", str(exc)))
            return
        self.post_message(EncryptionKnown({b.url: b.sse for b in known if b.sse is not None}))

    def on_timeline_loaded(self, message: TimelineLoaded) -> None:
        self.backups, self.jobs = message.backups, message.jobs
        self._flags = message.flags
        self._fill_backups()
        self.query_one(CoverageGrid).set_days(message.grid, message.caption)
        self._fill_jobs()
        n = len(self.backups)
        span = ""
        if n:
            age = present.age(self.backups[-1].time, self.catalog.clock())
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
        table = self.query_one("#backups", DataTable)
        if table.row_count:
            table.clear()
        now = self.catalog.clock()
        for i, b in enumerate(self.backups):
            older = self.backups[i + 1] if i + 1 < len(self.backups) else None
            change = ""
            if older and older.size:
                pct = (b.size - older.size) / older.size * 100
                change = f"{pct:+.1f}%" if abs(pct) >= 0.05 else "="
            flag = self._flags.get(b.url)
            note = self._notes.get(b.url) or (
                Text("✗ future-dated: never latest", style="bold red")
                if self.catalog.future_dated(b)
                else Text(f"▲ {flag}", style="bold yellow")
                if flag
                else Text("")
            )
            table.add_row(
                b.time.astimezone().strftime("%a %d %b %H:%M"),
                b.time.strftime("%H:%MZ"),
                present.age(b.time, now),
                Text(present.size(b.size), justify="right"),
                Text(change, justify="right", style="yellow" if flag else ""),
                Text(safe_text(b.uid[:8])),
                _sse_text(b.sse),
                note,
                key=b.url,
            )
        self._follow_cursor()

    def _grid(self, backups: list[Backup]) -> tuple[list[GridDay], str]:
        """The coverage grid's days (in the worker: a dense schedule costs a moment)."""
        c = self.cluster
        since = c.created if c.in_kubernetes and c.created else None
        if backups and (since is None or backups[-1].time > since):
            since = since or backups[-1].time
        days = health.coverage(
            c.schedule if c.logical_backup else None,
            [(b.time, b.size) for b in backups],
            self.catalog.clock(),
            since=since,
        )
        caption = f"UTC hours; schedule {c.schedule}" if c.schedule else "UTC hours"
        return [GridDay(d.day.strftime("%a %d %b"), d.cells) for d in days], caption

    def _fill_jobs(self) -> None:
        cj = self.cluster.cronjob
        now = self.catalog.clock()
        if cj is None:
            line = Text(
                "no backup CronJob" if self.cluster.in_kubernetes else "not in Kubernetes",
                style="dim",
            )
        else:
            line = Text(safe_text(f"CronJob {cj.namespace}/{cj.name} "), style="bold")
            line.append(safe_text(f"{cj.schedule}{' SUSPENDED' if cj.suspended else ''}; "))
            line.append(f"last scheduled {present.age(cj.last_schedule, now)}, ")
            line.append(f"last success {present.age(cj.last_successful, now)}")
            if cj.active:
                line.append(f"; {cj.active} running", style="cyan")
        self.query_one("#cronjob", Static).update(line)
        table = self.query_one("#jobs", DataTable)
        if table.row_count:
            table.clear()
        for j in self.jobs:
            took = ""
            if j.started and j.finished:
                took = present.duration((j.finished - j.started).total_seconds())
            table.add_row(
                Text(safe_text(j.name)),
                Text(safe_text(j.status), style=_STATUS_STYLE.get(j.status, "")),
                present.age(j.started, now),
                took,
                Text(safe_text(j.reason or "")),
                key=j.name,
            )
        if not self.jobs:
            self.query_one("#log", Log).write_line(
                "Kubernetes keeps no backup job of this cluster."
            )

    def on_encryption_known(self, message: EncryptionKnown) -> None:
        table = self.query_one("#backups", DataTable)
        self.backups = [
            b if b.url not in message.sse else _with_sse(b, message.sse[b.url])
            for b in self.backups
        ]
        for url, sse in message.sse.items():
            if url in table.rows:
                table.update_cell(url, "sse", _sse_text(sse), update_width=True)

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
        if event.data_table.id == "jobs" and event.row_key.value and self._jobs_shown():
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
        if job is None or not job.pods:
            self._log_reader.stop()  # the log shown before must not go on under this line
            self._log_request += 1
            self._following = name
            log.write_line(f"{safe_text(name)}: Kubernetes keeps no pod of this job, so no log.")
            return
        pod = job.pods[-1]
        how = "following" if follow else "log of"
        log.write_line(safe_text(f"--- {how} pod {pod.namespace}/{pod.name} ({pod.phase}) ---"))
        self._following = name
        self.read_log(name, pod.namespace, pod.name, follow)

    def read_log(self, job: str, namespace: str, pod: str, follow: bool) -> None:
        """Read a pod's log on a daemon thread: a followed log of a quiet pod can block
        for minutes, and must hold neither a worker nor the program's exit."""
        self._log_reader.stop()  # the previous reader ends now, even when blocked
        self._log_reader = reader = _LogReader()
        self._log_request += 1
        request = self._log_request
        lines_out = self._log_lines

        def run() -> None:
            batch: list[str] = []
            try:
                stream = self.catalog.read_log(self.cluster.context, namespace, pod, follow=follow)
                if not reader.attach(stream):
                    return
                for line in stream:
                    # Neutralized here, off the event loop: Textual's Log lets ESC and
                    # C1 controls through to the terminal (it replaces only \x00-\x14).
                    batch.append(safe_text(line))
                    if len(batch) >= 200 or follow:
                        lines_out.put((request, batch, None))
                        batch = []
            except Exception as exc:
                if not reader.stopped:
                    lines_out.put((request, batch, safe_text(str(exc))))
                return
            if reader.stopped:
                return
            lines_out.put((request, batch, None))
            lines_out.put((request, None, None))  # the end

        threading.Thread(target=run, name=f"log {pod}", daemon=True).start()

    def _drain_log(self) -> None:
        lines: list[str] = []
        end: str | None = None
        error: str | None = None
        while True:
            try:
                request, batch, problem = self._log_lines.get_nowait()
            except queue.Empty:
                break
            if request != self._log_request:
                continue  # a stale stream of a job no longer shown
            if batch is None:
                end = "--- end of log ---"
            else:
                lines.extend(batch)
            if problem:
                error = problem
        log = self.query_one("#log", Log)
        if lines:
            log.write_lines(lines)
        if error:
            log.write_line(f"[log unavailable: {error}]")
        if end:
            log.write_line(end)

    def on_unmount(self) -> None:
        self._log_reader.stop()
        self._leaving.set()

    # --- actions ----------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_restore(self) -> None:
        backup = self.selected_backup()
        if backup is None:
            self.notify("no backup to restore", severity="warning")
            return
        from tui.screens.restore import RestoreScreen

        self.app.push_screen(RestoreScreen(self.catalog, self.cluster, backup))

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

        try:
            store, key, url = self.catalog.resolve(backup.url)

            def progress(p: object) -> None:
                if self._leaving.is_set():
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
        table = self.query_one("#backups", DataTable)
        if url in table.rows:
            table.update_cell(url, "note", text, update_width=True)

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


class _LogReader:
    """One log request's reader thread, and how to stop it at once: ``stop`` closes the
    stream, which ends a read blocked on a quiet followed log."""

    def __init__(self) -> None:
        self.stopped = False
        self._stream: LogStream | None = None
        self._lock = threading.Lock()

    def attach(self, stream: LogStream) -> bool:
        """Keep ``stream`` to close; False (and closed) when stopped already."""
        with self._lock:
            self._stream = stream
            if self.stopped:
                stream.close()
                return False
        return True

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            if self._stream is not None:
                self._stream.close()
