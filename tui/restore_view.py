"""A restore presented: its event lines, its progress and its summary, written once for the
command line and the console's wizard (one event model, one presenter of its words).

On a terminal the command line shows a progress bar with ETA and the log; otherwise plain
lines (CI logs, cron mails). The wizard shows the same lines in its log, the progress in
its status line and the summary as its result. Names and server messages come from the
backup: every line is escaped, never a terminal's control sequence.
"""

from __future__ import annotations

from typing import Any, TextIO

import humanize
from rich.text import Text

from services.report import RestoreReport
from services.restore_events import (
    BackupIntact,
    ProductionRecognised,
    RestoreEvent,
    RestoreLog,
    RestorePhase,
    RestoreProgress,
    SessionProgress,
    TableLoaded,
    VerifyProgress,
)
from services.text import safe_text
from tui import present


# --- words shared by both presenters ------------------------------------------------------
def event_line(event: RestoreEvent) -> str | None:
    """The log line of an event, or None for those that are progress, not log."""
    if isinstance(event, RestoreLog):
        line = f"{event.source}: {event.level}: {event.text}"
    elif isinstance(event, RestorePhase):
        if event.state != "finished":
            return None
        line = f"phase {event.name}: {event.seconds or 0:.2f} s"
    elif isinstance(event, TableLoaded):
        line = f"loaded {event.database}.{event.table}: {event.rows:,} rows"
    elif isinstance(event, ProductionRecognised):
        line = (
            f"pgdeck: {event.server} is the server of production target {event.name!r} "
            f"(system identifier {event.system_identifier}; a clone made from it by a "
            "base backup shares it too)"
        )
    elif isinstance(event, BackupIntact):
        line = f"pgdeck: {event.url}: intact ({event.tables} tables), restoring"
    else:
        return None
    return safe_text(line)


def incomplete_lines(report: RestoreReport) -> list[str]:
    """A failed or cancelled restore's databases: created and left incomplete, or dropped."""
    lines = []
    if report.databases_left:
        lines.append(
            "left incomplete on the target (created by this restore): "
            + ", ".join(report.databases_left)
            + "; drop them, or restore again with --drop-existing"
        )
    if report.databases_dropped:
        lines.append("dropped again (--on-failure drop): " + ", ".join(report.databases_dropped))
    return lines


def _validation_parts(report: RestoreReport) -> list[tuple[str, bool | None]]:
    """The validation line in parts: (text, passed) for the verdicts, (text, None) between."""
    v = report.validation
    if v is None:
        return []
    return [
        ("completeness ", None),
        ("passed" if v.completeness_passed else "FAILED", v.completeness_passed),
        (f" ({len(v.tables)} tables), integrity ", None),
        ("passed" if v.integrity_passed else "FAILED", v.integrity_passed),
        (f" ({len(v.foreign_keys)} foreign keys, {len(v.checks)} checks)", None),
    ]


def summary_lines(report: RestoreReport) -> list[str]:
    """The command line's summary, after the run."""
    out = [
        f"restore {report.status}: {report.backup} -> {report.target} in {report.ttr_seconds:.1f} s"
    ]
    parts = _validation_parts(report)
    if parts:
        out.append("  " + "".join(text for text, _ in parts))
    if report.error:
        out.append(f"  error: {report.error}")
    out += [f"  {line}" for line in incomplete_lines(report)]
    if report.archived:
        out.append(f"  report: {report.archived['markdown']}")
    return [safe_text(line) for line in out]


def result_text(r: RestoreReport) -> Text:
    """The wizard's summary, after the run."""
    ok = r.status == "succeeded"
    text = Text()
    text.append(
        f"{'✓' if ok else '✗'} restore {r.status}", style="bold green" if ok else "bold red"
    )
    text.append(f" in {r.ttr_seconds:.1f} s (time to restore)\n")
    for phase in r.phases:
        text.append(f"  {safe_text(phase.name)}: {phase.seconds:.2f} s\n", style="dim")
    parts = _validation_parts(r)
    for part, passed in parts:
        text.append(part, style="" if passed is None else ("green" if passed else "bold red"))
    if parts:
        text.append("\n")
    if r.error:
        text.append(f"error: {safe_text(r.error)}\n", style="red")
    text.append("".join(line + "\n" for line in incomplete_lines(r)), style="bold red")
    for w in r.warnings:
        text.append(f"warning: {safe_text(w)}\n", style="yellow")
    if r.archived:
        text.append(f"report: {r.archived['markdown']}\n")
    return text


def session_part(s: SessionProgress) -> str:
    """A data session's table and how far it is: ``public.orders 45%`` (once the table's
    rows are all read), ``public.items 3 MiB`` (sent so far), or the table alone."""
    if s.total:
        return f"{s.table} {int(100 * s.done / s.total)}%"
    return f"{s.table} {present.size(s.done)}" if s.done else s.table


