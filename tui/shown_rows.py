"""The clusters table's rows as last shown, kept in the cache: the first frame's rows.

Joining the catalog from the cache takes most of a second with a thousand clusters; the
rows it last gave take a few milliseconds to read back. So every load and refresh keeps
its rows (``store``) and the next start shows them (``recall``) before the catalog is
joined, which then replaces them. They are kept under a key made of their format and the
configuration's sources (``Catalog.sources_key``): rows of another configuration, or
written by another version's ``ClusterRow``, are never read back. Ages are kept as the
last backup's time and said again against the clock when read.
"""

from __future__ import annotations

import array
import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tui import present
from widgets.cluster_table import ClusterRow
from widgets.glyph import Glyph

if TYPE_CHECKING:
    from services.catalog import Catalog, CatalogState

VIEW = "clusters"
FORMAT = 1  # raise it when what a kept row means changes (its fields are in the key)
_FIELDS = tuple(f.name for f in dataclasses.fields(ClusterRow))
_GLYPH = tuple(f.name for f in dataclasses.fields(Glyph))


def view_key(catalog: Catalog) -> str:
    return f"{FORMAT} {','.join(_FIELDS)} {','.join(_GLYPH)} {catalog.sources_key()}"


def store(catalog: Catalog, state: CatalogState, rows: tuple[ClusterRow, ...]) -> None:
    """Keep ``rows`` (one per ``state.clusters``) for the next start."""
    kept = []
    for row, summary in zip(rows, state.clusters, strict=True):
        last = summary.last_backup
        kept.append(
            [_encode(getattr(row, f)) for f in _FIELDS] + [last.time.timestamp() if last else None]
        )
    catalog.cache.store_view(VIEW, view_key(catalog), json.dumps(kept, separators=(",", ":")))


def recall(catalog: Catalog, now: datetime) -> tuple[ClusterRow, ...]:
    """The rows kept for this configuration, their ages said against ``now``; none when
    nothing was kept for it (a new cache, another configuration) or it cannot be read."""
    payload = catalog.cache.view(VIEW, view_key(catalog))
    if payload is None:
        return ()
    try:
        out = []
        for item in json.loads(payload):
            values = dict(zip(_FIELDS, map(_decode, item[:-1]), strict=True))
            last = item[-1]
            values["age"] = (
                present.age(datetime.fromtimestamp(last, UTC), now) if last is not None else "never"
            )
            out.append(ClusterRow(**values))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return ()  # kept by a version that wrote them otherwise: the catalog will say
    return tuple(out)


def _encode(value: Any) -> Any:
    if isinstance(value, Glyph):
        return {"glyph": [getattr(value, f) for f in _GLYPH]}
    if isinstance(value, tuple):
        # Sizes: 72 numbers a row are most of the text, and parsing them back as JSON
        # numbers took longer than the rest of the rows together.
        packed = array.array("q", value).tobytes()
        return {"int64": base64.b64encode(packed).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "glyph" in value:
            return Glyph(*value["glyph"])
        return tuple(array.array("q", base64.b64decode(value["int64"])))
    return value
