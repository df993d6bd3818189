"""The console with hostile input, driven by Textual's pilot against moto's S3 server and
the fake Kubernetes API: names, keys and log lines with escape sequences are shown as
text and never reach the terminal; a future-dated backup is flagged in the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Log, Static

from sandbox import kube as ko
from services.catalog import Catalog
from services.config import load_config
from tests.conftest import seed, storage_config
from tui.app import PgdeckApp
from tui.screens.timeline import TimelineScreen
from widgets.cluster_table import ClusterTable

NOW = datetime(2026, 11, 20, 12, 20, tzinfo=UTC)
TOP = NOW.replace(minute=0)
H = timedelta(hours=1)
UID = "0f100000-0000-4000-8000-000000000001"
HOSTILE = "pg_dumpall: error: \x1b]0;pwned\x07\x1b]52;c;ZWNobyBvd25lZA==\x07\x9b2J done"
SHOWN = "pg_dumpall: error: \\x1b]0;pwned\\x07\\x1b]52;c;ZWNobyBvd25lZA==\\x07\\x9b2J done"
EVIL_NAME = "acid-\x1b]0;pwned\x07"
RAW_SEQUENCES = ("\x1b]", "\x9b", "\x07")


def key(cluster: str, epoch: int, uid: str = UID) -> str:
    return f"spilo/{cluster}/{uid}/logical_backups/{epoch}.sql.gz"


def terminal_output(app: App[Any]) -> str:
    """What the driver writes to the terminal for a full repaint of the current screen."""
    return app.screen._compositor.render_full_update().render_segments(app.console)


async def settle(pilot: Any, until: Any, tries: int = 100) -> None:
    """Let workers deliver, until ``until()`` holds (a worker's message may start another)."""
    for _ in range(tries):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if until():
            return
    raise AssertionError("the screen never showed what was expected")


@pytest.fixture
def hostile_world(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str
) -> tuple[Catalog, str, str]:
    """acid-shop: hourly backups and one dated two days ahead, its newest Job failed
    with the hostile log line; a storage-only cluster whose name carries an OSC."""
    pg = ko.postgresql("acid-shop", "shop", uid=UID, created=NOW - 3 * 24 * H)
    cj = ko.cronjob(pg, last_schedule=TOP, last_successful=TOP - H)
    job = ko.job(cj, started=TOP, succeeded=False, reason="BackoffLimitExceeded")
    pod = ko.pod(job, started=TOP, finished=TOP + timedelta(minutes=1), exit_code=1)
    kube.add(pg, cj, job, pod)
    kube.set_log("shop", pod["metadata"]["name"], f"starting\n{HOSTILE}\n")
    future = key("acid-shop", int((NOW + 48 * H).timestamp()))
    seed(
        bucket, {key("acid-shop", int((TOP - h * H).timestamp()) + 60): 4096 for h in range(1, 30)}
    )
    seed(bucket, {future: 4096, key(EVIL_NAME, int((NOW - H).timestamp())): 4096})
    config = storage_config(
        tmp_path, bucket, s3_endpoint, kubernetes={"kubeconfig": str(kubeconfig)}
    )
    catalog = Catalog(load_config(str(config)), clock=lambda: NOW)
    return catalog, job["metadata"]["name"], f"s3://{bucket}/{future}"


@pytest.mark.asyncio
async def test_the_console_shows_hostile_names_and_log_lines_as_text_never_as_sequences(
    hostile_world: tuple[Catalog, str, str],
) -> None:
    catalog, job_name, future_url = hostile_world
    app = PgdeckApp(catalog)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(ClusterTable)
        evil_row = f"//{EVIL_NAME}"
        await settle(pilot, lambda: evil_row in table.rows and not app.screen.workers)
        assert str(table.get_cell(evil_row, "name")) == "acid-\\x1b]0;pwned\\x07"
        out = terminal_output(app)
        assert "acid-\\x1b]0;pwned\\x07" in out
        assert not any(seq in out for seq in RAW_SEQUENCES)

        summary = next(s for s in catalog.state.clusters if s.cluster.name == "acid-shop")
        # The latest backup the clusters screen offers to restore is not the future one.
        assert summary.last_backup is not None and summary.last_backup.url != future_url
        app.push_screen(TimelineScreen(catalog, summary, select_job=job_name))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        log = screen.query_one("#log", Log)
        await settle(pilot, lambda: "--- end of log ---" in log.lines)
        assert SHOWN in log.lines
        assert not any(seq in line for line in log.lines for seq in RAW_SEQUENCES)
        out = terminal_output(app)
        assert "\\x1b]52;c;ZWNobyBvd25lZA==" in out  # the log panel shows it, as text
        assert not any(seq in out for seq in RAW_SEQUENCES)

        backups = screen.query_one("#backups", DataTable)
        assert str(backups.get_cell(future_url, "note")) == "✗ future-dated: never latest"
        others = [str(backups.get_cell(row, "note")) for row in backups.rows if row != future_url]
        assert "✗ future-dated: never latest" not in others

        screen.notify(HOSTILE, title=EVIL_NAME, markup=False)  # an error quoting a log line
        await pilot.pause()
        shown = list(app._notifications)[-1]
        assert (shown.message, shown.title) == (SHOWN, "acid-\\x1b]0;pwned\\x07")


class _Raw(App[None]):
    """The widgets pgdeck uses, fed the hostile line as it is."""

    def compose(self) -> ComposeResult:
        yield Log(id="log")
        yield DataTable(id="table")
        yield Static(Text(HOSTILE), id="static")

    def on_mount(self) -> None:
        self.query_one(Log).write_line(HOSTILE)
        table = self.query_one(DataTable)
        table.add_column("cell")
        table.add_row(Text(HOSTILE))


@pytest.mark.asyncio
async def test_textual_widgets_pass_escape_sequences_through_so_pgdeck_neutralizes_first() -> None:
    """Why every edge calls ``safe_text``: Textual 8's Log replaces only \\x00-\\x14 (ESC is
    \\x1b), and DataTable and Static render Rich Text, which strips only BEL, BS, VT, FF
    and CR, so an OSC or a C1 CSI given to them reaches the terminal. Should Textual start
    neutralizing them itself, this fails and the calls stay harmless."""
    app = _Raw()
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        out = terminal_output(app)
    assert out.count("\x1b]0;pwned") == 3 and "\x9b2J" in out
