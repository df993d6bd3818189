"""``pgdeck demo``: the console (or, with ``--print``, the catalog) on a demo sandbox with
planted problems, and a local PostgreSQL as restore target."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.catalog import Catalog
from services.clock import Clock
from services.config import load_config
from services.errors import PgdeckError, UsageError
from tui.cli.browse import cmd_clusters
from tui.cli.render import EXIT_OK, err


def cmd_demo(args: argparse.Namespace) -> int:
    """The console on the demo sandbox, with a local PostgreSQL as restore target
    ``demo-local``; ``--print`` (or a stdout that is no terminal) prints the catalog."""
    from platformdirs import user_cache_dir

    from sandbox.demo import prepare_sandbox

    if args.kube is not None:  # the sandbox is its own Kubernetes: the flags cannot apply
        raise UsageError(
            "demo: kubectl's --context, -n, -A and --kubeconfig do not apply to the demo sandbox",
            "run `kubectl pgdeck demo` alone",
        )
    root = Path(user_cache_dir("pgdeck")) / "demo"
    sandbox = prepare_sandbox(
        root, rebuild=args.rebuild, now=args.clock(), progress=lambda line: err(f"demo: {line}")
    )
    if args.prepare_only:
        print(sandbox.config_path)
        return EXIT_OK
    if not args.print and not sys.stdout.isatty():
        err("demo: stdout is not a terminal: printing the catalog instead (as with --print)")
        args.print = True
    if args.print:
        err(f"demo: sandbox config {sandbox.config_path}")
        args.config = str(sandbox.config_path)
        args.json = False
        args.cached = False
        args.full_refresh = False
        code = cmd_clusters(args)
        err(f"try: pgdeck --config {sandbox.config_path} backups acid-orders")
        return code
    return _demo_console(sandbox.config_path, sandbox.root, args.clock)


def _demo_console(config_path: Path, root: Path, clock: Clock) -> int:
    import contextlib
    import dataclasses

    from sandbox.demo.target import TARGET_NAME, demo_target, dsn
    from services.config import Target
    from tui.app import PgdeckApp

    config = load_config(str(config_path))
    with contextlib.ExitStack() as stack:
        try:
            pg = stack.enter_context(demo_target(root, progress=lambda line: err(f"demo: {line}")))
        except (PgdeckError, OSError) as exc:
            # The console is still worth opening: everything but a restore works.
            err(f"demo: no local restore target ({exc}); the console opens without one")
        else:
            target = Target(name=TARGET_NAME, dsn=dsn(pg), production=False)
            config = dataclasses.replace(config, targets=(*config.targets, target))
        app = PgdeckApp(Catalog(config, clock=clock))
        app.run()
    return app.return_code or EXIT_OK
