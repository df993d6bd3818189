"""How service values become JSON: one way for every ``--json`` output, report and archive entry.

A value that is printed or stored as JSON says so itself with ``to_dict()``, which returns
only JSON types (str, int, float, bool, None, lists and dicts) with its keys in the order
they are written. Every instant in it goes through ``iso``: UTC, ISO 8601, ``Z`` for the
zone (``2026-11-20T12:20:00Z``, microseconds when there are any). ``to_json`` turns a value,
or lists and dicts of values, into that form; the command line prints nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, overload, runtime_checkable


@runtime_checkable
class Jsonable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
def iso(dt: datetime | None) -> str | None:
    """The instant as JSON writes it; ``None`` stays ``None`` (JSON's ``null``)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_json(value: Any) -> Any:
    """``value`` in JSON types: values by their ``to_dict()``, instants by ``iso``."""
    if isinstance(value, Jsonable):
        return value.to_dict()
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
