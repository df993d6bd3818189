"""The archive: earlier reviews and restore reports, newest first; one opens as its Markdown.

Everything is read in workers through ``services.archive`` (a local directory or an S3
archive alike); reports of processes that are gone are completed as ``interrupted`` first.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Markdown, Static

from services.archive import ArchivedItem, describe, open_archive, recover_quietly
from services.catalog import Catalog
from services.config import Config
from services.errors import PgdeckError, unexpected
from services.text import safe_text
from tui import glyphs
from tui.messages import ArchiveListed, ArchiveReportRead, ServiceFailed
from widgets.fitting_table import FittingTable
from widgets.key_footer import KeyFooter

OUTCOME_STYLES = {
    "succeeded": "green",
    "failed": "bold red",
    "interrupted": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
}


def item_row(item: ArchivedItem) -> tuple[str, str, Text, str]:
    """(when, kind, outcome, what) of a report, from its (untrusted) JSON."""
    doc = item.document
    if item.kind == "review":
        signed, counts = _mapping(doc.get("signed_off")), _mapping(doc.get("summary"))
        when = signed.get("at") or _mapping(doc.get("window")).get("end")
        outcome = Text(glyphs.severity_counts(counts))
        what = f"signed off by {signed.get('reviewer') or '-'}"
    else:
        when = doc.get("started_at")
        status = str(doc.get("status") or "?")
        outcome = Text(safe_text(status), style=OUTCOME_STYLES.get(status, ""))
        backup = str(doc.get("backup") or "").rsplit("/", 4)
        cluster = backup[-4] if len(backup) >= 4 else backup[-1]
        what = f"{cluster} to {doc.get('target_name') or doc.get('target') or '?'}"
    stamp = str(when or "")[:16].replace("T", " ")
    return stamp, item.kind, outcome, what


def _sort_key(item: ArchivedItem) -> str | None:
    """The newest-first key of a report, None when its row cannot be made."""
    try:
        return f"{item_row(item)[0]} {item.name}"
    except Exception as exc:
        logging.getLogger(__name__).warning("%s left out: %r", item.url, exc)
        return None


class ArchiveScreen(Screen[None]):
    AUTO_FOCUS = "#items"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("enter", "open", "Open", id="open", tooltip="Show the report"),
        Binding("ctrl+r", "reload", "Reload", id="reload", tooltip="Read the archive again"),
    ]

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog
        self.items: dict[str, ArchivedItem] = {}
        self.shown: str | None = None  # the location whose Markdown is on screen

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the archive ...", id="status")
        yield FittingTable(id="items", cursor_type="row")
        with VerticalScroll(id="viewer"):
            yield Markdown("", id="report")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "archive: reviews and restore reports"
        table = self.query_one("#items", DataTable)
        for key, label in (
            ("when", "When (UTC)"),
            ("kind", "Kind"),
            ("outcome", "Outcome"),
            ("what", "What"),
        ):
            table.add_column(label, key=key)
        self.load()

    def action_reload(self) -> None:
        self.query_one("#status", Static).update("reading the archive ...")
        self.load()

    @work(thread=True, exclusive=True, group="archive", exit_on_error=False)
    def load(self) -> None:
        try:
            archive = open_archive(self.catalog.config, self.catalog.clock)
            recovered = recover_quietly(archive)
            items = archive.list("review") + archive.list("restore")
            # A report whose row cannot be made is left out, not every report with it.
            keyed = [(key, item) for item in items if (key := _sort_key(item)) is not None]
        except PgdeckError as exc:
            self.post_message(ServiceFailed("archive", exc.message))
            return
        except Exception as exc:  # never leave "reading the archive ..." standing
            self.post_message(ServiceFailed("archive", unexpected(exc)))
            return
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        items = [item for _, item in keyed]
        self.post_message(ArchiveListed(items, archive.where, len(recovered)))

    def on_archive_listed(self, message: ArchiveListed) -> None:
        table = self.query_one("#items", DataTable)
        if table.row_count:
            table.clear()
        self.items = {item.location: item for item in message.items}
        for item in message.items:
            # Cells as Text, never markup: names come from the archive (a typed reviewer's
            # name, a cluster's key) and a "[" there must stay a "[".
            table.add_row(
                *(c if isinstance(c, Text) else Text(safe_text(c)) for c in item_row(item)),
                key=item.location,
            )
        reviews = sum(1 for i in message.items if i.kind == "review")
        text = (
            f"{reviews} reviews and {len(message.items) - reviews} restore reports in "
            f"{message.where}"
        )
        if message.recovered:
            text += f"; {message.recovered} found interrupted and archived as such"
        if not message.items:
            text = f"nothing is archived in {message.where} yet"
        self.query_one("#status", Static).update(Text(text))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        location = self.query_one("#items", FittingTable).selected_key()
        item = self.items.get(location or "")
        if item is None:
            self.notify("nothing archived to open", severity="warning")
            return
        self.read(item.markdown)

    @work(thread=True, exclusive=True, group="archive-read", exit_on_error=False)
    def read(self, location: str) -> None:
        self.post_message(read_report(self.catalog.config, location))

    def on_archive_report_read(self, message: ArchiveReportRead) -> None:
        self.shown = message.location
        self.query_one("#report", Markdown).update(safe_text(message.markdown, keep="\t\n"))
        self.query_one("#viewer", VerticalScroll).scroll_home(animate=False)
        where = describe(self.catalog.config.archive)
        self.query_one("#status", Static).update(Text(safe_text(f"{message.location} in {where}")))

    def on_service_failed(self, message: ServiceFailed) -> None:
        self.query_one("#status", Static).update(Text(f"✗ {message.error}", style="bold red"))
        self.notify(message.error, title=f"{message.where} failed", severity="error", markup=False)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_report(config: Config, location: str) -> ArchiveReportRead | ServiceFailed:
    """A report of the archive, read (in a worker) for a screen to show, or why not."""
    try:
        data = open_archive(config).read(location)
    except PgdeckError as exc:
        return ServiceFailed("archive", exc.message)
    except Exception as exc:
        return ServiceFailed("archive", unexpected(exc))
    return ArchiveReportRead(location, data.decode("utf-8", errors="replace"))
