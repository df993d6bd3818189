"""The home screen: every cluster, from the cache at once, refreshed behind.

The app reads and refreshes the catalog; this screen shows each state it announces
(``CatalogRefreshed``) and, once the cached rows are painted, lets the first refresh start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from services.catalog import Catalog
from services.marks import RestoreTestMark
from services.models import ClusterSummary
from services.text import safe_text
from tui import glyphs, present
from tui.messages import (
    CatalogFailed,
    CatalogRefreshed,
    EncryptionChecked,
    EncryptionCheckProgressed,
    RestoreTestsRead,
    RowsRecalled,
    ServiceFailed,
)
from widgets.cluster_table import ClusterRow, ClusterTable
from widgets.glyph import Glyph
from widgets.key_footer import KeyFooter

if TYPE_CHECKING:
    from services.restore_test_history import ClusterTests
    from tui.app import PgdeckApp

REFRESH_DELAY = 0.5  # seconds after the cached rows arrive


class ClustersScreen(Screen[None]):
    AUTO_FOCUS = "#clusters"
    BINDINGS = [
        Binding(
            "slash",
            "filter",
            "Filter",
            id="filter",
            tooltip="Show only clusters matching a text",
            # Checked as the key arrives, not once it has bubbled up from the table: the
            # keys typed right after it must already find the filter focused.
            priority=True,
        ),
        Binding("s", "sort", "Sort", id="sort", tooltip="Sort by the next column"),
        Binding(
            "ctrl+r", "refresh", "Refresh", id="refresh", tooltip="Ask Kubernetes and storage again"
        ),
        Binding("enter", "open", "Timeline", id="open", tooltip="The selected cluster's backups"),
        Binding(
            "r", "restore", "Restore latest", id="restore", tooltip="Restore the newest backup"
        ),
        Binding("c", "next_context", "Context", id="context", tooltip="Show one context, or all"),
        Binding("v", "review", "Review", id="review", tooltip="The weekly review of every cluster"),
        Binding(
            "a", "archive", "Archive", id="archive", tooltip="Earlier reviews and restore reports"
        ),
        Binding(
            "t",
            "restore_tests",
            "Tests",
            id="restore_tests",
            tooltip="Each cluster's restore tests: the last result, time-to-restore by quarter",
        ),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", show=False),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.refreshed_at: float | None = None
        self._rows: tuple[ClusterRow, ...] = ()
        self._summaries: dict[str, ClusterSummary] = {}
        self._sort_index = -1
        self.contexts: list[str] = []
        self.context: str | None = None  # None: every context
        self._status_text = "loading the catalog ..."
        self.test_histories: list[ClusterTests] | None = None  # None: not read yet
        self._tests_problem = ""  # why the restore tests' marks could not be read
        self._sse_status = ""  # the encryption check behind a refresh, while it runs long

    @property
    def pgdeck(self) -> PgdeckApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading the catalog ...", id="status")
        yield Input(placeholder="filter: name, namespace, team, status", id="filter")
        yield ClusterTable(id="clusters")
        yield Static("", id="selected")
        yield KeyFooter()

    def action_refresh(self) -> None:
        if self.pgdeck.refreshing:
            self.notify("a refresh is already running")
            return
        self.query_one("#status", Static).update("refreshing ...")
        self.pgdeck.refresh_catalog()

    # --- filter and sort -----------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        self.set_focus(box)  # at once, not later: keys typed right after "/" are the filter's

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one(ClusterTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(ClusterTable).focus()

    def _show(self) -> None:
        needle = self.query_one("#filter", Input).value.strip().lower()
        rows = [
            r
            for r in self._rows
            if (
                not needle
                or needle in f"{r.namespace} {r.name} {r.team} {r.status} {r.health}".lower()
            )
            and (self.context is None or r.context in (self.context, ""))
        ]
        table = self.query_one(ClusterTable)
        table.set_rows(rows)
        table.resort()  # by the column's key: a resize may have moved it
        self._show_selected()

    def action_sort(self) -> None:
        table = self.query_one(ClusterTable)
        self._sort_index = (self._sort_index + 1) % len(table.columns)
        table.sort_by(self._sort_index)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self._sort_index = event.column_index
        self.query_one(ClusterTable).sort_by(event.column_index)

    def on_rows_recalled(self, message: RowsRecalled) -> None:
        """The rows last shown, until the catalog is read (then its own replace them)."""
        if not self._summaries:
            self._rows = message.rows
            self.contexts = sorted({r.context for r in self._rows if r.context})
            self._show()
            self._status_text = f"{len(self._rows)} clusters (as last shown, reading the cache ...)"
            self._update_status()
        self._when_filled(self.pgdeck.recalled_rows_shown)

    def _when_filled(self, callback: Callable[[], None]) -> None:
        """``callback`` once every row given to the table is in it and painted: the
        table adds them a step per frame, which work beside it would slow."""
        if self.query_one(ClusterTable).complete:
            self.call_after_refresh(callback)
        else:
            self.call_after_refresh(self._when_filled, callback)

    def on_catalog_refreshed(self, message: CatalogRefreshed) -> None:
        state = message.state
        self._rows = message.rows
        self._summaries = {r.key: s for r, s in zip(self._rows, state.clusters, strict=True)}
        self.contexts = sorted({s.cluster.context for s in state.clusters if s.cluster.context})
        self._show()
        if not state.from_cache:
            self.refreshed_at = self.catalog.clock().timestamp()
        problems = [p for p in state.problems if p.fatal_for_source]
        at = self.catalog.clock().astimezone()
        source = "cache, refreshing ..." if state.from_cache else f"refreshed {at:%H:%M:%S}"
        text = f"{len(state.clusters)} clusters ({source})"
        if problems:
            text += f" - {len(problems)} source(s) failed: {problems[0].message}"
            self.notify(problems[0].message, severity="warning", markup=False)
        self._status_text = text
        self._update_status()
        if state.from_cache:
            # The refresh (CPU-heavy: it parses every manifest) waits until the rows are
            # painted and the table has been filled in, then runs behind.
            self.set_timer(REFRESH_DELAY, self.pgdeck.cached_catalog_shown)
        if self.test_histories is None:
            # The restore tests' marks wait for the first rows too: the archive is read behind.
            self.set_timer(REFRESH_DELAY, self.load_test_marks)
        else:
            self._show_test_marks()

    def _update_status(self) -> None:
        text = self._status_text
        if self._tests_problem:
            text += f" - {self._tests_problem}"
        if self._sse_status:
            text += f" - {self._sse_status}"
        if len(self.contexts) > 1 or self.context:
            text = f"context {self.context or 'all'} (c switches)  " + text
        elif self.contexts:
            text = f"context {self.contexts[0]}  " + text
        # Plain text, never markup: a source's error quotes keys and names from outside.
        self.query_one("#status", Static).update(Text(safe_text(text)))

    def action_next_context(self) -> None:
        if len(self.contexts) < 2:
            self.notify(f"only one context: {self.contexts[0] if self.contexts else 'none'}")
            return
        order: list[str | None] = [None, *self.contexts]
        self.context = order[(order.index(self.context) + 1) % len(order)]
        self._show()
        self._update_status()

    # --- drilling in -------------------------------------------------------------------
    def selected(self) -> ClusterSummary | None:
        key = self.query_one(ClusterTable).selected_key()
        return self._summaries.get(key) if key else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        """The line under the table: the selected cluster's last backup and next run,
        which on-call people ask first, then what a narrow table folded away."""
        summary = self.selected()
        line = self.query_one("#selected", Static)
        if summary is None:
            line.update("")
            return
        now = self.catalog.clock()
        last = summary.last_backup
        text = (
            f"{summary.cluster.name}: last backup {present.age(last.time if last else None, now)}"
        )
        from services.schedule import next_backup_run  # croniter: not before the first frame

        cj = summary.cluster.cronjob
        if cj is not None and cj.suspended:
            text += ", CronJob suspended"
        elif summary.cluster.logical_backup and summary.cluster.in_kubernetes:
            text += ", " + present.next_run(next_backup_run(summary.cluster, now), now)
        out = Text(safe_text(text))
        table = self.query_one(ClusterTable)
        folded = table.folded_line(table.selected_key(), sep=", ")
        if folded:  # a line of what the table has no room for (its cells are escaped)
            out.append("\n")
            out.append_text(folded)
        line.update(out)

    def on_folding_table_refolded(self, message: ClusterTable.Refolded) -> None:
        self._show_selected()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.pgdeck.action_open_cluster(*summary.cluster.key)

    def action_restore(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.pgdeck.action_open_restore(summary.cluster)

    def action_review(self) -> None:
        from tui.screens.review import ReviewScreen

        self.app.push_screen(ReviewScreen(self.catalog))

    def action_archive(self) -> None:
        from tui.screens.archive import ArchiveScreen

        self.app.push_screen(ArchiveScreen(self.catalog))

    def action_restore_tests(self) -> None:
        from tui.screens.restore_tests import RestoreTestsScreen

        self.app.push_screen(RestoreTestsScreen(self.catalog))

    # --- restore tests' marks ----------------------------------------------------------
    @work(thread=True, exclusive=True, group="test-marks", exit_on_error=False)
    def load_test_marks(self) -> None:
        from services.archive import open_archive
        from services.restore_test_history import by_cluster, read_tests

        try:
            archive = open_archive(self.catalog.config, self.catalog.clock)
            histories = by_cluster(read_tests(archive), self.catalog.clock())
        except Exception as exc:
            # One line in the status (the marks keep what they showed): the restore
            # tests' screen says the rest.
            logging.getLogger(__name__).warning("restore tests not read: %r", exc)
            self.post_message(ServiceFailed("restore tests", str(exc) or type(exc).__name__))
            return
        self.post_message(RestoreTestsRead(histories, archive.where))

    def on_restore_tests_read(self, message: RestoreTestsRead) -> None:
        self.test_histories = message.histories
        if self._tests_problem:
            self._tests_problem = ""
            self._update_status()
        self._show_test_marks()

    def on_service_failed(self, message: ServiceFailed) -> None:
        if message.where == "restore tests":
            self._tests_problem = f"restore tests not read: {message.error}"
            self._update_status()

    def on_screen_resume(self) -> None:
        if self.test_histories is not None:  # back from another screen: a test may have run
            self.load_test_marks()

    def _show_test_marks(self) -> None:
        """The marks column, once the archive holds any restore test: a cluster whose last
        test failed or is stale, ok, or never tested (only one that has backups to test)."""
        if not self.test_histories:
            return
        from services.restore_test_history import find  # the archive's: not at start

        named: dict[str, list[ClusterTests]] = {}
        for h in self.test_histories:
            named.setdefault(h.cluster, []).append(h)
        never = glyphs.restore_test(RestoreTestMark.NEVER)
        marks: dict[str, Glyph] = {}
        for key, s in self._summaries.items():
            found = find(named.get(s.cluster.name, ()), *s.cluster.key, s.cluster.uid)
            if found is not None:
                marks[key] = glyphs.restore_test(found.mark)
            elif s.cluster.in_kubernetes and s.backups:
                marks[key] = never
        self.query_one(ClusterTable).set_marks(marks)

    def on_encryption_check_progressed(self, message: EncryptionCheckProgressed) -> None:
        self._sse_status = f"encryption checked {message.done:,}/{message.total:,}"
        self._update_status()

    def on_encryption_checked(self, message: EncryptionChecked) -> None:
        problems = message.result.problems
        self._sse_status = f"encryption check stopped: {problems[0].message}" if problems else ""
        if problems:
            self.notify(
                problems[0].message, title="encryption check", severity="warning", markup=False
            )
        self._update_status()

    def on_catalog_failed(self, message: CatalogFailed) -> None:
        self.notify(message.error, severity="error", markup=False)
        self._status_text = f"refresh failed: {message.error}"
        self._update_status()
