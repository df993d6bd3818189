"""The home screen: every cluster, from the cache at once, refreshed behind."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from services.catalog import Catalog
from tui.messages import CatalogFailed, CatalogLoaded
from tui.rows import cluster_row
from widgets.cluster_table import ClusterTable


class ClustersScreen(Screen[None]):
    AUTO_FOCUS = "#clusters"
    BINDINGS = [
        Binding(
            "slash", "filter", "Filter", id="filter", tooltip="Show only clusters matching a text"
        ),
        Binding("s", "sort", "Sort", id="sort", tooltip="Sort by the next column"),
        Binding(
            "ctrl+r", "refresh", "Refresh", id="refresh", tooltip="Ask Kubernetes and storage again"
        ),
        Binding("escape", "clear_filter", "Clear filter", id="clear_filter", show=False),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.refreshed_at: float | None = None
        self._rows: list = []
        self._sort_index = -1

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading the catalog ...", id="status")
        yield Input(placeholder="filter: name, namespace, team, status", id="filter")
        yield ClusterTable(id="clusters")
        yield Footer()

    def on_mount(self) -> None:
        self.load_cached()

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def load_cached(self) -> None:
        state = self.catalog.load_cached()
        self.post_message(CatalogLoaded(state, from_cache=True))
        self._refresh()

    def _refresh(self) -> None:
        try:
            state = self.catalog.refresh()
        except Exception as exc:  # a worker must not take the screen down
            self.post_message(CatalogFailed(str(exc)))
            return
        self.post_message(CatalogLoaded(state, from_cache=False))

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def refresh_catalog(self) -> None:
        self._refresh()

    def action_refresh(self) -> None:
        self.query_one("#status", Static).update("refreshing ...")
        self.refresh_catalog()

    # --- filter and sort -----------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        self.call_after_refresh(box.focus)  # once it is displayed

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
            if not needle or needle in f"{r.namespace} {r.name} {r.team} {r.status}".lower()
        ]
        table = self.query_one(ClusterTable)
        table.set_rows(rows)
        if self._sort_index >= 0:
            table.sort_by(self._sort_index)

    def action_sort(self) -> None:
        table = self.query_one(ClusterTable)
        self._sort_index = (self._sort_index + 1) % len(table.columns)
        table.sort_by(self._sort_index)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self._sort_index = event.column_index
        self.query_one(ClusterTable).sort_by(event.column_index)

    def on_catalog_loaded(self, message: CatalogLoaded) -> None:
        self._rows = [cluster_row(s) for s in message.state.clusters]
        self._show()
        if not message.from_cache:
            self.refreshed_at = time.time()
        problems = [p for p in message.state.problems if p.fatal_for_source]
        source = "cache" if message.from_cache else "refreshed " + time.strftime("%H:%M:%S")
        text = f"{len(message.state.clusters)} clusters ({source})"
        if problems:
            text += f" - {len(problems)} source(s) failed: {problems[0].message}"
            self.notify(problems[0].message, severity="warning", markup=False)
        self.query_one("#status", Static).update(text)

    def on_catalog_failed(self, message: CatalogFailed) -> None:
        self.notify(message.error, severity="error", markup=False)
        self.query_one("#status", Static).update(f"refresh failed: {message.error}")
