"""``pgdeck restore-test --history [CLUSTER] [--json]``: the restore tests archived so far,
newest first, as a table or (``--json``) a list of their fields.

Exit 0 when the archive was read, a test listed or not; an archive that cannot be read
is the archive's error (its exit code, one line)."""

from __future__ import annotations

import argparse
from datetime import datetime

from services.config import load_config
from services.errors import UsageError
from services.restore_test_history import PastTest, read_tests
from tui import present
from tui.cli.render import EXIT_OK, err, print_json, table

HEADERS = ["CLUSTER", "WHEN (UTC)", "AGE", "RESULT", "TTR / OBJECTIVE", "BACKUP", "TEARDOWN"]


def cmd_history(args: argparse.Namespace) -> int:
    from services.archive import describe, open_archive, recover_quietly

    named = getattr(args, "clusters", None) or []
    if len(named) > 1:
        raise UsageError("--history takes one cluster at most", "leave it out to list them all")
    config = load_config(args.config, args.kube)
    archive = open_archive(config, args.clock)
    recover_quietly(archive)  # a test whose process is gone is listed as interrupted
    tests = read_tests(archive)
    wanted = named[0] if named else None
    if wanted:
        tests = [t for t in tests if t.cluster == wanted]
    if args.json:
        print_json(tests)
        return EXIT_OK
    if not tests:
        what = f"of {wanted} " if wanted else ""
        err(f"pgdeck: no restore tests {what}in {describe(config.archive)} yet")
        return EXIT_OK
    now = args.clock()
    table(HEADERS + ["REPORT"], [row(t, now) for t in tests])
    return EXIT_OK


def row(t: PastTest, now: datetime) -> list[str]:
    where = f"{t.namespace}/{t.cluster}" if t.namespace else t.cluster
    return [
        where,
        present.minute(t.when),
        present.age(t.when, now),
        t.result or "-",
        present.against(t.ttr_seconds, t.objective_seconds),
        present.minute(t.backup_time),
        t.teardown or "-",
        t.report_url or "-",
    ]
