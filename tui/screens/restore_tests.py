"""Restore tests (``t`` on the clusters screen): each cluster's last test, its age and mark,
its time-to-restore per quarter against its objective; the latest report opens as Markdown.

The archive is read in a worker (``services.restore_test_history``); clusters of the
catalog that have backups but no test are listed too, as ``? never``. Every text comes from
archived documents: cells are ``Text``, never markup, and escaped by the service.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Markdown, Static
from textual.worker import get_current_worker

from services.catalog import Catalog
from services.errors import PgdeckError, unexpected
from services.marks import RestoreTestMark
from services.models import Cluster
from services.restore_events import RestoreEvent, RestoreProgress, VerifyProgress
from services.restore_test_history import ClusterTests, PastTest, by_cluster, find, read_tests
from services.text import safe_text
from tui import glyphs, present
from tui.messages import (
    ArchiveReportRead,
    RestoreProgressed,
    RestoreTestFinished,
    RestoreTestsRead,
    ServiceFailed,
)
from tui.restore_view import event_line, progress_text
from tui.screens.confirm import ConfirmScreen
from widgets.fitting_table import FittingTable
from widgets.key_footer import KeyFooter
from widgets.sparkline_text import MISSING, OVER, sparkline_against

if TYPE_CHECKING:
    from services.restore_test import TestsCancel

COLUMNS = (
    ("cluster", "Cluster"),
    ("mark", "Test"),
    ("last", "Last"),
    ("quarters", "Quarters"),
    ("ttr", "TTR / objective"),
)
LEGEND = f"bars up to the objective, {OVER} over it, {MISSING} none"


@dataclass(frozen=True, slots=True)
class Row:
    """A row of the screen: a cluster of the catalog, of the archive, or of both."""

    key: str
    label: str  # namespace/name
    cluster: Cluster | None  # of the catalog: it can be tested from here
    history: ClusterTests | None


def rows_for(
    histories: list[ClusterTests], clusters: list[Cluster], backups: set[str]
) -> list[Row]:
    """A row per tested cluster, and per cluster of the catalog with backups (``backups``:
    their keys) never tested; sorted by name."""
    out: dict[str, Row] = {}
    named: dict[str, list[ClusterTests]] = {}
    for h in histories:
        named.setdefault(h.cluster, []).append(h)
    matched: set[int] = set()
    for c in clusters:
        key = "/".join(c.key)
        h = find(named.get(c.name, ()), *c.key, c.uid)
        if h is None and key not in backups:
            continue
        if h is not None:
            matched.add(id(h))
        label = safe_text(f"{c.namespace}/{c.name}" if c.namespace else c.name)
        out[key] = Row(key, label, c, h)
    for h in histories:
        if id(h) not in matched:
            key = "archive:" + "/".join((h.context, h.namespace, h.cluster))
            label = f"{h.namespace}/{h.cluster}" if h.namespace else h.cluster
            out[key] = Row(key, label, None, h)
    return sorted(out.values(), key=lambda r: (r.label, r.key))


def cells(row: Row, now: datetime) -> list[Text]:
    h = row.history
    if h is None:
        mark = glyphs.restore_test(RestoreTestMark.NEVER)
        return [Text(row.label), mark.text(), Text("-"), Text(""), Text("-")]
    last = h.last
    result = glyphs.test_result(last.result)
    when = present.age(last.when, now) if last.when else "-"
    return [
        Text(row.label),
        glyphs.restore_test(h.mark).text(),
        Text.assemble((result.label, result.style), f" {when}"),
        sparkline_against([q.seconds for q in h.series], h.objective_seconds),
        Text(present.against(last.ttr_seconds, last.objective_seconds or h.objective_seconds)),
    ]


def detail(row: Row, now: datetime) -> Text:
    """The selected cluster in full: its last test and each quarter's time-to-restore."""
    h = row.history
    text = Text(row.label, style="bold")
    if h is None:
        text.append(": never tested; r runs a test of its latest backup")
        return text
    last: PastTest = h.last
    result = glyphs.test_result(last.result)
    text.append(": ")
    text.append(result.label, style=result.style)
    text.append(f" {present.minute(last.when)} UTC ({present.age(last.when, now)})")
    text.append(f", {len(h.tests)} test(s)")
    objective = h.objective_seconds
    goal = "none set" if objective is None else present.duration(objective)
    text.append(f"\nTTR by quarter (objective {goal}):")
    measured = [q for q in h.series if q.seconds is not None]
    for q in measured:
        over = objective is not None and q.seconds is not None and q.seconds > objective
        shown = present.duration(q.seconds or 0) + (OVER if over else "")
        text.append(f"  {q.quarter} ")
        text.append(shown, style="bold red" if over else "")
    if not measured:
        text.append(" none measured in two years", style="dim")
    for reason in last.reasons[:3]:
        text.append(f"\nwhy: {reason}", style="red")
    text.append(f"\nstaging {last.staging or '-'}: {last.teardown or '-'}", style="dim")
    if last.backup_time or last.backup_url:
        text.append(
            f"\nbackup {present.minute(last.backup_time)} UTC {last.backup_url or '-'}", style="dim"
        )
    return text


