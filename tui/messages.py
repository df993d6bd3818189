"""Messages from workers to the screens: past-tense names, plain payloads."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from services.catalog import CatalogState


@dataclass
class CatalogLoaded(Message):
    state: CatalogState
    from_cache: bool


@dataclass
class CatalogFailed(Message):
    error: str
