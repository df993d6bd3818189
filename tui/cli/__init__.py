"""The headless command line: ``pgdeck clusters``, ``backups``, ``jobs``, ``logs``, ``demo``.

``--json`` prints JSON alone on stdout; messages and progress go to stderr. Exit 0 when
all went well, 1 when a source failed (what could be read is still printed), 2 for
usage and configuration errors. No traceback unless ``--debug``.

The grammar is in ``parser``, what commands print in ``render``, and each family of
commands in its own module; ``main`` (the ``pgdeck`` entry point) dispatches to them; ``tui.cli.kubectl`` is the same
command line as a kubectl plugin.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from services.clock import Clock, clock_from_env
from services.errors import PgdeckError
from tui.cli.browse import cmd_backups, cmd_clusters, cmd_jobs, cmd_logs, cmd_tui
from tui.cli.demo import cmd_demo
from tui.cli.parser import build_parser, kube_override
from tui.cli.render import EXIT_OK, err
from tui.cli.restore import Interrupted, cmd_restore, cmd_verify
from tui.cli.restore_test import cmd_restore_test
from tui.cli.review import cmd_audit, cmd_review

__all__ = ["COMMANDS", "build_parser", "main", "parse", "run"]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "review": cmd_review,
    "audit": cmd_audit,
    "restore": cmd_restore,
    "verify": cmd_verify,
    "restore-test": cmd_restore_test,
    "clusters": cmd_clusters,
    "backups": cmd_backups,
    "jobs": cmd_jobs,
    "logs": cmd_logs,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """``clock`` is "now" for every judgement the command makes (default: ``PGDECK_NOW``
    when set, else the system clock)."""
    return run(build_parser(), argv, clock)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The command's arguments, with what every command's ``load_config`` applies (``kube``)
    and what a report says started it (``prog`` and ``argv``)."""
    args = parser.parse_args(argv)
    args.kube = kube_override(args)
    args.prog = parser.prog  # "pgdeck" or "kubectl pgdeck"
    args.argv = None if argv is None else list(argv)
    return args


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None, clock: Clock | None) -> int:
    """Parse with ``parser`` (pgdeck's, or the kubectl plugin's) and run the command."""
    args = parse(parser, argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)
    if not args.debug:
        for noisy in ("botocore", "urllib3", "kubernetes", "boto3", "aiohttp", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        args.clock = clock or clock_from_env()
        if args.command is None:
            return cmd_tui(args)
        return COMMANDS[args.command](args)
    except PgdeckError as exc:
        if args.debug:
            raise
        err(f"pgdeck: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        err(
            "pgdeck: interrupted; nothing was written"
            if isinstance(exc, Interrupted)
            else "pgdeck: interrupted"
        )
        return 128 + getattr(exc, "signum", 2)
    except BrokenPipeError:
        return EXIT_OK
