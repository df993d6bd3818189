"""The clusters table's rows kept in the cache: the console's first frame shows them
before the catalog is joined, and the catalog's own rows then replace them."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.catalog import Catalog
from services.config import CatalogConfig, Config, KubernetesConfig, StorageLocation
from tui import shown_rows
from tui.app import PgdeckApp
from tui.rows import cluster_row
from widgets.cluster_table import ClusterTable

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UID = "0a100000-0000-4000-8000-000000000001"


def backups(root: Path, name: str, hours: int, uid: str = UID) -> None:
    """``hours`` hourly backups of ``name`` in a file:// location, the newest an hour old."""
    where = root / name / uid / "logical_backups"
    where.mkdir(parents=True, exist_ok=True)
    for h in range(hours):
        epoch = int((NOW - timedelta(hours=h + 1)).timestamp())
        (where / f"{epoch}.sql.gz").write_bytes(b"x" * (1000 + h))


def catalog(tmp_path: Path, storage: Path) -> Catalog:
    config = Config(
        path=None,
        kubernetes=KubernetesConfig(enabled=False),
        storage=(StorageLocation(url=f"file://{storage}"),),
        cache=tmp_path / "cache",
        catalog=CatalogConfig(workers=2),
    )
    return Catalog(config, clock=lambda: NOW)


class GatedCatalog(Catalog):
    """A catalog whose read of the cache waits for the test: what the screen shows
    before it is read can only come from the rows kept."""

    def __init__(self, config: Config) -> None:
        super().__init__(config, clock=lambda: NOW)
        self.gate = threading.Event()

    def load_cached(self) -> Any:
        self.gate.wait(60)
        return super().load_cached()


def kept_rows(c: Catalog) -> tuple[Any, ...]:
    """The rows a console keeps after a refresh of ``c``."""
    state = c.refresh()
    rows = tuple(cluster_row(s, NOW) for s in state.clusters)
    shown_rows.store(c, state, rows)
    return rows


def test_kept_rows_read_back_equal_with_their_ages_said_against_the_clock(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    backups(storage, "acid-a", 3)
    backups(storage, "acid-b", 30)
    c = catalog(tmp_path, storage)
    rows = kept_rows(c)
    assert [r.name for r in rows] == ["acid-a", "acid-b"] and rows[1].sizes
    assert shown_rows.recall(c, NOW) == rows
    later = shown_rows.recall(c, NOW + timedelta(hours=5))
    assert [r.age for r in later] == ["6 hours ago", "6 hours ago"]
    assert [r.count for r in later] == [3, 30] and later[1].health == rows[1].health


def test_rows_kept_for_another_configuration_are_not_read(tmp_path: Path) -> None:
    backups(tmp_path / "one", "acid-a", 2)
    backups(tmp_path / "two", "acid-z", 2)
    kept_rows(catalog(tmp_path, tmp_path / "one"))
    other = catalog(tmp_path, tmp_path / "two")  # the same cache, other storage
    assert shown_rows.recall(other, NOW) == ()
    assert [r.name for r in shown_rows.recall(catalog(tmp_path, tmp_path / "one"), NOW)] == [
        "acid-a"
    ]


async def first_rows(app: PgdeckApp, pilot: Any) -> ClusterTable:
    """The clusters table once it shows a row (bounded by frames, not by time)."""
    for _ in range(500):
        await pilot.pause()
        table = app.screen.query_one(ClusterTable)
        if table.row_count:
            return table
    raise AssertionError("no row was ever shown")


@pytest.mark.asyncio
async def test_the_first_screen_shows_the_kept_rows_then_the_catalog_replaces_them(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    backups(storage, "acid-old", 3)
    kept_rows(catalog(tmp_path, storage))
    # Since that console: acid-old's backups are gone, acid-new has some.
    shutil.rmtree(storage / "acid-old")
    backups(storage, "acid-new", 4)
    c = GatedCatalog(catalog(tmp_path, storage).config)
    seen: list[str] = []
    app = PgdeckApp(c)
    async with app.run_test(
        size=(120, 30), message_hook=lambda m: seen.append(type(m).__name__)
    ) as pilot:
        table = await first_rows(app, pilot)
        assert table.selected_key() == "//acid-old"
        assert str(table.get_cell("//acid-old", "count")) == "3"
        assert "as last shown" in str(app.screen.query_one("#status").render())
        assert not app.catalog_state.clusters and "CatalogRefreshed" not in seen
        c.gate.set()  # the cache is read, then the sources refreshed
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [table.get_row_at(i)[1].plain for i in range(table.row_count)] == ["acid-new"]
        assert str(table.get_cell("//acid-new", "count")) == "4"
        assert not app.catalog_state.from_cache
    assert seen.index("RowsRecalled") < seen.index("CatalogRefreshed")
    # The refresh kept its rows for the next start.
    assert [r.name for r in shown_rows.recall(c, NOW)] == ["acid-new"]


@pytest.mark.asyncio
async def test_a_cache_from_before_rows_were_kept_starts_from_the_catalog(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    backups(storage, "acid-a", 2)
    c = catalog(tmp_path, storage)
    c.refresh()  # the cache as the CLI or an older pgdeck leaves it: objects, no views
    c.cache.close()
    db = sqlite3.connect(tmp_path / "cache" / "catalog.sqlite3")
    db.execute("DROP TABLE views")
    db.commit()
    db.close()
    c = catalog(tmp_path, storage)
    seen: list[str] = []
    app = PgdeckApp(c)
    async with app.run_test(
        size=(120, 30), message_hook=lambda m: seen.append(type(m).__name__)
    ) as pilot:
        table = await first_rows(app, pilot)
        assert str(table.get_cell("//acid-a", "count")) == "2"
        await app.workers.wait_for_complete()
    assert "RowsRecalled" not in seen and "CatalogRefreshed" in seen
    # Read from the catalog, the rows were kept for the next start at once.
    assert [r.name for r in shown_rows.recall(c, NOW)] == ["acid-a"]


@pytest.mark.asyncio
async def test_rows_of_another_configuration_are_never_shown(tmp_path: Path) -> None:
    backups(tmp_path / "one", "acid-a", 2)
    backups(tmp_path / "two", "acid-z", 2)
    kept_rows(catalog(tmp_path, tmp_path / "one"))
    c = GatedCatalog(catalog(tmp_path, tmp_path / "two").config)
    c.gate.set()
    seen: list[str] = []
    app = PgdeckApp(c)
    async with app.run_test(
        size=(120, 30), message_hook=lambda m: seen.append(type(m).__name__)
    ) as pilot:
        table = await first_rows(app, pilot)
        assert [table.get_row_at(i)[1].plain for i in range(table.row_count)] == ["acid-z"]
        await app.workers.wait_for_complete()
    assert "RowsRecalled" not in seen
