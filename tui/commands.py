"""The command palette (ctrl+p): jump to a cluster by name, or run an action of the screen."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import PgdeckApp


class ClusterCommands(Provider):
    """Every cluster of the catalog: choosing one opens its timeline."""

    def _items(self) -> list[tuple[str, str, tuple[str, str, str]]]:
        app: PgdeckApp = self.app  # type: ignore[assignment]
        out = []
        for s in app.catalog_state.clusters:
            c = s.cluster
            where = f"{c.context}/{c.namespace}" if c.in_kubernetes else "storage only"
            health = s.health.label if s.health else ""
            out.append((f"{c.name}", f"open the timeline ({where}) {health}".rstrip(), c.key))
        return out

    async def discover(self) -> Hits:
        for name, help_text, key in self._items()[:20]:
            yield DiscoveryHit(name, partial(self._open, key), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, key in self._items():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self._open, key), help=help_text)

    def _open(self, key: tuple[str, str, str]) -> None:
        app: PgdeckApp = self.app  # type: ignore[assignment]
        if app.restore_running():
            # Not over a running wizard: a second restore could start into the same target.
            app.notify("a restore is running: the palette opens clusters once it ends")
            return
        app.action_open_cluster(*key)


class ScreenActions(Provider):
    """The current screen's keys, as commands: what the footer shows, searchable."""

    def _actions(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        out = []
        seen = set()
        for binding in getattr(screen, "BINDINGS", []):
            key, action, description = binding.key, binding.action, binding.description
            if not description or action in seen:
                continue
            seen.add(action)
            out.append((description, f"key {key.split(',')[0]}", action))
        return out

    async def discover(self) -> Hits:
        for description, help_text, action in self._actions():
            yield DiscoveryHit(description, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, help_text, action in self._actions():
            score = matcher.match(description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(description),
                    partial(self._run, action),
                    help=help_text,
                )

    async def _run(self, action: str) -> None:
        await self.screen.run_action(action)
