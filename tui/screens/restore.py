"""The restore wizard: backup, target, scope, confirmation, then the run with its live log.

Every step can go back and ``esc`` leaves without touching anything until the run
starts. The target's preflight runs in a worker as soon as a target is chosen; the run
is the restore flow (``services.restore_flow``) in a thread worker, whose events arrive
as messages, a burst of them merged into one.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Header,
    Input,
    Label,
    Log,
    OptionList,
    ProgressBar,
    RadioButton,
    RadioSet,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from services.catalog import Catalog
from services.config import JOBS_MAX, Config
from services.errors import PgdeckError
from services.models import Backup, Cluster
from services.report import RestoreReport
from services.restore_events import RestoreEvent, RestoreProgress, VerifyProgress
from services.restore_flow import RestoreCancel, parse_jobs
from services.restore_plan import Scope
from services.target import ResolvedTarget
from services.text import safe_text
from tui import present
from tui.messages import PreflightChecked, RestoreFinished, RestoreProgressed
from tui.restore_view import event_line, progress_text, result_text, session_lines
from tui.screens.confirm import ConfirmScreen
from widgets.key_footer import KeyFooter
from widgets.marked_options import MarkedOptionList
from widgets.toggles import Check, Radio

if TYPE_CHECKING:
    from services.restore_flow import RestoreRequest

STEPS = ("backup", "target", "scope", "confirm", "run")
TITLES = ("Backup", "Target", "Scope", "Confirm", "Run")
DSN_OPTION = "__dsn__"
ROLE_MODES = ("no-passwords", "all", "skip")
SESSION_LINES = 4  # data sessions shown during a run: at 80x24 the log keeps 5 lines


class RestoreScreen(Screen[None]):
    AUTO_FOCUS = "#next"
    BINDINGS = [
        Binding("escape", "leave", "Leave", id="leave", tooltip="Leave the wizard (cancel a run)"),
        # Priority: acted on as the key arrives, so the keys typed after it reach the next
        # step's field, not the one left.
        Binding("ctrl+n", "next", "Next", id="next", priority=True),
        Binding("ctrl+b", "back", "Back", id="back", priority=True),
    ]

    def __init__(self, catalog: Catalog, cluster: Cluster, backup: Backup) -> None:
        super().__init__()
        self.catalog, self.cluster, self.backup = catalog, cluster, backup
        self.step = 0
        self.target: ResolvedTarget | None = None
        self.preflight: dict[str, PreflightChecked] = {}
        self.scope: Scope | None = None
        self.jobs = catalog.config.restore.jobs  # data sessions (--jobs), as the scope step says
        self.running = False
        self.finished = False
        self.exit_when_done = False  # quit or a signal came during the run
        self._cancel = RestoreCancel()

    # --- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        config = self.catalog.config
        yield Header()
        yield Static(self._steps_text(), id="steps")
        with ContentSwitcher(initial="step-backup", id="wizard"):
            with VerticalScroll(id="step-backup"):
                yield Static(self._backup_text(), id="backup-info")
                yield Check(
                    "Read the whole backup before writing anything (verify first)",
                    id="verify-first",
                )
            with VerticalScroll(id="step-target"):
                yield Label("Restore into:")
                options = [
                    Option(
                        f"{t.name}  {'PRODUCTION  ' if t.production else ''}{_display(config, t.name)}",
                        id=t.name,
                    )
                    for t in config.targets
                ]
                options.append(Option("a DSN typed in below", id=DSN_OPTION))
                yield MarkedOptionList(*options, id="targets")
                yield Input(
                    placeholder="host=... port=5432 user=postgres dbname=postgres",
                    id="dsn",
                    password=True,  # a DSN may carry a password: never on screen
                )
                yield Static("", id="preflight")
            with VerticalScroll(id="step-scope"):
                with RadioSet(id="scope-kind"):
                    yield Radio(
                        "the whole cluster (not the target's own postgres, template1)",
                        value=True,
                        id="whole",
                    )
                    yield Radio("chosen databases", id="chosen")
                yield Input(
                    placeholder="databases: orders, billing:billing_restored (NAME or OLD:NEW)",
                    id="databases",
                    disabled=True,
                )
                yield Static(self._known_databases(), id="known-dbs")
                yield Label("Roles:")
                with RadioSet(id="roles"):
                    yield Radio(
                        "create missing roles without passwords (keep existing ones)",
                        value=True,
                        id="roles-no-passwords",
                    )
                    yield Radio("replay the dump's roles, passwords included", id="roles-all")
                    yield Radio("no role statements at all", id="roles-skip")
                with Horizontal(id="jobs-row"):
                    yield Label("Data sessions:")
                    yield Input(
                        str(config.restore.jobs),
                        id="jobs",
                        restrict=r"[0-9]*",
                        tooltip=f"--jobs: table data loads on this many sessions at once "
                        f"(1 to {JOBS_MAX}; restore.jobs in the config)",
                    )
                    yield Static(self._jobs_note(str(config.restore.jobs))[0], id="jobs-note")
                yield Check("drop databases that already exist on the target", id="drop-existing")
                yield Check("thorough validation (recount every table and key)", id="thorough")
                yield Check(
                    "if the run fails, drop the databases it created and left incomplete",
                    id="on-failure-drop",
                )
            with VerticalScroll(id="step-confirm"):
                yield Static("", id="summary")
                yield Input(placeholder="type the target's name to confirm", id="confirm-name")
            with Vertical(id="step-run"):
                yield Static("starting ...", id="run-status")
                yield ProgressBar(id="bar", show_eta=True)
                yield Static("", id="sessions")
                yield Log(id="run-log", max_lines=20_000, highlight=False)
                yield Static("", id="result")
        with Horizontal(id="nav"):
            yield Button("Back", id="back")
            yield Button("Next", variant="primary", id="next")
            yield Button("Cancel restore", variant="error", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"restore {self.cluster.name}"
        self.query_one("#dsn", Input).display = False
        self.query_one("#confirm-name", Input).display = False
        self.query_one("#cancel", Button).display = False
        self.query_one("#sessions", Static).display = False
        self._show_step()

    def _steps_text(self) -> Text:
        text = Text()
        for i, title in enumerate(TITLES):
            # A sign as well as a style, so that done, here and to come read without colour.
            if i == self.step:
                sign, style = "▸", "bold reverse"
            elif i < self.step:
                sign, style = "✓", ""
            else:
                sign, style = " ", "dim"
            text.append(f" {sign} {i + 1} {title} ", style=style)
            if i < len(TITLES) - 1:
                text.append(" › ", style="dim")
        return text

    def _backup_text(self) -> Text:
        b, c = self.backup, self.cluster
        text = Text()
        text.append("Cluster   ", style="bold")
        text.append(f"{c.namespace + '/' if c.namespace else ''}{c.name}")
        text.append(f"{'' if c.in_kubernetes else ' (storage only)'}\n")
        text.append("Backup    ", style="bold")
        text.append(
            f"{b.time.astimezone():%a %d %b %Y %H:%M %Z} ({b.time:%H:%MZ}), {present.age(b.time, self.catalog.clock())}\n"
        )
        text.append("Size      ", style="bold")
        text.append(f"{present.size(b.size)} compressed\n")
        text.append("Object    ", style="bold")
        text.append(f"{b.url}\n")
        text.append("uid       ", style="bold")
        text.append(f"{b.uid}\n")
        if b.sse is not None:
            text.append("SSE       ", style="bold")
            text.append(b.sse or "none", style="" if b.sse else "bold red")
            text.append("\n")
        return text

    def _known_databases(self) -> Text:
        names = sorted(self.cluster.databases)
        if not names:
            return Text("The backup's databases are read from the dump as it streams.", style="dim")
        return Text("Databases in the cluster's manifest: " + ", ".join(names), style="dim")

    # --- navigation ---------------------------------------------------------------------------
    def _show_step(self) -> None:
        self.query_one("#steps", Static).update(self._steps_text())
        self.query_one(ContentSwitcher).current = f"step-{STEPS[self.step]}"
        back, nxt = self.query_one("#back", Button), self.query_one("#next", Button)
        back.display = 0 < self.step < 4
        nxt.display = not self.running
        nxt.label = {3: "Restore", 4: "Close"}.get(self.step, "Next")
        nxt.variant = "error" if self.step == 3 else "primary"
        if self.step == 1:
            self.set_focus(self.query_one("#targets", OptionList))
        elif self.step == 3:
            self._fill_summary()
        else:
            self.set_focus(nxt)

    @on(Button.Pressed, "#next")
    def action_next(self) -> None:
        if self.running:
            return
        if self.step == 4:
            self._leave()
            return
        problem = self._check_step()
        if problem:
            self.notify(problem, severity="error", markup=False)
            return
        self.step += 1
        self._show_step()
        if self.step == 4:
            self._start()

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        if self.running or self.step in (0, 4):
            return
        self.step -= 1
        self._show_step()

    def action_leave(self) -> None:
        if self.running:
            self.action_cancel_restore()
        else:
            self._leave()

    def _leave(self) -> None:
        # Once only: a second Enter or Escape queued before the pop would otherwise pop
        # the clusters screen under this one, the app's first screen.
        if self.is_current:
            self.app.pop_screen()

    def _check_step(self) -> str | None:
        """Why the current step cannot be left forward, or None."""
        if self.step == 1:
            try:
                self.target = self._chosen_target()
            except PgdeckError as exc:
                return str(exc)
            if self.target is None:
                return "choose a target, or type a DSN"
            checked = self.preflight.get(self.target.display)
            if checked is None:
                self._check_target()
                return f"checking {self.target.display} first: Next once its findings show"
            if checked.error or not all(ok for _, ok, _ in checked.findings):
                return f"{self.target.display} did not pass its checks; choose another target"
            if checked.production and not self.target.production:
                # Production by identity, not by spelling: the confirmation follows the server.
                self.target = dataclasses.replace(
                    self.target, production=True, name=checked.production
                )
        elif self.step == 2:
            try:
                self.scope = self._chosen_scope()
            except PgdeckError as exc:
                return str(exc)
            try:
                self.jobs = parse_jobs(self.query_one("#jobs", Input).value)
            except PgdeckError as exc:
                self.set_focus(self.query_one("#jobs", Input))
                return f"data sessions: {exc}"
        elif self.step == 3:
            assert self.target is not None
            if self.target.production:
                typed = self.query_one("#confirm-name", Input).value.strip()
                if typed != self.target.name:
                    return f"type {self.target.name!r} to restore into this production target"
        return None

    # --- target -------------------------------------------------------------------------------
    def _chosen_target(self) -> ResolvedTarget | None:
        from services.target import resolve_target

        option_list = self.query_one("#targets", OptionList)
        index = option_list.highlighted
        if index is None:
            return None
        option = option_list.get_option_at_index(index)
        if option.id == DSN_OPTION:
            dsn = self.query_one("#dsn", Input).value.strip()
            return resolve_target(dsn, self.catalog.config) if dsn else None
        return resolve_target(option.id or "", self.catalog.config)

    @on(OptionList.OptionHighlighted, "#targets")
    def _target_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        typed = event.option.id == DSN_OPTION
        self.query_one("#dsn", Input).display = typed
        if typed:
            self.query_one("#preflight", Static).update("")
            self.set_focus(self.query_one("#dsn", Input))
            return
        self._check_target()

    @on(Input.Submitted, "#dsn")
    def _dsn_submitted(self) -> None:
        self._check_target()

    def _check_target(self) -> None:
        try:
            target = self._chosen_target()
        except PgdeckError as exc:
            self.query_one("#preflight", Static).update(Text(f"✗ {exc}", style="red"))
            return
        if target is None:
            return
        self.query_one("#preflight", Static).update(
            Text(f"checking {target.display} ...", style="cyan")
        )
        self.run_preflight(target)

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def run_preflight(self, target: ResolvedTarget) -> None:
        from services.target import identify, production_twin, run_preflight

        try:
            result = run_preflight(target, None, drop_existing=False)
            identity = identify(target)
            twin, notes = production_twin(target, identity, self.catalog.config)
        except Exception as exc:
            self.post_message(PreflightChecked(target.display, [], str(exc)))
            return
        findings = list(result.findings)
        findings.append(
            ("server", True, f"{identity.display}, system identifier {identity.system_identifier}")
        )
        if twin is not None and twin.name != target.name:
            findings.append(
                ("production", True, f"this is the server of production target {twin.name!r}")
            )
        findings += [("production check", True, note) for note in notes]
        user_dbs = sorted(result.facts.databases - {"postgres", "template0", "template1"})
        findings.append(
            (
                "databases there",
                True,
                ", ".join(user_dbs) if user_dbs else "none but postgres and the templates",
            )
        )
        self.post_message(
            PreflightChecked(
                target.display,
                findings,
                production=twin.name if twin is not None else None,
                identity=identity,
            )
        )

    def on_preflight_checked(self, message: PreflightChecked) -> None:
        self.preflight[message.target] = message
        try:
            current = self._chosen_target()
        except PgdeckError:
            current = None
        if current is None or current.display != message.target:
            return  # the user has moved on to another target
        text = Text()
        if message.error:
            text.append(f"✗ {message.error}", style="bold red")
        for name, ok, detail in message.findings:
            text.append("✓ " if ok else "✗ ", style="green" if ok else "bold red")
            text.append(f"{name}: ", style="bold")
            text.append(f"{detail}\n")
        self.query_one("#preflight", Static).update(text)

    # --- scope --------------------------------------------------------------------------------
    @on(RadioSet.Changed, "#scope-kind")
    def _scope_kind(self, event: RadioSet.Changed) -> None:
        box = self.query_one("#databases", Input)
        box.disabled = event.pressed.id != "chosen"
        if not box.disabled:
            box.focus()

    @staticmethod
    def _jobs_note(value: str) -> tuple[Text, bool]:
        """Beside the data sessions field: what it does, or why its value cannot be; and
        whether it can be."""
        try:
            n = parse_jobs(value)
        except PgdeckError as exc:
            return Text(f"✗ {exc}", style="bold red"), False
        if n == 1:
            return Text("one session loads everything", style="dim"), True
        return Text(f"{n} sessions load table data at once", style="dim"), True

    @on(Input.Changed, "#jobs")
    def _jobs_changed(self, event: Input.Changed) -> None:
        note, ok = self._jobs_note(event.value)
        event.input.set_class(not ok, "-invalid")
        self.query_one("#jobs-note", Static).update(note)

    def _chosen_scope(self) -> Scope:
        from services.errors import UsageError

        names: list[str] = []
        if self.query_one("#chosen", RadioButton).value:
            raw = self.query_one("#databases", Input).value
            names = [n.strip() for n in raw.replace(" ", ",").split(",") if n.strip()]
            if not names:
                raise UsageError("name at least one database, or restore the whole cluster")
        pressed = self.query_one("#roles", RadioSet).pressed_button
        roles = (pressed.id or "roles-no-passwords").removeprefix("roles-") if pressed else None
        return Scope.parse(names, roles)

    # --- confirmation -----------------------------------------------------------------------
    def _fill_summary(self) -> None:
        assert self.target is not None and self.scope is not None
        t, s, b = self.target, self.scope, self.backup
        text = Text()
        text.append("Restore  ", style="bold")
        text.append(f"{s.describe()}\n")
        text.append("from     ", style="bold")
        text.append(
            f"{b.url}\n         {b.time.astimezone():%a %d %b %Y %H:%M %Z}, {present.size(b.size)}\n"
        )
        text.append("into     ", style="bold")
        checked = self.preflight.get(t.display)
        server = checked.identity.display if checked and checked.identity else t.display
        text.append(f"{server} ({t.name})")
        if t.production:
            text.append("  PRODUCTION", style="bold red reverse")
        text.append("\n")
        text.append("roles    ", style="bold")
        text.append(f"{s.roles}\n")
        options = [
            label
            for label, widget in (
                ("verify the backup first", "#verify-first"),
                ("drop existing databases", "#drop-existing"),
                ("thorough validation", "#thorough"),
                ("on failure, drop what it created", "#on-failure-drop"),
            )
            if self.query_one(widget, Checkbox).value
        ]
        text.append("sessions ", style="bold")
        text.append(
            f"{self.jobs} loading table data at once\n"
            if self.jobs > 1
            else "1 (everything on one session)\n"
        )
        text.append("options  ", style="bold")
        text.append((", ".join(options) or "none") + "\n\n")
        if self.query_one("#drop-existing", Checkbox).value:
            text.append("Existing databases of the same names will be DROPPED.\n", style="bold red")
        text.append("Nothing has been written yet. ", style="dim")
        text.append("Restore", style="bold")
        text.append(" starts; esc leaves.", style="dim")
        self.query_one("#summary", Static).update(text)
        box = self.query_one("#confirm-name", Input)
        box.display = t.production
        if t.production:
            box.value = ""
            box.placeholder = f"this is a production target: type {t.name} to confirm"
            self.set_focus(box)
        else:
            self.set_focus(self.query_one("#next", Button))

    @on(Input.Submitted, "#confirm-name")
    def _confirm_submitted(self) -> None:
        self.action_next()

    # --- the run ------------------------------------------------------------------------------
    def _start(self) -> None:
        from services.restore_flow import RestoreRequest

        assert self.target is not None and self.scope is not None
        self.running = True
        self.query_one("#cancel", Button).display = True
        self._show_step()
        self.app.refresh_bindings()
        checked = self.preflight.get(self.target.display)
        typed = self.query_one("#confirm-name", Input).value.strip()
        self.run_restore(
            RestoreRequest(
                backup=self.backup.url,
                target=self.target,
                scope=self.scope,
                verify_first=self.query_one("#verify-first", Checkbox).value,
                drop_existing=self.query_one("#drop-existing", Checkbox).value,
                thorough=self.query_one("#thorough", Checkbox).value,
                on_failure="drop" if self.query_one("#on-failure-drop", Checkbox).value else "keep",
                production_confirmed=typed if self.target.production else None,
                identity=checked.identity if checked is not None else None,
                jobs=self.jobs,
            )
        )

    @work(thread=True, exclusive=True, group="restore", exit_on_error=False)
    def run_restore(self, request: RestoreRequest) -> None:
        from services.restore_flow import ReportNotArchived, run_restore

        worker = get_current_worker()
        cancel = self._cancel

        def on_event(event: RestoreEvent) -> None:
            # Called from the engine's threads: the worker's own cancel (the screen or the
            # app going away) reaches the flow at the next event.
            if worker.is_cancelled and not cancel.cancelled:
                cancel.cancel()
            self.post_message(RestoreProgressed([event]))

        report: RestoreReport | None = None
        error: str | None = None
        try:
            report = run_restore(
                request,
                on_event,
                config=self.catalog.config,
                resolve=self.catalog.resolve,
                cancel=cancel,
                clock=self.catalog.clock,
            )
        except ReportNotArchived as exc:  # the restore happened; the archive failed: say so
            report, error = exc.report, f"the report could not be archived: {exc}"
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        finally:
            # Whatever happened, the screen learns that the run is over.
            self.post_message(RestoreFinished(report, error))

    def on_restore_progressed(self, message: RestoreProgressed) -> None:
        lines = []
        for event in message.events:
            if isinstance(event, RestoreProgress | VerifyProgress):
                self._progress(event)
                continue
            line = event_line(event)
            if line is not None:
                lines.append(line)
        if lines:
            self.query_one("#run-log", Log).write_lines(lines)

    def _progress(self, p: RestoreProgress | VerifyProgress) -> None:
        if p.total:
            self.query_one("#bar", ProgressBar).update(total=p.total, progress=p.read)
        self.query_one("#run-status", Static).update(progress_text(p, sessions=False))
        if isinstance(p, RestoreProgress) and self.jobs > 1:
            self._show_sessions(p)

    def _show_sessions(self, p: RestoreProgress) -> None:
        """``--jobs N``: a line per data session loading, at most SESSION_LINES of them so
        that the live log keeps its height at 80x24."""
        panel = self.query_one("#sessions", Static)
        panel.display = True
        text = Text()
        for line, loading in session_lines(p.sessions, self.jobs, SESSION_LINES):
            # A sign as well as a style: loading and idle read apart without colour.
            text.append(f"{'▸' if loading else '·'} {line}\n", style="cyan" if loading else "dim")
        text.rstrip()
        panel.update(text)

    def on_restore_finished(self, message: RestoreFinished) -> None:
        if self.exit_when_done:  # quit or a signal: the report is archived, now leave
            code = getattr(self.app, "exit_code", None) or 0
            if message.error:  # its report could not be archived: said once the screen is gone
                self.app.exit(
                    return_code=code or 1, message=Text(safe_text(f"pgdeck: {message.error}"))
                )
            else:
                self.app.exit(return_code=code)
            return
        self.running = False
        self.finished = True
        self.query_one("#cancel", Button).display = False
        self.query_one("#sessions", Static).display = False
        self._show_step()
        self.app.refresh_bindings()
        result = self.query_one("#result", Static)
        if message.report is None:
            result.update(Text(f"✗ restore failed: {message.error}", style="bold red"))
            self.notify(message.error or "restore failed", severity="error", markup=False)
            return
        result.update(result_text(message.report))
        r = message.report
        severity = "information" if r.status == "succeeded" else "error"
        self.notify(f"restore {r.status} in {r.ttr_seconds:.1f} s", severity=severity)
        if message.error:  # the run ended, but its report could not be archived
            self.notify(message.error, severity="error", markup=False, timeout=30)

    def cancel_now(self) -> None:
        """Stop the run: the engine cancels what runs on the server and ends the report as
        cancelled. The cancel request is a network round trip: it is sent from a thread,
        never from the event loop."""
        threading.Thread(target=self._cancel.cancel, name="cancel-restore", daemon=True).start()

    def action_cancel_restore(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes and self.running:
                self.cancel_now()
                self.query_one("#run-status", Static).update(Text("cancelling ...", style="yellow"))

        self.app.push_screen(
            ConfirmScreen(
                "Cancel the restore? The table being loaded is rolled back; what was already written stays on the target.",
                yes="Cancel the restore",
                no="Keep restoring",
            ),
            answer,
        )

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel_restore()


def _display(config: Config, name: str) -> str:
    """A configured target as user@host:port/db, never with its password."""
    from services.target import resolve_target

    try:
        return resolve_target(name, config).display
    except PgdeckError as exc:
        return f"(unusable: {exc})"
