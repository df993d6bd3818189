"""Browsing: ``pgdeck clusters``, ``backups``, ``jobs``, ``logs``, and ``pgdeck`` alone (the
full-screen console)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from services.catalog import Catalog
from services.config import load_config
from services.jsonable import iso
from services.text import safe_text
from tui import present
from tui.cli.render import EXIT_OK, err, print_json, table
from tui.cli.sources import catalog_status, open_catalog

if TYPE_CHECKING:
    from tui.app import PgdeckApp


def cmd_clusters(args: argparse.Namespace) -> int:
    _, state = open_catalog(args)
    if args.json:
        print_json(state.clusters)
        return catalog_status(state)
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
    table(
        ["NAMESPACE", "NAME", "STATUS", "BACKUPS JOB", "BACKUPS", "LAST BACKUP", "SIZE", "UID"],
        rows,
    )
    if not state.clusters and catalog_status(state) == EXIT_OK:  # else the failure said why
        err("pgdeck: no clusters found")
    return catalog_status(state)


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
        err(
            f"pgdeck: warning: {len(future)} backup(s) of {cluster.name} dated in the future "
            f"(the latest {iso(newest)}): a wrong clock where the backup ran, or a "
            "forged key; CLUSTER@latest never chooses them"
        )
    if args.json:
        print_json([{**b.to_dict(), "future_dated": b.url in future} for b in backups])
        return catalog_status(state)
    now = args.clock()
    rows = [
        [iso(b.time) or "", present.age(b.time, now), present.size(b.size), b.uid[:8]]
        + ([("none" if b.sse == "" else b.sse or "-")] if args.sse else [])
        + ["FUTURE-DATED" if b.url in future else "", b.url]
        for b in backups
    ]
    table(
        ["TIME (UTC)", "AGE", "SIZE", "UID"] + (["SSE"] if args.sse else []) + ["NOTE", "URL"],
        rows,
    )
    if not backups:
        err(f"pgdeck: no backups of {cluster.name} in storage")
    return catalog_status(state)


def cmd_jobs(args: argparse.Namespace) -> int:
    catalog, state = open_catalog(args)
    cluster = catalog.find(args.cluster, args.namespace, args.context)
    jobs = catalog.jobs(cluster)
    if args.json:
        print_json({"cronjob": cluster.cronjob, "jobs": jobs})
        return catalog_status(state)
    cj = cluster.cronjob
    if cj is None:
        err(
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
            f"  last schedule {iso(cj.last_schedule) or '-'}  last success {iso(cj.last_successful) or '-'}  active {cj.active}"
        )
    rows = [
        [
            j.name,
            j.status,
            iso(j.started) or "-",
            iso(j.finished) or "-",
            j.reason or "",
            ", ".join(p.name for p in j.pods),
        ]
        for j in jobs
    ]
    table(["JOB", "STATUS", "STARTED", "FINISHED", "REASON", "PODS"], rows)
    return catalog_status(state)


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


def cmd_tui(args: argparse.Namespace) -> int:
    """``pgdeck`` alone: the full-screen console."""
    app = console(args)
    app.run()
    return app.return_code or EXIT_OK


def console(args: argparse.Namespace) -> PgdeckApp:
    """The console ``cmd_tui`` runs, on the configuration the command line asks for."""
    from tui.app import PgdeckApp

    return PgdeckApp(Catalog(load_config(args.config, args.kube), clock=args.clock))
