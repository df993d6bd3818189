"""The Textual app: it receives its services at construction and shows them.

The app owns the catalog's state: it reads the cache, runs the refreshes (one at a time)
and announces each new state to every screen with one message, ``CatalogRefreshed``.
Behind each refresh it checks the encryption of the objects new to the cache
(``Catalog.check_new_sse``) and says when that ended, ``EncryptionChecked``.
Opening a cluster's timeline or a restore are the app's actions, whoever asks (a
screen, the command palette).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.filter import LineFilter, Monochrome
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerFailed, get_current_worker

from services.catalog import Catalog, CatalogProgress, CatalogState
from services.models import Backup, Cluster, SourceProblem
from services.sse_check import SseCheck
from services.text import safe_text
from tui import glyphs, shown_rows
from tui.commands import ClusterCommands, ScreenActions
from tui.messages import (
    CatalogFailed,
    CatalogProgressed,
    CatalogRefreshed,
    EncryptionChecked,
    EncryptionCheckProgressed,
    RowsRecalled,
)
from tui.monochrome import ReadableMonochrome
from tui.rows import cluster_row
from tui.screens.clusters import ClustersScreen
from widgets.cluster_table import ClusterRow

if TYPE_CHECKING:
    from tui.screens.restore import RestoreScreen
    from tui.screens.restore_tests import RestoreTestsScreen

# How long the first refresh waits, at most, for the cached rows to be on screen.
PAINT_TIMEOUT = 5.0
# The encryption check behind a refresh says how far it is once it has run this long: a
# short one is never mentioned.
SSE_PROGRESS_AFTER = 1.0


class _Cancelled(Exception):
    """The refresh's worker was cancelled (the app is closing): the refresh stops."""


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
        self.catalog_state: CatalogState = catalog.state  # the last one announced
        self._refresh: Worker[CatalogState] | None = None
        self._rows_shown = asyncio.Event()
        self._cache_shown = asyncio.Event()
        self._signals: list[int] = []
        self.exit_code: int | None = None  # what a signal asks the process to exit with
        self._readable_monochrome = ReadableMonochrome()

    def get_line_filters(self) -> Sequence[LineFilter]:
        # Without colour, Textual's grey leaves red text (every failure) unreadable.
        return [
            self._readable_monochrome if type(f) is Monochrome else f
            for f in super().get_line_filters()
        ]

    def on_mount(self) -> None:
        # SIGTERM and SIGHUP (a closed SSH session) act as quitting does: a running
        # restore is cancelled, its report archived, then the app exits.
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop_for_signal, int(sig))
                self._signals.append(int(sig))
        # The rows last shown are read from here, not from the open_catalog worker: a
        # thread started now reads them while the first screen is mounted.
        self.open_catalog(self._recall_rows())

    def on_unmount(self) -> None:
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
        toast must not carry an escape sequence to the terminal. Without colour, an error's
        or a warning's title says so ("✗ error: ..."): the toast's colour said it."""
        title = safe_text(title)
        if self.no_color and severity in glyphs.NOTICE:
            title = ": ".join(part for part in (glyphs.NOTICE[severity].label, title) if part)
        super().notify(
            safe_text(message, keep="\t\n"),
            title=title,
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def get_default_screen(self) -> ClustersScreen:
        # The clusters screen is the app's own first screen, not one pushed over an empty
        # default: that costs a second screen's mount and a Footer rebuilt as focus moves
        # (a third of the first frame's time).
        return ClustersScreen(self.catalog)

    # --- the catalog's state ------------------------------------------------------------
    @work(group="catalog", exit_on_error=False)
    async def open_catalog(self, recalled: Worker[tuple[ClusterRow, ...]]) -> None:
        """The rows last shown (read by the worker ``recalled``) at once; the catalog from
        the cache once they are all in the table and painted (joining it takes most of a
        second, which the first frame does not wait for), or at once when none were kept; a refresh once the
        cached rows are on screen (started at once, it would compete with painting them);
        then restores left ``running`` by a process that is gone are marked interrupted
        (and audited), after the first refresh so that it never delays it."""
        try:
            rows = await recalled.wait()
        except WorkerFailed:  # only a head start: the catalog's own load says what is wrong
            rows = ()
        if rows:
            self._announce(lambda: RowsRecalled(rows))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rows_shown.wait(), PAINT_TIMEOUT)
        try:
            state, rows = await self._read_cache(keep=not rows).wait()
        except WorkerFailed as failed:  # an unreadable cache: say so, then ask the sources
            error = f"the cache could not be read: {failed.error}"
            self._announce(lambda: CatalogFailed(error))
        else:
            self._set_state(state, rows)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cache_shown.wait(), PAINT_TIMEOUT)
        with contextlib.suppress(WorkerFailed):  # the refresh announced its failure
            await self.refresh_catalog().wait()
        recovered = await self._recover_archive().wait()
        if recovered:
            self.notify(
                f"{len(recovered)} restore report(s) found still running with their process "
                "gone were marked interrupted (see the archive, a)",
                severity="warning",
                markup=False,
            )

    def recalled_rows_shown(self) -> None:
        """The rows last shown are painted: the catalog may be read from the cache."""
        self._rows_shown.set()

    def cached_catalog_shown(self) -> None:
        """The cached rows are on screen: the first refresh may start."""
        self._cache_shown.set()

    @property
    def refreshing(self) -> bool:
        return self._refresh is not None and not self._refresh.is_finished

    def refresh_catalog(self) -> Worker[CatalogState]:
        """Refresh the catalog, unless a refresh is under way: then its worker is the
        answer. One at a time: a second would list everything again beside it."""
        if self._refresh is None or self._refresh.is_finished:
            self._refresh = self._run_refresh()
        return self._refresh

    async def refreshed_catalog(self) -> CatalogState:
        """A refreshed state (the refresh under way's, else a new one's), for a worker that
        needs one (``call_from_thread``); raises what the refresh raised."""
        try:
            return await self.refresh_catalog().wait()
        except WorkerFailed as failed:
            raise failed.error from None

    @work(thread=True, group="catalog-refresh", exit_on_error=False)
    def _run_refresh(self) -> CatalogState:
        worker = get_current_worker()

        def progress(p: CatalogProgress) -> None:
            if worker.is_cancelled:
                raise _Cancelled
            self.post_message(CatalogProgressed(p.stage, p.done, p.total))

        try:
            state = self.catalog.refresh(progress=progress)
        except _Cancelled:
            raise
        except Exception as exc:  # said to every screen; the worker fails with it
            error = str(exc)
            if not worker.is_cancelled:
                self.call_from_thread(self._announce, lambda: CatalogFailed(error))
            raise
        rows = self._rows(state)
        if not worker.is_cancelled:
            # On the loop before the worker ends: who waits on the worker finds the new
            # state announced (its messages queued on every screen).
            self.call_from_thread(self._set_state, state, rows)
            shown_rows.store(self.catalog, state, rows)  # the next start's first rows
        return state

    @work(thread=True, group="catalog-view", exit_on_error=False)
    def _recall_rows(self) -> tuple[ClusterRow, ...]:
        return shown_rows.recall(self.catalog, self.catalog.clock())

    @work(thread=True, group="catalog-cache", exit_on_error=False)
    def _read_cache(self, keep: bool = False) -> tuple[CatalogState, tuple[ClusterRow, ...]]:
        """The catalog from the cache; with ``keep``, its rows kept for the next start too
        (none were: a cache written before rows were kept, or another configuration's)."""
        state = self.catalog.load_cached()
        rows = self._rows(state)
        if keep:
            shown_rows.store(self.catalog, state, rows)
        return state, rows

    def _rows(self, state: CatalogState) -> tuple[ClusterRow, ...]:
        """The clusters table's rows (in the worker: a thousand of them take the loop 30 ms)."""
        now = self.catalog.clock()
        return tuple(cluster_row(s, now) for s in state.clusters)

    @work(thread=True, group="archive-recovery", exit_on_error=False)
    def _recover_archive(self) -> list[object]:
        from services.archive import open_archive, recover_quietly

        try:
            return list(recover_quietly(open_archive(self.catalog.config, self.catalog.clock)))
        except Exception:  # the archive screen and a restore say what is wrong with it
            return []

    def _set_state(self, state: CatalogState, rows: tuple[ClusterRow, ...]) -> None:
        self.catalog_state = state
        self._announce(lambda: CatalogRefreshed(state, rows))
        if not state.from_cache and self.catalog.config.catalog.sse_check_per_refresh:
            self.check_encryption()

    @work(thread=True, exclusive=True, group="sse-check", exit_on_error=False)
    def check_encryption(self) -> None:
        """HEAD the objects the refresh found whose encryption is not cached yet (newest
        first, ``catalog.sse_check_per_refresh`` at most), so a timeline and the review find
        it known. A new refresh's check replaces this one; quitting cancels it."""
        worker = get_current_worker()
        started = time.monotonic()

        def progress(p: CatalogProgress) -> None:
            if time.monotonic() - started >= SSE_PROGRESS_AFTER and not worker.is_cancelled:
                self.post_message(EncryptionCheckProgressed(p.done, p.total))

        try:
            result = self.catalog.check_new_sse(
                progress=progress, cancel=lambda: worker.is_cancelled
            )
        except Exception as exc:  # the cache, say: one line, never a traceback
            result = SseCheck(problems=(SourceProblem("encryption check", str(exc)),))
        if not worker.is_cancelled:
            self.post_message(EncryptionChecked(result))

    def _announce(self, make: Callable[[], Message]) -> None:
        """A message to every screen on the stack (each its own: a message is handled once)."""
        for screen in self.screen_stack:
            screen.post_message(make())

    def on_catalog_progressed(self, message: CatalogProgressed) -> None:
        # Posted to the app by the refresh's thread; the screens hear it from here.
        self._announce(lambda: CatalogProgressed(message.stage, message.done, message.total))

    def on_encryption_check_progressed(self, message: EncryptionCheckProgressed) -> None:
        self._announce(lambda: EncryptionCheckProgressed(message.done, message.total))

    def on_encryption_checked(self, message: EncryptionChecked) -> None:
        self._announce(lambda: EncryptionChecked(message.result))

    # --- opening screens --------------------------------------------------------------
    def action_open_cluster(
        self,
        context: str,
        namespace: str,
        name: str,
        select_url: str | None = None,
        select_job: str | None = None,
        tab: str | None = None,
    ) -> None:
        """The timeline of a cluster of the catalog. ``select_url`` puts the cursor on that
        backup; ``select_job`` (a job's or a pod's name) opens the Jobs tab on it; ``tab``
        is the tab shown first."""
        from tui.screens.timeline import TimelineScreen

        key = (context, namespace, name)
        summary = next((s for s in self.catalog_state.clusters if s.cluster.key == key), None)
        if summary is None:
            where = f"{namespace}/{name}" if namespace else name
            self.notify(f"{where} is no longer in the catalog", severity="warning", markup=False)
            return
        self.push_screen(
            TimelineScreen(
                self.catalog, summary, select_url=select_url, select_job=select_job, tab=tab
            )
        )

    def action_open_restore(self, cluster: Cluster, backup: Backup | None = None) -> None:
        """The restore wizard for ``backup`` of ``cluster`` (None: its latest)."""
        if backup is None:
            summary = next(
                (s for s in self.catalog_state.clusters if s.cluster.key == cluster.key), None
            )
            backup = summary.last_backup if summary else None
        if backup is None:
            self.notify(
                f"{cluster.name} has no backup to restore", severity="warning", markup=False
            )
            return
        from tui.screens.restore import RestoreScreen

        self.push_screen(RestoreScreen(self.catalog, cluster, backup))

    def action_help(self) -> None:
        """Every key of the current screen, in Textual's help panel (? again hides it)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def restore_running(self) -> bool:
        return bool(self._running_restores())

    def _running_restores(self) -> list[RestoreScreen | RestoreTestsScreen]:
        """The screens whose restore (or restore test) runs."""
        from tui.screens.restore import RestoreScreen
        from tui.screens.restore_tests import RestoreTestsScreen

        return [
            s
            for s in self.screen_stack
            if isinstance(s, RestoreScreen | RestoreTestsScreen) and s.running
        ]

    def _cancel_restores(self) -> bool:
        """Cancel every running restore (and restore test: its staging cluster is deleted);
        each screen exits the app once its report is archived. False when none was running."""
        running = self._running_restores()
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
