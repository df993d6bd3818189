"""Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Footer


class KeyFooter(Footer):
    """A Footer that skips a rebuild which would show the same keys again.

    Textual's Footer removes and re-creates every key each time the screen's bindings are
    refreshed: several times while a screen starts (mount, focus, each widget's own
    bindings) and whenever focus moves, and each new key is styled anew. On a screen with
    ten keys that was a fifth of the time from start to the first rows on screen.
    """

    _shown: tuple[Any, ...] | None = None
    rebuilds = 0  # how many times the keys were built (for tests)

    def _keys(self) -> tuple[Any, ...]:
        bindings = tuple(
            (
                binding.key,
                binding.key_display,
                binding.description,
                binding.action,
                binding.show,
                binding.group,
                binding.tooltip,
                enabled,
                tooltip,
            )
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
        )
        return (self.compact, self.show_command_palette, bindings)

    def compose(self) -> ComposeResult:
        # What is shown is recorded here, from the bindings the keys are built from (a
        # rebuild waits for the old keys' removal, and the bindings may move meanwhile).
        keys = self._keys()
        built = list(super().compose())
        self._shown = keys if built else None  # nothing shown yet: the next rebuild runs
        if built:
            self.rebuilds += 1
        yield from built

    async def recompose(self) -> None:
        if self.is_attached and self._shown is not None and self._keys() == self._shown:
            return
        await super().recompose()
