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
        self._signals: list[int] = []
        self.exit_code: int | None = None  # what a signal asks the process to exit with

    def on_mount(self) -> None:
        # SIGTERM and SIGHUP (a closed SSH session) act as quitting does: a running
        # restore is cancelled, its report archived, then the app exits.
        import asyncio
        import contextlib
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop_for_signal, int(sig))
                self._signals.append(int(sig))

    def on_unmount(self) -> None:
        import asyncio
        import contextlib

        loop = asyncio.get_running_loop()
        for sig in self._signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        self._signals = []

    def stop_for_signal(self, signum: int) -> None:
        self.exit_code = 128 + signum
        if not self._cancel_restores():
            self.exit(return_code=self.exit_code)

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

    def _cancel_restores(self) -> bool:
        """Cancel every running restore; each screen exits the app once its report is
        archived. False when none was running."""
        from tui.screens.restore import RestoreScreen

        running = [s for s in self.screen_stack if isinstance(s, RestoreScreen) and s.running]
        for screen in running:
            screen.exit_when_done = True
            screen.cancel_now()
        return bool(running)

    async def action_quit(self) -> None:
        if not self.restore_running():
            self.exit()
            return
        from tui.screens.confirm import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes and not self._cancel_restores():
                self.exit()

        self.push_screen(
            ConfirmScreen(
                "A restore is running. Quit anyway? It is cancelled; what was written stays (the table being loaded is rolled back).",
                yes="Cancel it and quit",
                no="Keep restoring",
            ),
            answer,
        )
