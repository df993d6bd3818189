"""What every command shows and returns: the exit codes, the error line on stderr, JSON on
stdout, plain tables, and the progress bar of long work on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from services.catalog import CatalogProgress
from services.jsonable import to_json
from services.text import safe_text

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def err(text: str) -> None:
    # Messages quote names, keys and log lines from outside: never a live escape sequence.
    print(safe_text(text, keep="\t\n"), file=sys.stderr, flush=True)


def print_json(value: Any) -> None:
    """``value`` alone on stdout, in its one JSON form (``services.jsonable``)."""
    json.dump(to_json(value), sys.stdout, indent=2)
    sys.stdout.write("\n")


def table(headers: list[str], rows: list[list[str]]) -> None:
    # Cells hold names, keys and database names from outside: control characters escaped.
    rows = [[safe_text(str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, r, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*headers).rstrip())
    for r in rows:
        print(fmt.format(*r).rstrip())


class Progress:
    """A transient progress bar on a terminal; silence otherwise (logs stay clean).

    Catalog refreshes report steps (``CatalogProgress``), streams report bytes
    (``StreamProgress``); one bar shows either.
    """

    def __init__(self, stream: TextIO, label: str = "reading", *, in_bytes: bool = False) -> None:
        self.stream, self.label, self.in_bytes = stream, safe_text(label), in_bytes
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[Any], None]:
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            columns: tuple[Any, ...] = (
                (DownloadColumn(), TransferSpeedColumn())
                if self.in_bytes
                else (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            )
            self._rich = Progress(
                TextColumn("{task.description}"),
                *columns,
                console=Console(file=self.stream),
                transient=True,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=None)
        return self.update

    def update(self, p: Any) -> None:
        if self._rich is None:
            return
        if isinstance(p, CatalogProgress):
            label = {"kubernetes": "Kubernetes", "storage": "listing backups"}.get(p.stage, p.stage)
            self._rich.update(
                self._task, description=label, completed=p.done, total=p.total or None
            )
        else:
            self._rich.update(
                self._task, completed=p.compressed_read, total=p.compressed_total or None
            )

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
