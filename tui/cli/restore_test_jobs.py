"""``pgdeck restore-test CLUSTER... | --all --in-cluster [--dry-run]``: each test as a Job.

The tests run in the cluster (``services.restore_test_launcher``), so dumps never travel
through this machine: each Job's pod log is printed live, each line prefixed by its
cluster, then one row per test (result, time-to-restore against the objective, the
report's URL in the archive). ``--dry-run`` prints the Jobs as one YAML stream (what
``kubectl apply -f -`` takes) and creates nothing. Ctrl-C (SIGTERM, SIGHUP) deletes the
running Jobs, whose pods get SIGTERM: pgdeck inside them tears its staging clusters down.
Exit 0 when every test passed, 1 when one did not, 2 when none could run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.config import Config
from services.errors import UsageError
from services.text import safe_text
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, err, print_json, table


def add_in_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-cluster",
        action="store_true",
        help="run each test as a Kubernetes Job in staging.namespace (restore_tests.image)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --in-cluster: print the Jobs as YAML (for kubectl apply -f -), create nothing",
    )


def cmd_in_cluster(args: argparse.Namespace, config: Config) -> int:
    from services.backup_choice import parse_choice
    from services.restore_test import TestRequest, require_kubernetes_api
    from services.restore_test_jobs import job_manifest, require_image, yaml_stream
    from services.staging_spec import new_run_id

    if not args.in_cluster:
        raise UsageError("--dry-run goes with --in-cluster")
    if bool(args.clusters) == bool(args.all):
        raise UsageError("name the clusters to test, or pass --all")
    require_image(config.restore_tests)  # exit 2 before anything else
    choice = parse_choice(args.backup)
    if not args.dry_run:  # a dry run only prints the Jobs
        require_kubernetes_api(config)
    run_id = args.run_id or new_run_id(args.clock())
    tests = [
        TestRequest(name, namespace or None, choice, args.seed, args.keep, jobs=args.jobs)
        for name, namespace in _clusters(args, config)
    ]
    if args.dry_run:
        sys.stdout.write(
            yaml_stream(
                job_manifest(
                    config.restore_tests,
                    config.staging.namespace,
                    source=t.cluster,
                    run_id=run_id,
                    backup=str(t.choice),
                    seed=t.seed,
                    keep=t.keep,
                    source_namespace=t.namespace or "",
                    jobs=t.jobs_in(config),
                )
                for t in tests
            )
        )
        return EXIT_OK
    return _run(args, config, tests, run_id)


def _run(args: argparse.Namespace, config: Config, tests: list[Any], run_id: str) -> int:
    from services.archive import open_archive
    from services.restore_test import TestsCancel
    from services.restore_test_launcher import JobLauncher
    from tui.cli.restore import _Signals

    archive = open_archive(config, args.clock)
    launcher = JobLauncher(config, clock=args.clock, archive=archive)
    cancel = TestsCancel()
    out = sys.stderr if args.json else sys.stdout
    width = max(len(t.cluster) for t in tests)

    def on_line(cluster: str, line: str) -> None:
        # Log lines come from a pod: never a live escape sequence on this terminal.
        print(f"{cluster:<{width}} | {safe_text(line)}", file=out, flush=True)

    err(
        f"pgdeck: run {run_id}: {len(tests)} restore test(s) as Jobs in "
        f"{launcher.context}/{config.staging.namespace}, {config.staging.max_parallel} at once"
    )
    with _Signals(cancel) as signals:  # as restore-test without --in-cluster
        outcomes = signals.run(
            lambda: launcher.run(tests, run_id=run_id, on_line=on_line, cancel=cancel)
        )
    if args.json:  # as restore-test without --in-cluster prints them, named when no report
        print_json(
            [
                {"cluster": o.cluster, **o.document, "archived": o.archived, "error": o.error}
                for o in outcomes
            ]
        )
    else:
        table(
            ["CLUSTER", "RESULT", "TTR", "OBJECTIVE", "REPORT"],
            [
                [
                    o.cluster,
                    o.result,
                    _ttr(o.document),
                    _objective(o.document),
                    o.archived.get("json", "-"),
                ]
                for o in outcomes
            ],
        )
    for o in outcomes:
        why = o.error or _first_reason(o.document)
        if why and o.result != "passed":
            err(f"pgdeck: {o.cluster}: {why}")
    if signals.received:
        err("pgdeck: interrupted; the running Jobs were deleted")
        return 128 + signals.received
    if all(o.result == "passed" and o.archived for o in outcomes):
        return EXIT_OK
    # As without --in-cluster: 2 when no test reached its restore (no Job, or none that did).
    if not launcher.created or not any(o.ran for o in outcomes):
        return EXIT_USAGE
    return EXIT_PROBLEMS


def _clusters(args: argparse.Namespace, config: Config) -> list[tuple[str, str]]:
    """(name, namespace) of every cluster to test, as restore-test finds them without
    --in-cluster: a name that is not there is refused before any Job runs."""
    from services.restore_test import testable
    from tui.cli.sources import open_catalog

    catalog, _ = open_catalog(args, config)
    if args.all:
        found = [(c.name, c.namespace) for c in testable(catalog)]
        if not found:
            raise UsageError(
                "no cluster in Kubernetes has logical backups enabled: nothing to test"
            )
        return found
    return [(name, catalog.find(name, args.namespace).namespace) for name in args.clusters]


def _ttr(doc: dict[str, Any]) -> str:
    ttr = doc.get("time_to_restore")
    total = ttr.get("total_seconds") if isinstance(ttr, dict) else None
    return _seconds(total)


def _objective(doc: dict[str, Any]) -> str:
    obj = doc.get("objective")
    if not isinstance(obj, dict):
        return "-"
    met = obj.get("met")
    verdict = "met" if met is True else "missed" if met is False else "?"
    return f"{_seconds(obj.get('rto_seconds'))} {verdict}"


def _seconds(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return "-"
    return f"{value:.0f}s"


def _first_reason(doc: dict[str, Any]) -> str | None:
    reasons = doc.get("reasons")
    return str(reasons[0]) if isinstance(reasons, list) and reasons else None
