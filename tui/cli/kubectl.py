"""``kubectl-pgdeck``: pgdeck as a kubectl plugin, so that ``kubectl pgdeck`` opens the console.

kubectl runs ``kubectl-pgdeck`` from PATH with the arguments after ``pgdeck`` unchanged, and
keeps its own global flags (those before ``pgdeck``) to itself; so the plugin takes kubectl's
``--context``, ``-n``/``--namespace``, ``-A``/``--all-namespaces`` and ``--kubeconfig``
itself, before an optional pgdeck command. They override the config's ``kubernetes``
section for this run (``services.config.KubernetesOverride``).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.clock import Clock
from tui.cli import run
from tui.cli.parser import build_parser


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    return run(build_parser(kubectl=True), argv, clock)
