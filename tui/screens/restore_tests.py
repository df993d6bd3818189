"""Restore tests (``t`` on the clusters screen): each cluster's last test, its age and mark,
its time-to-restore per quarter against its objective; the latest report opens as Markdown.

The archive is read in a worker (``services.restore_test_history``); clusters of the
catalog that have backups but no test are listed too, as ``? never``. Every text comes from
archived documents: cells are ``Text``, never markup, and escaped by the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Markdown, Static

from services.catalog import Catalog
from services.errors import PgdeckError
from services.marks import RestoreTestMark
from services.models import Cluster
from services.restore_test_history import ClusterTests, PastTest, by_cluster, find, read_tests
from services.text import safe_text
from tui import glyphs, present
from tui.messages import ArchiveReportRead, RestoreTestsRead, ServiceFailed
from widgets.fitting_table import FittingTable
from widgets.key_footer import KeyFooter
from widgets.sparkline_text import MISSING, OVER, sparkline_against

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
        h = find(named.get(c.name, ()), *c.key)
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
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("enter", "open", "Report", id="open", tooltip="The latest test's report"),
        Binding("ctrl+r", "reload", "Reload", id="reload", tooltip="Read the archive again"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.rows: dict[str, Row] = {}
        self.shown: str | None = None  # the report whose Markdown is on screen

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
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "restore tests"
        table = self.query_one("#tests", FittingTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.on_cursor_row = lambda _: self._show_detail()
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
        from services.archive import open_archive

        try:
            data = open_archive(self.catalog.config).read(location)
        except PgdeckError as exc:
            self.post_message(ServiceFailed("archive", exc.message))
            return
        self.post_message(ArchiveReportRead(location, data.decode("utf-8", errors="replace")))

    def on_archive_report_read(self, message: ArchiveReportRead) -> None:
        self.shown = message.location
        self.query_one("#report", Markdown).update(safe_text(message.markdown, keep="\t\n"))
        self.query_one("#viewer", VerticalScroll).scroll_home(animate=False)

    def on_service_failed(self, message: ServiceFailed) -> None:
        self.query_one("#status", Static).update(Text(f"✗ {message.error}", style="bold red"))
        self.notify(message.error, title=f"{message.where} failed", severity="error", markup=False)
