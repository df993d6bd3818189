"""The restore engine's events on a terminal: a progress bar with ETA and the log on a
TTY, plain lines otherwise (CI logs, cron mails). One event model, this presenter."""

from __future__ import annotations

from typing import Any, TextIO

import humanize

from services.report import RestoreReport
from services.restore import (
    RestoreDone,
    RestoreEvent,
    RestoreLog,
    RestorePhase,
    RestoreProgress,
    TableLoaded,
)
from services.text import safe_text
from tui.present import incomplete_lines


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
        if self.live:
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
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def _print(self, text: str) -> None:
        text = safe_text(text)  # names and server messages come from the backup
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def on_event(self, event: RestoreEvent) -> None:
        if isinstance(event, RestoreProgress):
            where = f"{event.database or ''} {event.table or ''} {event.rows:,} rows".strip()
            if self._rich is not None:
                self._rich.update(
                    self._task,
                    description=where[:50],
                    completed=event.read,
                    total=event.total or None,
                )
            elif event.total:
                pct = int(100 * event.read / event.total)
                if pct >= self._last_pct + 10:
                    self._last_pct = pct
                    eta = f", about {humanize.naturaldelta(event.eta)} left" if event.eta else ""
                    self._print(
                        f"restore: {pct}% ({humanize.naturalsize(event.read, binary=True)}{eta}) {where}"
                    )
        elif isinstance(event, RestoreLog):
            if event.level == "info" and event.source == "server" and self.quiet:
                return
            if event.level == "error" and event.source == "pgdeck" and not self.quiet:
                return  # the summary ends with it: one line, not two
            self._print(f"{event.source}: {event.level}: {event.text}")
        elif isinstance(event, RestorePhase):
            if event.state == "finished":
                self._print(f"phase {event.name}: {event.seconds:.2f} s")
        elif isinstance(event, TableLoaded):
            if not self.live and not self.quiet:
                self._print(f"loaded {event.database}.{event.table}: {event.rows:,} rows")
        elif isinstance(event, RestoreDone):
            pass

    def summary(self, report: RestoreReport) -> None:
        v = report.validation or {}
        out = [
            f"restore {report.status}: {report.backup} -> {report.target} in {report.ttr_seconds:.1f} s"
        ]
        if v:
            comp, integ = v["completeness"], v["integrity"]
            out.append(
                f"  completeness {'passed' if comp['passed'] else 'FAILED'} ({comp['tables_checked']} tables), "
                f"integrity {'passed' if integ['passed'] else 'FAILED'} "
                f"({len(integ['foreign_keys'])} foreign keys, {len(integ['checks'])} checks)"
            )
        if report.error:
            out.append(f"  error: {report.error}")
        out += [f"  {line}" for line in incomplete_lines(report)]
        if report.archived:
            out.append(f"  report: {report.archived['markdown']}")
        for line in out:
            print(safe_text(line), file=self.stream)
