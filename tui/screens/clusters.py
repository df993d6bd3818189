"""The home screen: every cluster, from the cache at once, refreshed behind."""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from services.catalog import Catalog
from tui.messages import CatalogFailed, CatalogLoaded
from tui.rows import cluster_row
from widgets.cluster_table import ClusterTable


class ClustersScreen(Screen[None]):
    BINDINGS = [
        Binding(
            "ctrl+r", "refresh", "Refresh", id="refresh", tooltip="Ask Kubernetes and storage again"
        ),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.refreshed_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading the catalog ...", id="status")
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

    def on_catalog_loaded(self, message: CatalogLoaded) -> None:
        table = self.query_one(ClusterTable)
        table.set_rows(cluster_row(s) for s in message.state.clusters)
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
