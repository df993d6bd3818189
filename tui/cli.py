"""The headless command line: ``pgdeck clusters``, ``backups``, ``jobs``, ``logs``, ``demo``.

``--json`` prints JSON alone on stdout; messages and progress go to stderr. Exit 0 when
all went well, 1 when a source failed (what could be read is still printed), 2 for
usage and configuration errors. No traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from services.catalog import Catalog, CatalogProgress, CatalogState
from services.clock import Clock, clock_from_env
from services.config import Config, load_config
from services.errors import ConfigError, PgdeckError
from services.text import safe_text
from tui import present

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit status is 2 already
        self.print_usage(sys.stderr)
        sys.stderr.write(f"pgdeck: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the subcommand; the subcommand's
    # copy defaults to SUPPRESS so it never overwrites a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file (default: $PGDECK_CONFIG, then the XDG config dir)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $PGDECK_CONFIG, then the XDG config dir)",
    )
    top.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    refresh = argparse.ArgumentParser(add_help=False)
    group = refresh.add_mutually_exclusive_group()
    group.add_argument(
        "--cached", action="store_true", help="answer from the local cache only, without network"
    )
    group.add_argument(
        "--full-refresh",
        action="store_true",
        help="list storage completely instead of only what is new",
    )
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="print JSON on stdout")

    p = _Parser(
        prog="pgdeck",
        description="Backups of Zalando Postgres Operator clusters: browse, verify, restore.",
        parents=[top],
    )
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser(
        "clusters", parents=[common, refresh, out], help="list clusters from Kubernetes and storage"
    )

    b = sub.add_parser(
        "backups",
        parents=[common, refresh, out],
        help="list the backups of one cluster, newest first",
    )
    b.add_argument("cluster", help="cluster name")
    b.add_argument("-n", "--namespace", help="namespace, when the name is in several")
    b.add_argument("--context", help="Kubernetes context, when the name is in several")
    b.add_argument(
        "--sse",
        action="store_true",
        help="ask storage for each object's server-side encryption (HEAD)",
    )
    b.add_argument("--limit", type=int, metavar="N", help="only the newest N backups")

    j = sub.add_parser(
        "jobs",
        parents=[common, refresh, out],
        help="the backup CronJob and the Jobs Kubernetes still keeps",
    )
    j.add_argument("cluster")
    j.add_argument("-n", "--namespace")
    j.add_argument("--context")

    lg = sub.add_parser(
        "logs",
        parents=[common, refresh],
        help="the log of a backup job's pod (the newest job by default)",
    )
    lg.add_argument("cluster")
    lg.add_argument("job", nargs="?", help="job name (default: the newest)")
    lg.add_argument("-n", "--namespace")
    lg.add_argument("--context")
    lg.add_argument("-f", "--follow", action="store_true", help="follow the log while the job runs")
    lg.add_argument(
        "--raw",
        action="store_true",
        help="print the lines as the pod wrote them, escape sequences included "
        "(default: control characters shown as \\x1b, on a terminal and in a pipe alike)",
    )

    rv = sub.add_parser(
        "review",
        parents=[common, refresh, out],
        help="the weekly backup review: every cluster against the checklist",
    )
    rv.add_argument(
        "--since",
        type=_duration,
        metavar="AGE",
        help="the window reviewed, e.g. 7d, 36h, 2w (default: review.since_days, 7 days)",
    )
    rv.add_argument(
        "--verify", action="store_true", help="also check each cluster's newest backup end to end"
    )
    rv.add_argument("--markdown", metavar="FILE", help="also write the review as Markdown")
    rv.add_argument(
        "--sign-off",
        metavar="NAME",
        help="sign the review off as NAME and archive it (JSON, Markdown, an audit entry)",
    )
    rv.add_argument("--note", metavar="TEXT", help="the sign-off's note (with --sign-off)")

    au = sub.add_parser("audit", parents=[common], help="the archive's audit log")
    au_sub = au.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    au_sub.add_parser(
        "verify",
        parents=[common, out],
        help="check the audit log's hash chain and every report it names",
    )

    v = sub.add_parser(
        "verify",
        parents=[common, refresh, out],
        help="check a backup end to end: gzip, trailer, tables and rows",
    )
    v.add_argument(
        "backup", help="s3://bucket/key, file:///path, CLUSTER@latest or CLUSTER@<ISO time>"
    )
    v.add_argument("-n", "--namespace")

    r = sub.add_parser(
        "restore",
        parents=[common, refresh, out],
        help="restore a backup into a PostgreSQL server, validate it and archive a report",
    )
    r.add_argument(
        "backup", help="s3://bucket/key, file:///path, CLUSTER@latest or CLUSTER@<ISO time>"
    )
    r.add_argument("--target", required=True, help="a target named in the config, or a libpq DSN")
    r.add_argument("-n", "--namespace", help="the cluster's namespace, when the name is in several")
    r.add_argument(
        "--database",
        action="append",
        default=[],
        metavar="NAME[:NEW]",
        help="restore only this database (repeatable); NAME:NEW restores it under a new name",
    )
    r.add_argument(
        "--roles",
        choices=("all", "no-passwords", "skip"),
        default="no-passwords",
        help="what of the dump's roles to restore (default no-passwords: create the roles, "
        "keep the target's passwords, which the operator manages in Secrets)",
    )
    r.add_argument(
        "--drop-existing",
        action="store_true",
        help="replace databases that already exist on the target",
    )
    r.add_argument(
        "--thorough",
        action="store_true",
        help="validate by recounting every table and every foreign key with queries "
        "(default: the server's COPY counts and the keys PostgreSQL validated itself)",
    )
    r.add_argument(
        "--verify-first",
        action="store_true",
        help="read the backup through once before writing anything: a damaged backup and "
        "every database the target cannot take are refused before the first statement",
    )
    r.add_argument(
        "--on-failure",
        choices=("keep", "drop"),
        default="keep",
        help="what to do with the databases a failed or cancelled restore created and left "
        "incomplete (default keep; drop never touches a database that existed before)",
    )
    r.add_argument(
        "--target-password-file",
        metavar="FILE",
        help="read the target's password from the first line of FILE (a password inside "
        "--target is visible to other local users)",
    )
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.add_argument(
        "--yes-production", metavar="TARGET", help="confirm a target marked production by its name"
    )

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="open the console on a demo sandbox with planted problems to find",
    )
    shown = d.add_mutually_exclusive_group()
    shown.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the sandbox (once) and print its config path",
    )
    shown.add_argument(
        "--print",
        action="store_true",
        help="print the sandbox's catalog instead of opening the console (no restore target)",
    )
    d.add_argument("--rebuild", action="store_true", help="build the sandbox again from scratch")
    return p


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """``clock`` is "now" for every judgement the command makes (default: ``PGDECK_NOW``
    when set, else the system clock)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)
    if not args.debug:
        for noisy in ("botocore", "urllib3", "kubernetes", "boto3"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        args.clock = clock or clock_from_env()
        if args.command is None:
            return cmd_tui(args)
        return COMMANDS[args.command](args)
    except PgdeckError as exc:
        if args.debug:
            raise
        _err(f"pgdeck: {exc}")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        _err(
            "pgdeck: interrupted; nothing was written"
            if isinstance(exc, Interrupted)
            else "pgdeck: interrupted"
        )
        return 128 + getattr(exc, "signum", 2)
    except BrokenPipeError:
        return EXIT_OK


def _err(text: str) -> None:
    # Messages quote names, keys and log lines from outside: never a live escape sequence.
    print(safe_text(text, keep="\t\n"), file=sys.stderr, flush=True)


# --- the catalog, loaded as asked ---------------------------------------------------------
def open_catalog(
    args: argparse.Namespace, config: Config | None = None
) -> tuple[Catalog, CatalogState]:
    config = config or load_config(args.config)
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
        with _Progress(sys.stderr) as progress:
            state = catalog.refresh(full=getattr(args, "full_refresh", False), progress=progress)
    for p in state.problems:
        if not p.fatal_for_source:
            _err(f"pgdeck: warning: {p.source}: {p.message}")
        elif p.message.startswith(p.source):  # storage errors already name their URL
            _err(f"pgdeck: {p.message}")
        else:
            _err(f"pgdeck: {p.source}: {p.message}")
    return catalog, state


def resolve_backup(args: argparse.Namespace, config: Config | None = None) -> tuple[Any, str, str]:
    """The store, key and URL of ``args.backup``. A URL needs no listing (the cache knows
    the endpoints); ``CLUSTER@...`` needs the catalog, refreshed unless --cached."""
    if "://" in args.backup:
        catalog = Catalog(config or load_config(args.config), clock=args.clock)
        catalog.load_cached()
    else:
        catalog, _ = open_catalog(args, config)
    return catalog.resolve(args.backup, args.namespace)


def _status(state: CatalogState) -> int:
    return EXIT_PROBLEMS if any(p.fatal_for_source for p in state.problems) else EXIT_OK


class _Progress:
    """A transient progress bar on a terminal; silence otherwise (logs stay clean).

    Catalog refreshes report steps (``CatalogProgress``), streams report bytes
    (``StreamProgress``); one bar shows either.
    """

    def __init__(self, stream: TextIO, label: str = "reading", *, in_bytes: bool = False) -> None:
        self.stream, self.label, self.in_bytes = stream, safe_text(label), in_bytes
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[Any], None]:
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            columns: tuple[Any, ...] = (
                (DownloadColumn(), TransferSpeedColumn())
                if self.in_bytes
                else (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            )
            self._rich = Progress(
                TextColumn("{task.description}"),
                *columns,
                console=Console(file=self.stream),
                transient=True,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=None)
        return self.update

    def update(self, p: Any) -> None:
        if self._rich is None:
            return
        if isinstance(p, CatalogProgress):
            label = {"kubernetes": "Kubernetes", "storage": "listing backups"}.get(p.stage, p.stage)
            self._rich.update(
                self._task, description=label, completed=p.done, total=p.total or None
            )
        else:
            self._rich.update(
                self._task, completed=p.compressed_read, total=p.compressed_total or None
            )

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()


# --- commands -------------------------------------------------------------------------------
def cmd_clusters(args: argparse.Namespace) -> int:
    _, state = open_catalog(args)
    if args.json:
        _print_json([present.cluster_json(s) for s in state.clusters])
        return _status(state)
    rows = []
    now = args.clock()
    for s in state.clusters:
        c = s.cluster
        last = s.last_backup
        rows.append(
            [
                c.namespace or "-",
                c.name,
                (c.status or "-") if c.in_kubernetes else "storage-only",
                ("on " + (c.schedule or ""))
                if c.logical_backup
                else ("off" if c.in_kubernetes else "-"),
                str(s.backups),
                present.age(last.time, now) if last else "never",
                present.size(last.size) if last else "-",
                c.uid[:8] if c.uid else "-",
            ]
        )
    _table(
        ["NAMESPACE", "NAME", "STATUS", "BACKUPS JOB", "BACKUPS", "LAST BACKUP", "SIZE", "UID"],
        rows,
    )
    if not state.clusters and _status(state) == EXIT_OK:  # else the failure said why
        _err("pgdeck: no clusters found")
    return _status(state)


def cmd_backups(args: argparse.Namespace) -> int:
    catalog, state = open_catalog(args)
    cluster = catalog.find(args.cluster, args.namespace, args.context)
    backups = catalog.backups(cluster)
    if args.limit is not None:
        backups = backups[: max(0, args.limit)]
    if args.sse:
        backups = catalog.with_sse(backups)
    future = {b.url for b in backups if catalog.future_dated(b)}
    if future:
        newest = max(b.time for b in backups if b.url in future)
        _err(
            f"pgdeck: warning: {len(future)} backup(s) of {cluster.name} dated in the future "
            f"(the latest {present.iso(newest)}): a wrong clock where the backup ran, or a "
            "forged key; CLUSTER@latest never chooses them"
        )
    if args.json:
        _print_json([{**present.backup_json(b), "future_dated": b.url in future} for b in backups])
        return _status(state)
    now = args.clock()
    rows = [
        [present.iso(b.time) or "", present.age(b.time, now), present.size(b.size), b.uid[:8]]
        + ([("none" if b.sse == "" else b.sse or "-")] if args.sse else [])
        + ["FUTURE-DATED" if b.url in future else "", b.url]
        for b in backups
    ]
    _table(
        ["TIME (UTC)", "AGE", "SIZE", "UID"] + (["SSE"] if args.sse else []) + ["NOTE", "URL"],
        rows,
    )
    if not backups:
        _err(f"pgdeck: no backups of {cluster.name} in storage")
    return _status(state)


def cmd_jobs(args: argparse.Namespace) -> int:
    catalog, state = open_catalog(args)
    cluster = catalog.find(args.cluster, args.namespace, args.context)
    jobs = catalog.jobs(cluster)
    if args.json:
        _print_json(
            {
                "cronjob": present.cronjob_json(cluster.cronjob),
                "jobs": [present.job_json(j) for j in jobs],
            }
        )
        return _status(state)
    cj = cluster.cronjob
    if cj is None:
        _err(
            f"pgdeck: {cluster.name}: no logical-backup CronJob"
            + ("" if cluster.logical_backup else " (logical backups are off)")
        )
    else:
        print(
            safe_text(
                f"CronJob {cj.namespace}/{cj.name}  schedule {cj.schedule!r}{'  SUSPENDED' if cj.suspended else ''}"
            )
        )
        print(
            f"  last schedule {present.iso(cj.last_schedule) or '-'}  last success {present.iso(cj.last_successful) or '-'}  active {cj.active}"
        )
    rows = [
        [
            j.name,
            j.status,
            present.iso(j.started) or "-",
            present.iso(j.finished) or "-",
            j.reason or "",
            ", ".join(p.name for p in j.pods),
        ]
        for j in jobs
    ]
    _table(["JOB", "STATUS", "STARTED", "FINISHED", "REASON", "PODS"], rows)
    return _status(state)


def cmd_logs(args: argparse.Namespace) -> int:
    from services.errors import UsageError

    catalog, _ = open_catalog(args)
    cluster = catalog.find(args.cluster, args.namespace, args.context)
    jobs = catalog.jobs(cluster)
    if args.job:
        jobs = [j for j in jobs if j.name == args.job]
        if not jobs:
            raise UsageError(
                f"no job {args.job!r} kept for {cluster.name}", f"see `pgdeck jobs {cluster.name}`"
            )
    if not jobs or not jobs[0].pods:
        raise UsageError(
            f"{cluster.name}: no backup job pods kept by Kubernetes",
            "jobs are deleted after their TTL",
        )
    pod = jobs[0].pods[-1]
    # Lines arrive cut at LINE_LIMIT; control characters are shown escaped unless --raw,
    # to a pipe too: a file written now is `cat` to a terminal later.
    show = (lambda line: line) if args.raw else safe_text
    for line in catalog.read_log(cluster.context, pod.namespace, pod.name, follow=args.follow):
        sys.stdout.write(show(line) + "\n")
        if args.follow:
            sys.stdout.flush()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """The console on the demo sandbox, with a local PostgreSQL as restore target
    ``demo-local``; ``--print`` (or a stdout that is no terminal) prints the catalog."""
    from platformdirs import user_cache_dir

    from services.demo import prepare_sandbox

    root = Path(user_cache_dir("pgdeck")) / "demo"
    sandbox = prepare_sandbox(
        root, rebuild=args.rebuild, now=args.clock(), progress=lambda line: _err(f"demo: {line}")
    )
    if args.prepare_only:
        print(sandbox.config_path)
        return EXIT_OK
    if not args.print and not sys.stdout.isatty():
        _err("demo: stdout is not a terminal: printing the catalog instead (as with --print)")
        args.print = True
    if args.print:
        _err(f"demo: sandbox config {sandbox.config_path}")
        args.config = str(sandbox.config_path)
        args.json = False
        args.cached = False
        args.full_refresh = False
        code = cmd_clusters(args)
        _err(f"try: pgdeck --config {sandbox.config_path} backups acid-orders")
        return code
    return _demo_console(sandbox.config_path, sandbox.root, args.clock)


def _demo_console(config_path: Path, root: Path, clock: Clock) -> int:
    import contextlib
    import dataclasses

    from services.config import Target
    from services.demo_target import TARGET_NAME, demo_target, dsn
    from tui.app import PgdeckApp

    config = load_config(str(config_path))
    with contextlib.ExitStack() as stack:
        try:
            pg = stack.enter_context(demo_target(root, progress=lambda line: _err(f"demo: {line}")))
        except (PgdeckError, OSError) as exc:
            # The console is still worth opening: everything but a restore works.
            _err(f"demo: no local restore target ({exc}); the console opens without one")
        else:
            target = Target(name=TARGET_NAME, dsn=dsn(pg), production=False)
            config = dataclasses.replace(config, targets=(*config.targets, target))
        app = PgdeckApp(Catalog(config, clock=clock))
        app.run()
    return app.return_code or EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from services.verify import verify_backup

    store, key, url = resolve_backup(args)
    with _Progress(sys.stderr, f"verifying {url}", in_bytes=True) as progress:
        result = verify_backup(store, key, progress=progress)
    s = result.summary
    if args.json:
        _print_json(
            {
                "url": result.url,
                "ok": result.ok,
                "problem": result.problem,
                "complete": s.complete,
                "compressed_bytes": result.compressed_bytes,
                "uncompressed_bytes": s.bytes,
                "seconds": round(result.seconds, 3),
                "retries": result.retries,
                "server_version": s.server_version,
                "pg_dumpall_version": s.pg_dumpall_version,
                "roles": s.roles,
                "databases": [
                    {
                        "name": d.name,
                        "created": d.created,
                        "complete": d.complete,
                        "locale": d.locale,
                        "tables": [
                            {"schema": t.schema, "name": t.name, "rows": t.rows} for t in d.tables
                        ],
                        "objects": {k: len(v) for k, v in sorted(d.objects.items())},
                    }
                    for d in s.databases
                ],
            }
        )
    else:
        print(safe_text(result.url))
        print(
            safe_text(
                f"  {present.size(result.compressed_bytes)} compressed, {present.size(s.bytes)} "
                f"of SQL, PostgreSQL {s.server_version or '?'}, {len(s.roles)} roles, "
                f"{result.seconds:.1f}s"
            )
        )
        rows = [[d.name, t.qualified, str(t.rows)] for d in s.databases for t in d.tables]
        rows += [[d.name, "(no tables)", ""] for d in s.databases if not d.tables]
        _table(["DATABASE", "TABLE", "ROWS"], rows)
        if result.ok:
            print(
                "intact: gzip verified, dump complete, its statements of the kinds pg_dump writes"
            )
        elif result.unreadable:
            print(
                f"NOT READ (the storage failed; nothing is known of the backup): {safe_text(result.problem or '')}"
            )
        else:
            print(f"NOT INTACT: {safe_text(result.problem or '')}")
    if not result.ok:
        problem = result.problem or ""
        _err(
            f"pgdeck: {problem}"
            if problem.startswith(result.url)
            else f"pgdeck: {result.url}: {problem}"
        )
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def cmd_tui(args: argparse.Namespace) -> int:
    """``pgdeck`` alone: the full-screen console."""
    from tui.app import PgdeckApp

    config = load_config(args.config)
    app = PgdeckApp(Catalog(config, clock=args.clock))
    app.run()
    return app.return_code or EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    import dataclasses

    from services.archive import open_archive, recover_quietly
    from services.report import archive_report, begin_report, report_label
    from services.restore import RestoreEngine
    from services.restore_plan import Scope
    from services.target import production_twin, read_password_file, resolve_target
    from tui.restore_view import RestoreView

    config = load_config(args.config)
    scope = Scope.parse(args.database, args.roles)
    if not args.yes and not sys.stdin.isatty():
        raise ConfigError(
            "restore needs confirmation", "pass --yes when running without a terminal"
        )
    password = read_password_file(args.target_password_file) if args.target_password_file else None
    target = resolve_target(args.target, config, password=password)
    if target.password_in_spec:
        _err(
            "pgdeck: warning: the password in --target is visible to other local users in the "
            "process list; use --target-password-file FILE or ~/.pgpass, or leave it out to be asked"
        )
    archive = open_archive(config, args.clock)
    recover_quietly(archive)
    archive.check_writable()
    with _Signals() as signals:
        target, identity = _identify(target)
        twin, notes = production_twin(target, identity, config)
        for note in notes:
            _err(f"pgdeck: warning: {note}")
        if twin is not None and not target.production:
            target = dataclasses.replace(target, production=True, name=twin.name)
            _err(
                f"pgdeck: {identity.display} is the server of production target {twin.name!r} "
                f"(system identifier {identity.system_identifier}; a clone made from it by a "
                "base backup shares it too)"
            )
        if target.production and args.yes_production != target.name:
            raise ConfigError(
                f"target {target.name!r} is production",
                f"pass --yes-production {target.name} to restore into it",
            )
        store, key, url = resolve_backup(args, config)
        if not args.yes:
            _err(
                f"restore {scope.describe()} from {url}\n   into {identity.display} (roles: {scope.roles})"
            )
            if input("proceed? [y/N] ").strip().lower() not in ("y", "yes"):
                _err("pgdeck: nothing was done")
                return EXIT_PROBLEMS
        verified = None
        if args.verify_first:
            from services.verify import verify_before_restore

            with _Progress(sys.stderr, f"verifying {url}", in_bytes=True) as progress:
                verified = verify_before_restore(store, key, url, progress=progress)
            _err(f"pgdeck: {url}: intact ({len(verified.tables)} tables), restoring")
        label = report_label(url, target.name)
        pending: list[Any] = []
        view = RestoreView(sys.stderr, quiet=args.json)
        engine = RestoreEngine(
            store=store,
            key=key,
            url=url,
            target=target,
            scope=scope,
            drop_existing=args.drop_existing,
            checks=config.checks,
            on_event=view.on_event,
            thorough=args.thorough,
            verified=verified,
            clock=args.clock,
            on_failure=args.on_failure,
            identity=identity,
            on_start=lambda r: pending.append(begin_report(r, archive, label, clock=args.clock)),
        )
        with view:
            report = signals.run(engine.run, engine.cancel)
        # Still inside the handlers: a late signal must not stop the report's archiving.
        archive_error = None
        try:
            archive_report(
                report, archive, label, pending=pending[0] if pending else None, clock=args.clock
            )
        except PgdeckError as exc:
            archive_error = exc
    if args.json:
        _print_json(report.to_dict())
        for line in present.incomplete_lines(report):
            _err(f"pgdeck: {line}")
    else:
        view.summary(report)
    if archive_error is not None:
        _err(f"pgdeck: {archive_error}")
        return EXIT_PROBLEMS
    if report.status == "succeeded":
        return EXIT_OK
    if report.status == "cancelled":
        return 128 + (signals.received or 2)
    return EXIT_PROBLEMS


def _identify(target: Any) -> tuple[Any, Any]:
    """The target's live identity; asks for a password on a terminal when it needs one."""
    import dataclasses
    import getpass

    from services.target import identify

    try:
        return target, identify(target)
    except PgdeckError as exc:
        if "password authentication failed" not in exc.message or target.password is not None:
            raise
        if not sys.stdin.isatty():
            raise
    password = getpass.getpass(f"password for {target.display}: ")
    target = dataclasses.replace(target, password=password)
    return target, identify(target)


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP before a restore began writing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP stop a restore as Ctrl-C does: the engine runs in a
    thread, and the main thread (where Python runs signal handlers) cancels it. Before
    the engine runs, a signal interrupts the command (nothing was written yet)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.received: int | None = None
        self._cancel: Callable[[], None] | None = None
        self._done = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        import signal

        for name in self.SIGNALS:
            num = getattr(signal, name, None)
            if num is not None:
                self._previous[num] = signal.signal(num, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for num, handler in self._previous.items():
            signal.signal(num, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self._done:
            return  # the restore ended: its report is being archived
        self.received = self.received or signum
        if self._cancel is not None:
            self._cancel()
        else:
            raise Interrupted(signum)

    def run(self, work: Callable[[], Any], cancel: Callable[[], None]) -> Any:
        import threading

        result: list[Any] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                result.append(work())
            except BaseException as exc:  # handed to the main thread
                failure.append(exc)

        thread = threading.Thread(target=target, name="restore", daemon=True)
        self._cancel = cancel
        try:
            thread.start()
            while thread.is_alive():
                thread.join(0.2)
        finally:
            self._cancel = None
            self._done = True
        if failure:
            raise failure[0]
        return result[0]


_MARKS = {"ok": "✓", "skipped": "-", "info": "i", "warning": "!", "critical": "✗"}


def _duration(text: str) -> timedelta:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw])\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 7d, 36h or 2w")
    n, unit = float(m[1]), m[2]
    return timedelta(hours=n) if unit == "h" else timedelta(days=n * (7 if unit == "w" else 1))


def cmd_review(args: argparse.Namespace) -> int:
    from services.errors import UsageError
    from services.review import CHECKS, RANK, run_review, sign_off

    archive = None
    if args.note is not None and args.sign_off is None:
        raise UsageError("--note goes with --sign-off NAME", "add --sign-off NAME")
    if args.sign_off is not None:
        if not args.sign_off.strip():
            raise UsageError("--sign-off needs the reviewer's name")
        # Before the review is made: an unwritable archive fails at once, not after it.
        archive = _archive(args, write=True)
    catalog, state = open_catalog(args)
    with _Progress(sys.stderr, "reviewing") as progress:
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
        sign_off(review, args.sign_off, args.note, archive, clock=args.clock)
        paths = review.archived or {}
        _err(
            f"pgdeck: review signed off by {review.reviewer}, archived as {paths.get('json')} "
            f"and {paths.get('markdown')}"
        )
    if args.json:
        _print_json(review.to_dict())
        return review.exit_code
    print(
        f"review of {review.window_start:%Y-%m-%d %H:%M} to {review.window_end:%Y-%m-%d %H:%M} UTC"
        + (", newest backups verified" if review.verify else "")
    )
    heads = ["CLUSTER", *(c.replace("_", " ").upper() for c in CHECKS)]
    rows = [
        [
            f"{cr.namespace}/{cr.cluster}" if cr.namespace else f"{cr.cluster} (storage)",
            *(_MARKS.get(cr.marks.get(c, "ok"), "?") for c in CHECKS),
        ]
        for cr in review.clusters
    ]
    _table(heads, rows)
    findings = sorted(review.findings, key=lambda f: (-RANK[f.severity], f.cluster, f.check))
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
    _err(
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

    archive = open_archive(load_config(args.config), args.clock)
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
        _err(f"pgdeck: warning: interrupted reports were not completed: {exc}")
        found = []
    for f in found:
        where = f.archived.json_url if f.archived else f.name
        what = "was interrupted" if f.outcome == "interrupted" else "had no audit entry"
        _err(f"pgdeck: the {f.kind} {f.name} {what}; archived as {where}")


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
        _print_json(check.to_dict())
    elif check.ok:
        legacy = f", {check.legacy} older lines unchained" if check.legacy else ""
        print(
            f"{check.archive}: intact: {check.entries} entries, {check.reports} reports "
            f"checked{legacy}; newest entry sha256 {check.last_sha256 or '-'}"
        )
    if check.first is not None:
        more = len(check.problems) - 1
        _err(f"pgdeck: {check.first}" + (f" (and {more} more; --json lists all)" if more else ""))
        return EXIT_PROBLEMS
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "review": cmd_review,
    "audit": cmd_audit,
    "restore": cmd_restore,
    "verify": cmd_verify,
    "clusters": cmd_clusters,
    "backups": cmd_backups,
    "jobs": cmd_jobs,
    "logs": cmd_logs,
    "demo": cmd_demo,
}


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _table(headers: list[str], rows: list[list[str]]) -> None:
    # Cells hold names, keys and database names from outside: control characters escaped.
    rows = [[safe_text(str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, r, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*headers).rstrip())
    for r in rows:
        print(fmt.format(*r).rstrip())


if __name__ == "__main__":
    raise SystemExit(main())
