"""``pgdeck restore-test``: so far only ``--cleanup``, which deletes the staging clusters a
crashed restore test left behind (found by pgdeck's labels, older than ``--older-than``)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from services.config import load_config
from services.jsonable import iso
from tui.cli.render import EXIT_OK, err, print_json, table

DEFAULT_OLDER_THAN = timedelta(days=1)  # longer than any restore test runs


def cmd_restore_test(args: argparse.Namespace) -> int:
    from services.archive import open_archive
    from services.staging import StagingClusters

    config = load_config(args.config)
    archive = open_archive(config, args.clock)
    archive.check_writable()  # every deletion is audited: refuse before deleting any
    staging = StagingClusters(
        config.kubernetes, config.staging, clock=args.clock, audit=archive.note
    )
    older = args.older_than or DEFAULT_OLDER_THAN
    deleted = staging.cleanup(older_than=older)
    if args.json:
        print_json(deleted)
    elif deleted:
        table(
            ["DELETED", "NAMESPACE", "SOURCE", "RUN", "CREATED"],
            [[c.name, c.namespace, c.source, c.run_id, iso(c.created) or "-"] for c in deleted],
        )
    else:
        err(
            f"pgdeck: no staging clusters older than {older.total_seconds() / 3600:g}h in "
            f"{staging.context}/{config.staging.namespace}"
        )
    return EXIT_OK
