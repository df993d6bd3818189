"""The clusters screen driven by Textual's pilot, against the real test services."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import kube as ko
from services.catalog import Catalog
from services.config import CatalogConfig, Config, KubernetesConfig, StorageLocation
from tests.conftest import seed
from tui.app import PgdeckApp
from widgets.cluster_table import ClusterTable

UID = "0a100000-0000-4000-8000-000000000001"
T0 = int((datetime.now(UTC) - timedelta(hours=6)).timestamp())


def catalog(tmp_path: Path, kubeconfig: Path, bucket: str, endpoint: str) -> Catalog:
    return Catalog(
        Config(
            path=None,
            kubernetes=KubernetesConfig(kubeconfig=kubeconfig),
            storage=(StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=endpoint),),
            cache=tmp_path / "cache",
            catalog=CatalogConfig(workers=4),
        )
    )


@pytest.mark.asyncio
async def test_clusters_appear_and_a_refresh_updates_cells_in_place(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str
) -> None:
    kube.add(
        ko.postgresql("acid-tui", "shop", uid=UID, created=datetime.now(UTC) - timedelta(days=2))
    )
    seed(
        bucket,
        {
            f"spilo/acid-tui/{UID}/logical_backups/{T0 + h * 3600}.sql.gz": 1000 + h
            for h in range(5)
        },
    )
    seed(bucket, {f"spilo/acid-gone/{UID[:-1]}9/logical_backups/{T0}.sql.gz": 10})
    app = PgdeckApp(catalog(tmp_path, kubeconfig, bucket, s3_endpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ClusterTable)
        assert table.row_count == 2
        assert str(table.get_cell("test/shop/acid-tui", "count")) == "5"
        assert str(table.get_cell("//acid-gone", "status")) == "storage-only"
        table.move_cursor(row=1)
        seed(bucket, {f"spilo/acid-tui/{UID}/logical_backups/{T0 + 5 * 3600}.sql.gz": 2000})
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(table.get_cell("test/shop/acid-tui", "count")) == "6"
        assert table.row_count == 2 and table.cursor_coordinate.row == 1


@pytest.mark.asyncio
async def test_an_unreachable_api_is_a_notification_not_a_crash(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    from tests.fakekube import FakeKube, write_kubeconfig

    dead = FakeKube().start()
    kc = write_kubeconfig(tmp_path / "kc", {"prod": dead})
    dead.stop()
    seed(bucket, {f"spilo/acid-x/{UID}/logical_backups/{T0}.sql.gz": 5})
    app = PgdeckApp(catalog(tmp_path, kc, bucket, s3_endpoint))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one(ClusterTable).row_count == 1
        assert any("unreachable" in str(n.message) for n in app._notifications)


@pytest.mark.asyncio
async def test_slash_filters_as_you_type_and_s_sorts(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str
) -> None:
    for i, name in enumerate(("acid-zeta", "acid-alpha", "acid-mid")):
        uid = f"0a10000{i}-0000-4000-8000-000000000001"
        kube.add(ko.postgresql(name, "shop", uid=uid, created=datetime.now(UTC)))
        seed(
            bucket,
            {
                f"spilo/{name}/{uid}/logical_backups/{T0 + h * 3600}.sql.gz": 10
                for h in range(i + 1)
            },
        )
    app = PgdeckApp(catalog(tmp_path, kubeconfig, bucket, s3_endpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ClusterTable)
        assert table.row_count == 3
        await pilot.press("/")
        await pilot.pause()
        await pilot.press("a", "l", "p")
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_row_at(0)[1]) == "acid-alpha"
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 3
        await pilot.press("s", "s")  # namespace, then name
        await pilot.pause()
        assert [str(table.get_row_at(i)[1]) for i in range(3)] == [
            "acid-alpha",
            "acid-mid",
            "acid-zeta",
        ]


@pytest.mark.asyncio
async def test_the_context_is_shown_and_c_switches_between_contexts(
    tmp_path: Path, bucket: str, s3_endpoint: str
) -> None:
    from tests.fakekube import FakeKube, write_kubeconfig

    servers = {"prod": FakeKube().start(), "staging": FakeKube().start()}
    try:
        for i, (context, server) in enumerate(servers.items()):
            uid = f"0a20000{i}-0000-4000-8000-000000000001"
            server.add(ko.postgresql(f"acid-{context}", "shop", uid=uid, created=datetime.now(UTC)))
        kc = write_kubeconfig(tmp_path / "kc", servers)
        cat = Catalog(
            Config(
                path=None,
                kubernetes=KubernetesConfig(kubeconfig=kc, contexts=tuple(servers)),
                storage=(StorageLocation(url=f"s3://{bucket}/spilo", endpoint_url=s3_endpoint),),
                cache=tmp_path / "cache",
            )
        )
        app = PgdeckApp(cat)
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.screen.query_one(ClusterTable)
            status = app.screen.query_one("#status")

            def names() -> list[str]:
                return sorted(str(table.get_row_at(i)[1]) for i in range(table.row_count))

            assert names() == ["acid-prod", "acid-staging"]
            assert "context all" in str(status.render())
            await pilot.press("c")
            assert names() == ["acid-prod"] and "context prod" in str(status.render())
            await pilot.press("c")
            assert names() == ["acid-staging"]
            await pilot.press("c")
            assert names() == ["acid-prod", "acid-staging"]
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.asyncio
async def test_enter_opens_the_timeline_and_the_palette_jumps_to_a_cluster(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str
) -> None:
    from tui.screens.timeline import TimelineScreen

    for i, name in enumerate(("acid-one", "acid-two")):
        uid = f"0a30000{i}-0000-4000-8000-000000000001"
        kube.add(ko.postgresql(name, "shop", uid=uid, created=datetime.now(UTC)))
        seed(bucket, {f"spilo/{name}/{uid}/logical_backups/{T0}.sql.gz": 10})
    app = PgdeckApp(catalog(tmp_path, kubeconfig, bucket, s3_endpoint))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen) and app.screen.cluster.name == "acid-one"
        await pilot.press("escape", "ctrl+p")
        await pilot.pause()
        await pilot.press(*"acid-two")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen) and app.screen.cluster.name == "acid-two"


@pytest.mark.asyncio
async def test_question_mark_shows_and_hides_the_keys(
    tmp_path: Path, kubeconfig: Path, bucket: str, s3_endpoint: str
) -> None:
    app = PgdeckApp(catalog(tmp_path, kubeconfig, bucket, s3_endpoint))
    async with app.run_test(size=(120, 60)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("question_mark")
        await pilot.pause()
        panel = app.screen.query("HelpPanel")
        assert panel
        import html

        shown = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "Filter" in shown and "Context" in shown and "Restore latest" in shown
        await pilot.press("question_mark")
        await pilot.pause()
        assert not app.screen.query("HelpPanel")


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone that is not UTC, so that both times show."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.asyncio
async def test_the_line_under_the_table_says_the_selected_cluster_s_last_and_next_run(
    tmp_path: Path, kubeconfig: Path, kube: Any, bucket: str, s3_endpoint: str, berlin: None
) -> None:
    now = datetime(2026, 12, 31, 23, 40, tzinfo=UTC)
    daily = ko.postgresql("acid-a", "shop", uid=UID, created=now - timedelta(days=2))
    paused = ko.postgresql("acid-b", "shop", uid=UID[:-1] + "2", created=now - timedelta(days=2))
    kube.add(daily, ko.cronjob(daily, schedule="0 0 * * *"))
    kube.add(paused, ko.cronjob(paused, schedule="0 0 * * *", suspend=True))
    backup = int((now - timedelta(hours=5, minutes=5)).timestamp())
    seed(bucket, {f"spilo/acid-a/{UID}/logical_backups/{backup}.sql.gz": 1000})
    config = catalog(tmp_path, kubeconfig, bucket, s3_endpoint).config
    app = PgdeckApp(Catalog(config, clock=lambda: now))
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(ClusterTable)
        line = app.screen.query_one("#selected")
        table.move_cursor(row=table.get_row_index("test/shop/acid-a"))
        await pilot.pause()
        # The first line; at 80 columns a second says what the table folded away.
        text, folded = str(line.render()).split("\n")
        # Daily at midnight UTC, on a clock pinned before the new year's midnight.
        assert text.startswith("acid-a: last backup 5 hours ago, next run ")
        assert text.endswith("next run Fri 01:00 = 00:00Z (in 20 minutes)")  # local first
        assert "backups on 0 0 * * *" in folded and "1 stored" in folded
        table.move_cursor(row=table.get_row_index("test/shop/acid-b"))
        await pilot.pause()
        text, folded = str(line.render()).split("\n")
        assert text == "acid-b: last backup -, CronJob suspended"
        assert "0 stored" in folded
