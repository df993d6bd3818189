"""The Textual app: it receives its services at construction and shows them."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel

from services.catalog import Catalog
from services.models import ClusterSummary
from services.text import safe_text
from tui.commands import ClusterCommands, ScreenActions
from tui.screens.clusters import ClustersScreen


class PgdeckApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "pgdeck"
    SUB_TITLE = "logical backups of Postgres Operator clusters"
    COMMANDS = App.COMMANDS | {ClusterCommands, ScreenActions}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (screens' and widgets' too: theirs come here) with control
        characters escaped: error messages quote object keys, names and log lines, and a
        toast must not carry an escape sequence to the terminal."""
        super().notify(
            safe_text(message, keep="\t\n"),
            title=safe_text(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def get_default_screen(self) -> ClustersScreen:
        # The clusters screen is the app's own first screen, not one pushed over an empty
        # default: that costs a second screen's mount and a Footer rebuilt as focus moves
        # (a third of the first frame's time).
        return ClustersScreen(self.catalog)

    def open_cluster(self, summary: ClusterSummary) -> None:
        from tui.screens.timeline import TimelineScreen

        self.push_screen(TimelineScreen(self.catalog, summary))

    def action_help(self) -> None:
        """Every key of the current screen, in Textual's help panel (? again hides it)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def restore_running(self) -> bool:
        from tui.screens.restore import RestoreScreen

        return any(isinstance(s, RestoreScreen) and s.running for s in self.screen_stack)

    async def action_quit(self) -> None:
        if not self.restore_running():
            self.exit()
            return
        from tui.screens.confirm import ConfirmScreen
        from tui.screens.restore import RestoreScreen

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            for s in self.screen_stack:
                if isinstance(s, RestoreScreen) and s.running:
                    s.cancel_now()
            self.exit()

        self.push_screen(
            ConfirmScreen(
                "A restore is running. Quit anyway? It is cancelled; what was written stays (the table being loaded is rolled back).",
                yes="Cancel it and quit",
                no="Keep restoring",
            ),
            answer,
        )
