"""The Textual app: it receives its services at construction and shows them."""

from __future__ import annotations

from textual.app import App

from services.catalog import Catalog
from tui.screens.clusters import ClustersScreen


class PgdeckApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "pgdeck"
    SUB_TITLE = "logical backups of Postgres Operator clusters"

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog

    def on_mount(self) -> None:
        self.push_screen(ClustersScreen(self.catalog))
