"""The console's encryption check behind each refresh, driven by Textual's pilot against
moto's S3 server: the timeline shows what the cache knows in its first frame, and what the
check finds later reaches an open timeline."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from textual.message import Message
from textual.widgets import DataTable, Static

from services.catalog import Catalog
from services.storage import S3Store
from tests.conftest import iam_keys, moto_auth
from tests.flakyproxy import FlakyProxy
from tests.test_sse_check import Heads, make_catalog, plain_keys, seed_world
from tui.app import PgdeckApp
from tui.messages import EncryptionChecked, EncryptionKnown
from tui.screens.timeline import TimelineScreen

SSE_COLUMN = 6


def sse_cells(screen: TimelineScreen) -> list[str]:
    table = screen.query_one("#backups", DataTable)
    return [str(table.get_cell_at((r, SSE_COLUMN))) for r in range(table.row_count)]


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_first_cluster(pilot: Any) -> TimelineScreen:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TimelineScreen)
    return screen


def expected_cells(cluster: str) -> list[str]:
    plain = sum(1 for k in plain_keys() if f"/{cluster}/" in k)
    return sorted(["✗ none"] * plain + ["AES256"] * (6 - plain))


@pytest.mark.asyncio
async def test_the_timeline_shows_cached_encryption_in_its_first_frame(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    seed_world(bucket)
    first = make_catalog(tmp_path, bucket, s3_endpoint, Heads(s3_endpoint))
    first.refresh()
    assert first.check_new_sse().remaining == 0
    # A new process over that cache: no object needs a HEAD any more.
    heads = Heads(s3_endpoint)
    posted: list[Message] = []
    app = PgdeckApp(make_catalog(tmp_path, bucket, s3_endpoint, heads))
    async with app.run_test(size=(120, 40), message_hook=posted.append) as pilot:
        screen = await open_first_cluster(pilot)
        assert sorted(sse_cells(screen)) == expected_cells(screen.cluster.name)
    assert heads.keys == []
    # Drawn with the rows themselves: no later message filled the column.
    assert not [m for m in posted if isinstance(m, EncryptionKnown)]
    assert [m.result.checked for m in posted if isinstance(m, EncryptionChecked)][:1] == [0]


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FlakyProxy]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FlakyProxy(host, int(port)) as p:
        yield p


def through(cat: Catalog, proxy: FlakyProxy) -> Catalog:
    """``cat`` with its one location read through ``proxy`` (its cache's listing kept)."""
    cat.load_cached()
    loc = cat.locations()[0]
    cat._stores[loc.id] = S3Store(
        dataclasses.replace(loc.storage, endpoint_url=proxy.url), workers=4, timeout=1
    )
    return cat


@contextlib.contextmanager
def list_only(s3_endpoint: str, bucket: str) -> Iterator[Any]:
    """A client whose credentials may list the bucket but not read its objects (no HEAD),
    with moto's IAM checks on while in the block."""
    key_id, secret = iam_keys(s3_endpoint, f"lister-{bucket}", "s3:ListBucket")
    moto_auth(s3_endpoint, enforce=True)
    try:
        yield boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
    finally:
        moto_auth(s3_endpoint, enforce=False)


@pytest.mark.asyncio
async def test_the_check_behind_a_refresh_fills_an_open_timeline_and_says_a_failure(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    seed_world(bucket)
    make_catalog(tmp_path, bucket, s3_endpoint).refresh()  # listed before, nothing HEADed
    cat = make_catalog(tmp_path, bucket, s3_endpoint)
    cat.load_cached()
    loc = cat.locations()[0]
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(list_only(s3_endpoint, bucket))
        cat._stores[loc.id] = S3Store(loc.storage, client=client)
        app = PgdeckApp(cat)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            status = str(app.screen.query_one("#status", Static).render())
            assert f"encryption check stopped: s3://{bucket}/spilo/" in status
            assert "access denied" in status
            screen = await open_first_cluster(pilot)
            assert set(sse_cells(screen)) == {"?"}  # its own HEADs were refused too
            stack.close()  # objects may be read again: a refresh, and the check behind it
            await app.refresh_catalog().wait()
            await settle(pilot)
            assert sorted(sse_cells(screen)) == expected_cells(screen.cluster.name)
            await pilot.press("escape")
            await pilot.pause()
            status = str(app.screen.query_one("#status", Static).render())
            assert "encryption" not in status


@pytest.mark.asyncio
async def test_quitting_cancels_the_check_under_way(
    tmp_path: Path, bucket: str, s3_endpoint: str, proxy: FlakyProxy
) -> None:
    seed_world(bucket)
    make_catalog(tmp_path, bucket, s3_endpoint).refresh()
    cat = through(make_catalog(tmp_path, bucket, s3_endpoint, storage_timeout_seconds=30), proxy)
    proxy.stall_after(0, times=1000, match=b"HEAD ")
    posted: list[Message] = []
    app = PgdeckApp(cat)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        while not [w for w in app.workers if w.group == "sse-check"]:
            await pilot.pause(0.05)
        (check,) = [w for w in app.workers if w.group == "sse-check"]
        while proxy.stalls == 0:  # its HEADs are waiting on the silent endpoint
            await pilot.pause(0.05)
        app.exit()
    # Ended within its poll, not after the 30 s the stalled HEADs may wait; nothing said.
    assert check.is_cancelled and check.is_finished
    assert not [m for m in posted if isinstance(m, EncryptionChecked)]


@pytest.mark.asyncio
async def test_a_long_check_shows_its_progress_in_the_status_line_until_it_ends(
    tmp_path: Path, bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tui.app

    monkeypatch.setattr(tui.app, "SSE_PROGRESS_AFTER", 0.0)  # every check counts as long
    seed_world(bucket)
    app = PgdeckApp(make_catalog(tmp_path, bucket, s3_endpoint))
    shown: list[str] = []  # the status line as each end of the check arrives

    def hook(message: Message) -> None:
        if isinstance(message, EncryptionChecked):
            shown.append(str(app.screen.query_one("#status", Static).render()))

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await settle(pilot)
        assert shown[-1].endswith(" - encryption checked 12/12")  # the app's, then the screen's
        assert "encryption" not in str(app.screen.query_one("#status", Static).render())
