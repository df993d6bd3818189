"""The command palette (ctrl+p): jump to a cluster by name, or run an action of the screen."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import PgdeckApp


class ClusterCommands(Provider):
    """Every cluster of the catalog: choosing one opens its timeline."""

    def _items(self) -> list[tuple[str, str, object]]:
        app: PgdeckApp = self.app  # type: ignore[assignment]
        out = []
        for s in app.catalog.state.clusters:
            c = s.cluster
            where = f"{c.context}/{c.namespace}" if c.in_kubernetes else "storage only"
            health = s.health.mark if s.health else ""
            out.append((f"{c.name}", f"open the timeline ({where}) {health}".rstrip(), s))
        return out

    async def discover(self) -> Hits:
        for name, help_text, summary in self._items()[:20]:
            yield DiscoveryHit(name, partial(self._open, summary), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, summary in self._items():
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(name), partial(self._open, summary), help=help_text
                )

    def _open(self, summary: object) -> None:
        app: PgdeckApp = self.app  # type: ignore[assignment]
        if app.restore_running():
            # Not over a running wizard: a second restore could start into the same target.
            app.notify("a restore is running: the palette opens clusters once it ends")
            return
        app.open_cluster(summary)  # type: ignore[arg-type]


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
