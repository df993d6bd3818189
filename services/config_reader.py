"""Reads parsed YAML into the configuration's frozen dataclasses by walking their fields.

The dataclasses of ``services.config`` are the schema, and this is its one reader: a
field's name is its key, its annotation says what the value must be, its default what an
absent key means. A key that is no field is refused, naming the keys there are. What an
annotation cannot say is in the field's metadata:

- ``at_least``: a number's smallest value;
- ``one_of``: the strings allowed;
- ``check``: a function given the value read, returning it (perhaps normalised) or
  raising ``Invalid`` with what is wrong;
- ``read``: a reader of the field's own, ``(reader, value, where) -> value``, for a value
  no annotation describes (one that is a path or an S3 location);
- ``items``: what a list's items are, for its error ("a list of locations");
- ``named``: the items are written as a mapping of names, each name going to this field
  of its item;
- ``off``: the section may be written as ``false``, meaning this field of it is false.

An absent key takes the field's default, and so does ``null``, except for a number or a
boolean, which must be written as one. Paths expand ``~`` and ``$VARS`` and are relative
to the file. Within a mapping the keys are read in field order, so the first wrong one in
that order is the one reported. Every error names the file and the key's path.
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from services.errors import ConfigError

T = TypeVar("T")

_METADATA = frozenset({"at_least", "one_of", "check", "read", "items", "named", "off"})
_MUST_BE_WRITTEN = (bool, int, float)  # null is not a default for these
_SCHEMAS: dict[type, tuple[tuple[Field[Any], Any], ...]] = {}


class Invalid(ValueError):
    """A value is wrong; the reader adds the file and the key's path to the message."""


class Reader:
    """Reads one file's parsed YAML; every error it raises names that file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}", "see config.example.yaml")

    def section(self, cls: type[T], value: Any, where: str, **given: Any) -> T:
        """``cls`` from a mapping of its fields' names; ``given`` fields are not keys."""
        schema = [(f, hint) for f, hint in _schema(cls) if f.name not in given]
        m = self.mapping(value, where, {f.name for f, _ in schema})
        values = dict(given)
        for f, hint in schema:
            values[f.name] = self.field(f, hint, m.get(f.name, MISSING), _join(where, f.name))
        return cls(**values)

    def mapping(self, value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where or "top level", f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(_join(where, str(key)), f"unknown key (known: {known})")
        return value

    def field(self, f: Field[Any], hint: Any, value: Any, where: str) -> Any:
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if has_default and (value is MISSING or (value is None and hint not in _MUST_BE_WRITTEN)):
            return _default(f)
        if value is MISSING:
            value = None
        meta = f.metadata
        try:
            if "read" in meta:
                return meta["read"](self, value, where)
            if "off" in meta and value is False:
                return hint(**{meta["off"]: False})
            out = self.value(hint, value, where, meta, required=not has_default)
            if "one_of" in meta and out not in meta["one_of"]:
                raise Invalid("expected " + " or ".join(meta["one_of"]))
            if "check" in meta:
                out = meta["check"](out)
        except Invalid as exc:
            raise self.fail(where, str(exc)) from None
        return out

    def value(
        self, hint: Any, value: Any, where: str, meta: Mapping[str, Any], *, required: bool
    ) -> Any:
        hint = _without_none(hint)
        if hint is bool:
            if not isinstance(value, bool):
                raise self.fail(where, f"expected true or false, got {_kind(value)}")
            return value
        if hint is int or hint is float:
            return self.number(value, where, hint, meta.get("at_least"))
        if hint is str:
            return self.string(value, where, required=required)
        if hint is Path:
            return self.a_path(self.string(value, where, required=required))
        if get_origin(hint) is tuple:
            return self.items(get_args(hint)[0], value, where, meta)
        if isinstance(hint, type) and is_dataclass(hint):
            return self.section(hint, value, where)
        raise TypeError(f"{where}: no reader for {hint!r}; give the field a 'read' of its own")

    def number(self, value: Any, where: str, kind: type, low: float | None) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):  # YAML's .nan and .inf are floats
            raise self.fail(where, f"expected a finite number, got {value}")
        if low is not None and value < low:
            raise self.fail(where, f"must be at least {low}")
        return kind(value)

    def string(self, value: Any, where: str, *, required: bool) -> str:
        if not isinstance(value, str) or (required and not value):
            raise self.fail(where, f"expected a string, got {_kind(value)}")
        return value

    def a_path(self, text: str) -> Path:
        path = Path(os.path.expandvars(text)).expanduser()
        return path if path.is_absolute() else (self.base / path)

    def items(self, hint: Any, value: Any, where: str, meta: Mapping[str, Any]) -> tuple[Any, ...]:
        what = meta.get("items") or ("strings" if hint is str else "")
        if "named" in meta:
            if not isinstance(value, dict):
                raise self.fail(where, f"expected a mapping of names to {what}, got {_kind(value)}")
            return tuple(
                self.section(hint, item, f"{where}.{name}", **{meta["named"]: str(name)})
                for name, item in value.items()
            )
        if not isinstance(value, list):
            of = f" of {what}" if what else ""
            raise self.fail(where, f"expected a list{of}, got {_kind(value)}")
        return tuple(
            self.value(hint, item, f"{where}[{i}]", {}, required=True)
            for i, item in enumerate(value)
        )


def _schema(cls: type) -> tuple[tuple[Field[Any], Any], ...]:
    """Each field of ``cls`` with its annotation resolved, worked out once per class."""
    if cls not in _SCHEMAS:
        hints = get_type_hints(cls)
        for f in fields(cls):
            unknown = set(f.metadata) - _METADATA
            if unknown:  # a misspelt rule would otherwise be ignored without a word
                raise TypeError(f"{cls.__name__}.{f.name}: unknown metadata {sorted(unknown)}")
        _SCHEMAS[cls] = tuple((f, hints[f.name]) for f in fields(cls))
    return _SCHEMAS[cls]


def _default(f: Field[Any]) -> Any:
    if callable(f.default_factory):
        return f.default_factory()
    return f.default


def _without_none(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