class RestoreTestsScreen(Screen[None]):
    AUTO_FOCUS = "#tests"
    BINDINGS = [
        Binding("escape", "leave", "Back", id="back", tooltip="Back (cancel a running test)"),
        Binding("enter", "open", "Report", id="open", tooltip="The latest test's report"),
        Binding(
            "r",
            "run_test",
            "Run test",
            id="run_test",
            tooltip="Test the selected cluster's latest backup in a throwaway staging cluster",
        ),
        Binding("ctrl+r", "reload", "Reload", id="reload", tooltip="Read the archive again"),
        # While a test runs, Ctrl-C asks to cancel it, as Escape does (not the app's copy).
        Binding("ctrl+c", "cancel_test", "Cancel test", id="cancel_test", show=False),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.rows: dict[str, Row] = {}
        self.shown: str | None = None  # the report whose Markdown is on screen
        self.running: str | None = None  # the cluster whose test runs
        self.last_outcome: str | None = None  # the result of the last test run here
        self.exit_when_done = False  # quit or a signal came during the run
        self._cancel: TestsCancel | None = None

    @property
    def now(self) -> datetime:
        return self.catalog.clock()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the archive ...", id="status")
        yield FittingTable(id="tests", cursor_type="row")
        yield Static("", id="detail")
        with VerticalScroll(id="viewer"):
            yield Markdown("", id="report")
        yield Log(id="run-log", max_lines=20_000, highlight=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "restore tests"
        table = self.query_one("#tests", FittingTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.on_cursor_row = lambda _: self._show_detail()
        self.query_one("#run-log", Log).display = False
        self.load()

    def action_reload(self) -> None:
        self.query_one("#status", Static).update("reading the archive ...")
        self.load()

    @work(thread=True, exclusive=True, group="restore-tests", exit_on_error=False)
    def load(self) -> None:
        from services.archive import open_archive, recover_quietly

        try:
            archive = open_archive(self.catalog.config, self.catalog.clock)
            recover_quietly(archive)  # a test whose process is gone reads as interrupted
            histories = by_cluster(read_tests(archive), self.catalog.clock())
        except PgdeckError as exc:
            self.post_message(ServiceFailed("archive", exc.message))
            return
        except Exception as exc:  # never leave "reading the archive ..." standing
            self.post_message(ServiceFailed("archive", unexpected(exc)))
            return
        self.post_message(RestoreTestsRead(histories, archive.where))

    def on_restore_tests_read(self, message: RestoreTestsRead) -> None:
        state = self.app.catalog_state  # type: ignore[attr-defined]
        clusters = [s.cluster for s in state.clusters]
        backups = {
            "/".join(s.cluster.key) for s in state.clusters if s.cluster.in_kubernetes and s.backups
        }
        rows = rows_for(message.histories, clusters, backups)
        table = self.query_one("#tests", FittingTable)
        selected = table.selected_key()
        if table.row_count:
            table.clear()
        self.rows = {r.key: r for r in rows}
        now = self.now
        for row in rows:
            table.add_row(*cells(row, now), key=row.key)
        if selected in self.rows:
            table.move_cursor(row=table.get_row_index(selected))
        counts = {m: sum(1 for h in message.histories if h.mark is m) for m in RestoreTestMark}
        tested = len(message.histories)
        text = (
            f"{tested} cluster(s) tested: {counts[RestoreTestMark.FAILED]} failed, "
            f"{counts[RestoreTestMark.STALE]} stale; in {message.where}. TTR: {LEGEND}"
        )
        if not message.histories:
            text = f"no restore tests in {message.where} yet"
        self.query_one("#status", Static).update(Text(safe_text(text)))
        self._show_detail()

    def selected(self) -> Row | None:
        key = self.query_one("#tests", FittingTable).selected_key()
        return self.rows.get(key or "")

    def _show_detail(self) -> None:
        row = self.selected()
        self.query_one("#detail", Static).update(detail(row, self.now) if row else "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is None or row.history is None or not row.history.last.report_location:
            self.notify("no report to open", severity="warning")
            return
        self.read(row.history.last.report_location)

    @work(thread=True, exclusive=True, group="restore-tests-read", exit_on_error=False)
    def read(self, location: str) -> None:
        from tui.screens.archive import read_report

        self.post_message(read_report(self.catalog.config, location))

    def on_archive_report_read(self, message: ArchiveReportRead) -> None:
        self.shown = message.location
        self.query_one("#run-log", Log).display = self.running is not None
        self.query_one("#viewer", VerticalScroll).display = self.running is None
        self.query_one("#report", Markdown).update(safe_text(message.markdown, keep="\t\n"))
        self.query_one("#viewer", VerticalScroll).scroll_home(animate=False)

    def on_service_failed(self, message: ServiceFailed) -> None:
        self.query_one("#status", Static).update(Text(f"✗ {message.error}", style="bold red"))
        self.notify(message.error, title=f"{message.where} failed", severity="error", markup=False)

    # --- running a test ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_test":
            return self.running is not None
        if action == "run_test":
            return self.running is None
        return True

    def action_leave(self) -> None:
        if self.running is not None:
            self.action_cancel_test()
        else:
            self.app.pop_screen()

    def action_run_test(self) -> None:
        row = self.selected()
        if row is None or row.cluster is None:
            self.notify("no cluster of the catalog selected", severity="warning")
            return
        cluster = row.cluster
        staging = self.catalog.config.staging
        where = f"{cluster.namespace}/{cluster.name}" if cluster.namespace else cluster.name

        def answer(yes: bool | None) -> None:
            if yes and self.running is None:
                self._start(cluster)

        self.app.push_screen(
            ConfirmScreen(
                f"Test {safe_text(where)}'s latest backup? A staging cluster is created in "
                f"{safe_text(staging.namespace)}, the backup restored into it and validated, "
                "the report archived, and the staging cluster deleted.",
                yes="Run the test",
                no="Not now",
            ),
            answer,
        )

    def _start(self, cluster: Cluster) -> None:
        from services.restore_test import TestsCancel

        self.running = cluster.name
        self._cancel = TestsCancel()
        log = self.query_one("#run-log", Log)
        log.clear()
        log.display = True
        self.query_one("#viewer", VerticalScroll).display = False
        jobs = self.catalog.config.restore.jobs  # restore.jobs, as the command line's default
        log.write_line(
            f"pgdeck: restore test of {safe_text(cluster.name)} starting (table data on "
            f"{jobs} session{'s' if jobs != 1 else ''}, restore.jobs)"
        )
        self.query_one("#status", Static).update(
            Text(safe_text(f"testing {cluster.name} ... (esc or ctrl+c cancels)"), style="cyan")
        )
        self.app.refresh_bindings()
        self.run_test(cluster, self._cancel)

    @work(thread=True, exclusive=True, group="restore-test-run", exit_on_error=False)
    def run_test(self, cluster: Cluster, cancel: TestsCancel) -> None:
        from services.backup_choice import LATEST, BackupChoice
        from services.report import _who
        from services.restore_test import TestRequest, run_restore_tests, started_by
        from services.staging_spec import new_run_id

        worker = get_current_worker()
        clock = self.catalog.clock

        def on_event(_cluster: str, event: RestoreEvent) -> None:
            # From the tests' threads: the worker's own cancel (the app going away) reaches
            # the test at its next event.
            if worker.is_cancelled and not cancel.cancelled:
                cancel.cancel()
            self.post_message(RestoreProgressed([event]))

        request = TestRequest(
            cluster.name,
            cluster.namespace or None,
            BackupChoice(LATEST),
            port_forward=self.catalog.config.staging.port_forward,
        )
        try:
            [outcome] = run_restore_tests(
                [request],
                config=self.catalog.config,
                catalog=self.catalog,
                run_id=new_run_id(clock()),
                on_event=on_event,
                cancel=cancel,
                clock=clock,
                started_by=started_by("pgdeck (console)", in_cluster=False, job=None, user=_who()),
            )
        except Exception as exc:
            self.post_message(RestoreTestFinished(cluster.name, None, str(exc) or repr(exc)))
            return
        self.post_message(RestoreTestFinished(cluster.name, outcome, outcome.error))

    def on_restore_progressed(self, message: RestoreProgressed) -> None:
        lines = []
        for event in message.events:
            if isinstance(event, RestoreProgress | VerifyProgress):
                self.query_one("#status", Static).update(progress_text(event))
                continue
            line = event_line(event)
            if line is not None:
                lines.append(line)
        if lines:
            self.query_one("#run-log", Log).write_lines(lines)

    def on_restore_test_finished(self, message: RestoreTestFinished) -> None:
        if self.exit_when_done:  # quit or a signal: the staging cluster is gone, now leave
            self.app.exit(return_code=getattr(self.app, "exit_code", None) or 0)
            return
        self.running, self._cancel = None, None
        self.app.refresh_bindings()
        outcome = message.outcome
        result = outcome.result if outcome is not None else "error"
        self.last_outcome = result
        glyph = glyphs.test_result(result)
        line = f"restore test of {message.cluster}: {result}"
        if outcome is not None and outcome.archived:
            line += f"; report {outcome.archived.get('markdown', '')}"
        if message.error:
            line += f" ({message.error})"
        self.query_one("#run-log", Log).write_line(safe_text(f"pgdeck: {line}"))
        self.query_one("#status", Static).update(
            Text(safe_text(f"{glyph.sign} {line}"), style=glyph.style)
        )
        severity = "information" if result == "passed" else "error"
        self.notify(line, severity=severity, markup=False)
        self.load()  # the new test in the rows

    def cancel_now(self) -> None:
        """Stop the test: it stops waiting or restoring, deletes its staging cluster and
        archives its report as cancelled. Cancelling a restore is a round trip to the
        server: sent from a thread, never from the event loop."""
        if self._cancel is not None:
            threading.Thread(target=self._cancel.cancel, name="cancel-test", daemon=True).start()

    def action_cancel_test(self) -> None:
        if self.running is None:
            return

        def answer(yes: bool | None) -> None:
            if yes and self.running is not None:
                self.cancel_now()
                self.query_one("#status", Static).update(
                    Text("cancelling: the staging cluster is deleted ...", style="yellow")
                )

        self.app.push_screen(
            ConfirmScreen(
                "Cancel the restore test? Its staging cluster is deleted and its report "
                "archived as cancelled.",
                yes="Cancel the test",
                no="Keep testing",
            ),
            answer,
        )
