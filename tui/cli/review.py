"""The review and its archive: ``pgdeck review`` (the weekly checklist, signed off and
archived) and ``pgdeck audit verify`` (the archive's hash chain)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.catalog import CatalogProgress
from services.config import load_config
from services.errors import ConfigError, PgdeckError
from services.text import safe_text
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, Progress, err, print_json, table
from tui.cli.sources import open_catalog


def cmd_review(args: argparse.Namespace) -> int:
    from services.errors import UsageError
    from services.marks import CheckMark
    from services.review import CHECK_NAMES, run_review, sign_off
    from tui.glyphs import CHECK

    archive = None
    if args.note is not None and args.sign_off is None:
        raise UsageError("--note goes with --sign-off NAME", "add --sign-off NAME")
    if args.sign_off is not None:
        if not args.sign_off.strip():
            raise UsageError("--sign-off needs the reviewer's name")
        # Before the review is made: an unwritable archive fails at once, not after it.
        archive = _archive(args, write=True)
    catalog, state = open_catalog(args)
    with Progress(sys.stderr, "reviewing") as progress:
        review = run_review(
            catalog,
            since=args.since,
            verify=args.verify,
            state=state,
            progress=lambda stage, done, total: progress(CatalogProgress(stage, done, total)),
        )
    if args.markdown:
        try:
            Path(args.markdown).write_text(review.to_markdown(), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"--markdown {args.markdown}: cannot write ({exc.strerror})",
                "choose a writable path",
            ) from exc
    if archive is not None:
        review = sign_off(review, args.sign_off, args.note, archive, clock=args.clock)
        paths = review.archived or {}
        err(
            f"pgdeck: review signed off by {review.reviewer}, archived as {paths.get('json')} "
            f"and {paths.get('markdown')}"
        )
    if args.json:
        print_json(review)
        return review.exit_code
    print(
        f"review of {review.window_start:%Y-%m-%d %H:%M} to {review.window_end:%Y-%m-%d %H:%M} UTC"
        + (", newest backups verified" if review.verify else "")
    )
    heads = ["CLUSTER", *(c.replace("_", " ").upper() for c in CHECK_NAMES)]
    rows = [
        [
            f"{cr.namespace}/{cr.cluster}" if cr.namespace else f"{cr.cluster} (storage)",
            *(CHECK[cr.marks.get(c, CheckMark.OK)].sign for c in CHECK_NAMES),
        ]
        for cr in review.clusters
    ]
    table(heads, rows)
    findings = sorted(review.findings, key=lambda f: (-f.severity.rank, f.cluster, f.check))
    if findings:
        print()
    for f in findings:
        where = f"{f.namespace}/{f.cluster}" if f.namespace else f.cluster
        print(safe_text(f"{f.severity:8} {f.check:14} {where}: {f.detail}"))
        for e in f.evidence[:3]:
            print(safe_text(f"{'':24}{e.kind} {e.ref}" + (f": {e.detail}" if e.detail else "")))
        if len(f.evidence) > 3:
            print(f"{'':24}... {len(f.evidence) - 3} more (see --json or --markdown)")
    c = review.counts()
    err(
        f"pgdeck: {len(review.clusters)} clusters: {c['critical']} critical, "
        f"{c['warning']} warning, {c['info']} info"
    )
    return review.exit_code


def _archive(args: argparse.Namespace, *, write: bool, recover: bool = True) -> Any:
    """The configured archive, with the reports of processes that are gone completed
    first (as ``interrupted``, audited), so that what is read or written next is whole.
    To write, the archive must be writable (``ArchiveError`` otherwise); only to read (an
    auditor with read access), a recovery that cannot write is a warning."""
    from services.archive import open_archive

    archive = open_archive(load_config(args.config, args.kube), args.clock)
    if write:
        archive.check_writable()
    if recover:
        _recover(archive, write=write)
    return archive


def _recover(archive: Any, *, write: bool) -> None:
    try:
        found = archive.recover_interrupted()
    except PgdeckError as exc:
        if write:
            raise
        err(f"pgdeck: warning: interrupted reports were not completed: {exc}")
        found = []
    for f in found:
        where = f.archived.json_url if f.archived else f.name
        what = "was interrupted" if f.outcome == "interrupted" else "had no audit entry"
        err(f"pgdeck: the {f.kind} {f.name} {what}; archived as {where}")


def cmd_audit(args: argparse.Namespace) -> int:
    """``pgdeck audit verify``: 0 intact, 1 naming the first bad entry, 2 config error.

    The archive is checked as found, before anything is written to it; only an intact
    chain then gets the reports of processes that are gone completed (as interrupted)."""
    archive = _archive(args, write=False, recover=False)
    check = archive.verify()
    if check.ok:
        _recover(archive, write=False)
        check = archive.verify()
    if args.json:
        print_json(check)
    elif check.ok:
        legacy = f", {check.legacy} older lines unchained" if check.legacy else ""
        print(
            f"{check.archive}: intact: {check.entries} entries, {check.reports} reports "
            f"checked{legacy}; newest entry sha256 {check.last_sha256 or '-'}"
        )
    if check.first is not None:
        more = len(check.problems) - 1
        err(f"pgdeck: {check.first}" + (f" (and {more} more; --json lists all)" if more else ""))
        return EXIT_PROBLEMS
    return EXIT_OK