def sessions_text(p: RestoreProgress) -> str:
    """``--jobs N``: what each data session loads, on one line, e.g. ``2 sessions:
    public.orders 45%, public.items 3 MiB``."""
    if not p.sessions:
        return ""
    n = len(p.sessions)
    parts = ", ".join(session_part(s) for s in p.sessions)
    return safe_text(f"{n} session{'s' if n != 1 else ''}: {parts}")


def session_lines(
    sessions: tuple[SessionProgress, ...], jobs: int, limit: int
) -> list[tuple[str, bool]]:
    """``--jobs N``: the wizard's panel, a line per data session loading (``session 2
    public.orders 45%``), then how many wait idle; at most ``limit`` lines, the sessions
    past them folded into the last one. Each line with whether it is of sessions loading."""
    lines = [f"session {s.session:<2} {session_part(s)}" for s in sessions]
    if len(lines) > limit:
        rest = sessions[limit - 1 :]
        lines[limit - 1 :] = [
            f"+ {len(rest)} more loading: " + ", ".join(session_part(s) for s in rest)
        ]
    out = [(safe_text(line), True) for line in lines]
    idle = jobs - len(sessions)
    if idle > 0 and len(out) < limit:
        out.append((f"{idle} of {jobs} session{'s' if jobs != 1 else ''} idle", False))
    return out


def progress_text(p: RestoreProgress | VerifyProgress, *, sessions: bool = True) -> Text:
    """The console's status line while the backup streams; ``sessions``: what each data
    session loads too (the wizard shows them on lines of their own)."""
    text = Text()
    text.append(f"{present.size(p.read)} of {present.size(p.total)}", style="bold")
    if isinstance(p, VerifyProgress):
        text.append("  verifying the backup before writing anything", style="cyan")
        return text
    if p.rate:
        text.append(f"  {present.size(int(p.rate))}/s")
    if p.eta is not None:
        text.append(f"  about {present.duration(p.eta)} left")
    where = safe_text(" ".join(x for x in (p.database, p.table) if x))
    if where:
        text.append(f"  loading {where}", style="cyan")
        if p.rows:
            text.append(f" ({p.rows:,} rows)")
    if sessions and p.sessions:
        text.append(f"  {sessions_text(p)}", style="cyan")
    return text


# --- the command line -----------------------------------------------------------------------
class RestoreView:
    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.live = stream.isatty()
        self._rich: Any = None
        self._task: Any = None
        self._console: Any = None
        self._last_pct = -10

    def __enter__(self) -> RestoreView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def _start_bar(self) -> None:
        """The bar appears once the backup is read: what comes before (a catalog refresh
        with its own bar, a question to answer) has the terminal to itself."""
        if not self.live or self._rich is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._console = Console(file=self.stream, highlight=False)
        self._rich = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._rich.start()
        self._task = self._rich.add_task("preflight", total=None)

    def _print(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def on_event(self, event: RestoreEvent) -> None:
        if isinstance(event, RestorePhase | RestoreProgress | VerifyProgress):
            self._start_bar()
        if isinstance(event, RestoreProgress):
            self._progress(event)
            return
        if isinstance(event, VerifyProgress):
            if self._rich is not None:
                self._rich.update(
                    self._task,
                    description=safe_text(f"verifying {event.url}")[:50],
                    completed=event.read,
                    total=event.total or None,
                )
            return
        if isinstance(event, RestoreLog):
            if event.level == "info" and event.source == "server" and self.quiet:
                return
            if event.level == "error" and event.source == "pgdeck" and not self.quiet:
                return  # the summary ends with it: one line, not two
        elif isinstance(event, TableLoaded) and (self.live or self.quiet):
            return
        line = event_line(event)
        if line is not None:
            self._print(line)

    def _progress(self, event: RestoreProgress) -> None:
        where = f"{event.database or ''} {event.table or ''} {event.rows:,} rows".strip()
        lanes = sessions_text(event)
        if self._rich is not None:
            self._rich.update(
                self._task,
                description=(lanes or where)[:60],
                completed=event.read,
                total=event.total or None,
            )
        elif event.total:
            pct = int(100 * event.read / event.total)
            if pct >= self._last_pct + 10:
                self._last_pct = pct
                eta = f", about {humanize.naturaldelta(event.eta)} left" if event.eta else ""
                self._print(
                    safe_text(
                        f"restore: {pct}% ({humanize.naturalsize(event.read, binary=True)}{eta}) {where}"
                        + (f"; {lanes}" if lanes else "")
                    )
                )

    def summary(self, report: RestoreReport) -> None:
        for line in summary_lines(report):
            print(line, file=self.stream)
