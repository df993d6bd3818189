"""Where the commands read from: the catalog, loaded as asked (refreshed, or from the cache
with ``--cached``), its problems told on stderr, and a backup named on the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.catalog import Catalog, CatalogState
from services.config import Config, load_config
from services.errors import ConfigError
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, Progress, err


def open_catalog(
    args: argparse.Namespace, config: Config | None = None
) -> tuple[Catalog, CatalogState]:
    config = config or load_config(args.config, args.kube)
    if config.path is None and not config.storage:
        from services.kube import _in_cluster, _kubeconfig_path

        if _kubeconfig_path(config.kubernetes) is None and not _in_cluster():
            raise ConfigError(
                "nothing to read: no configuration file, no kubeconfig and no storage",
                "pass --config FILE (see config.example.yaml) or try `pgdeck demo`",
            )
    catalog = Catalog(config, clock=args.clock)
    if getattr(args, "cached", False):
        state = catalog.load_cached()
    else:
        with Progress(sys.stderr) as progress:
            state = catalog.refresh(full=getattr(args, "full_refresh", False), progress=progress)
    for p in state.problems:
        if not p.fatal_for_source:
            err(f"pgdeck: warning: {p.source}: {p.message}")
        elif p.message.startswith(p.source):  # storage errors already name their URL
            err(f"pgdeck: {p.message}")
        else:
            err(f"pgdeck: {p.source}: {p.message}")
    return catalog, state


def resolve_backup(args: argparse.Namespace, config: Config | None = None) -> tuple[Any, str, str]:
    """The store, key and URL of ``args.backup``. A URL needs no listing (the cache knows
    the endpoints); ``CLUSTER@...`` needs the catalog, refreshed unless --cached."""
    if "://" in args.backup:
        catalog = Catalog(config or load_config(args.config, args.kube), clock=args.clock)
        catalog.load_cached()
    else:
        catalog, _ = open_catalog(args, config)
    return catalog.resolve(args.backup, args.namespace)


def catalog_status(state: CatalogState) -> int:
    """1 when a source failed (what could be read was still shown), else 0."""
    return EXIT_PROBLEMS if any(p.fatal_for_source for p in state.problems) else EXIT_OK
