"""The command line's grammar: the global options, and one ``add_*`` function per family of
subcommands (browsing, the review and its archive, verify and restore, the demo)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from services.config import KubernetesOverride
from tui.cli.render import EXIT_USAGE
from tui.cli.restore_test_jobs import add_in_cluster_options

CONFIG_HELP = "configuration file (default: $PGDECK_CONFIG, then the XDG config dir)"
DEBUG_HELP = "show tracebacks and debug logs"
BACKUP_HELP = "s3://bucket/key, file:///path, CLUSTER@latest or CLUSTER@<ISO time>"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit status is 2 already
        self.print_usage(sys.stderr)
        sys.stderr.write(f"pgdeck: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


class Parents(NamedTuple):
    """The option groups subcommands share, as argparse parents."""

    common: argparse.ArgumentParser  # --config, --debug
    refresh: argparse.ArgumentParser  # --cached | --full-refresh
    out: argparse.ArgumentParser  # --json


def build_parser(*, kubectl: bool = False) -> argparse.ArgumentParser:
    """pgdeck's grammar; ``kubectl``: as ``kubectl pgdeck`` (the plugin), with kubectl's
    flags before the command."""
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    top.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    p = _Parser(
        prog="kubectl pgdeck" if kubectl else "pgdeck",
        description="Backups of Zalando Postgres Operator clusters: browse, verify, restore."
        + (" With no command: the console." if kubectl else ""),
        parents=[top],
    )
    if kubectl:
        add_kubectl(p)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    parents = _parents()
    add_browse(sub, parents)
    add_review(sub, parents)
    add_restore(sub, parents)
    add_restore_test(sub, parents)
    add_demo(sub, parents)
    return p


def add_kubectl(p: argparse.ArgumentParser) -> None:
    """kubectl's flags, which override the config's ``kubernetes`` section for this run.
    Their own dests: a subcommand's ``-n``/``--context`` chooses among the clusters read."""
    k = p.add_argument_group("kubectl's flags (before the command)")
    k.add_argument("--context", dest="kube_context", metavar="CTX", help="the kubeconfig context")
    ns = k.add_mutually_exclusive_group()
    ns.add_argument(
        "-n",
        "--namespace",
        dest="kube_namespace",
        metavar="NS",
        type=namespace,
        help="only this namespace",
    )
    ns.add_argument(
        "-A",
        "--all-namespaces",
        dest="kube_all_namespaces",
        action="store_true",
        help="every namespace",
    )
    k.add_argument("--kubeconfig", dest="kube_kubeconfig", metavar="PATH", help="the kubeconfig")


def kube_override(args: argparse.Namespace) -> KubernetesOverride | None:
    """What ``add_kubectl``'s flags ask of the config (None: nothing, or plain ``pgdeck``)."""
    context = getattr(args, "kube_context", None)
    ns = getattr(args, "kube_namespace", None)
    every = getattr(args, "kube_all_namespaces", False)
    kubeconfig = getattr(args, "kube_kubeconfig", None)
    if context is None and ns is None and not every and kubeconfig is None:
        return None
    return KubernetesOverride(
        context=context,
        namespace=ns,
        all_namespaces=every,
        kubeconfig=None if kubeconfig is None else Path(kubeconfig).expanduser(),
    )


def namespace(text: str) -> str:
    """``-n``: a Kubernetes namespace name."""
    if len(text) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Kubernetes namespace name")
    return text


def _parents() -> Parents:
    # The global options are accepted before and after the subcommand; the subcommand's
    # copy defaults to SUPPRESS so it never overwrites a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=CONFIG_HELP)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
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
    return Parents(common, refresh, out)


def add_browse(sub: Any, parents: Parents) -> None:
    """``clusters``, ``backups``, ``jobs`` and ``logs``."""
    common, refresh, out = parents
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


def add_review(sub: Any, parents: Parents) -> None:
    """``review`` and ``audit verify``."""
    common, refresh, out = parents
    rv = sub.add_parser(
        "review",
        parents=[common, refresh, out],
        help="the weekly backup review: every cluster against the checklist",
    )
    rv.add_argument(
        "--since",
        type=duration,
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


def _jobs(text: str) -> int:
    from services.errors import UsageError
    from services.restore_flow import parse_jobs

    try:
        return parse_jobs(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def add_restore(sub: Any, parents: Parents) -> None:
    """``verify`` and ``restore``."""
    common, refresh, out = parents
    v = sub.add_parser(
        "verify",
        parents=[common, refresh, out],
        help="check a backup end to end: gzip, trailer, tables and rows",
    )
    v.add_argument("backup", help=BACKUP_HELP)
    v.add_argument("-n", "--namespace")

    r = sub.add_parser(
        "restore",
        parents=[common, refresh, out],
        help="restore a backup into a PostgreSQL server, validate it and archive a report",
    )
    r.add_argument("backup", help=BACKUP_HELP)
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
        "--jobs",
        type=_jobs,
        metavar="N",
        help="load table data on N sessions at once (default: the config's restore.jobs, 1); "
        "everything else still runs in the dump's order on one session",
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


def add_restore_test(sub: Any, parents: Parents) -> None:
    """``restore-test``."""
    t = sub.add_parser(
        "restore-test",
        parents=[parents.common, parents.out],
        help="restore backups into throwaway staging clusters, validate, time and archive",
        description="Restore each cluster's backup into a throwaway staging cluster, validate "
        "it, measure the time-to-restore against the objective, archive the report and delete "
        "the staging cluster. Exit 0 when every test passed, 1 when one did not, 2 when none "
        "could run.",
    )
    t.add_argument("clusters", nargs="*", metavar="CLUSTER", help="source clusters to test")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--all", action="store_true", help="every cluster with logical backups")
    mode.add_argument(
        "--cleanup",
        action="store_true",
        help="delete staging clusters a crashed test left (pgdeck's labels, older than --older-than)",
    )
    t.add_argument("-n", "--namespace", help="the clusters' namespace, when a name is in several")
    t.add_argument(
        "--backup",
        default="latest",
        metavar="WHICH",
        help="latest (default), random:30d (one at random within the window, as AWS Backup's "
        "RANDOM_WITHIN_WINDOW) or a backup's URL",
    )
    t.add_argument("--seed", type=int, help="the seed of random:WINDOW, to repeat a run's choice")
    t.add_argument("--keep", action="store_true", help="keep the staging clusters afterwards")
    t.add_argument(
        "--jobs",
        type=_jobs,
        metavar="N",
        help="restore each backup loading table data on N sessions at once (default: the "
        "config's restore.jobs, 1); with --in-cluster each Job's command carries it",
    )
    t.add_argument(
        "--port-forward",
        action="store_true",
        help="reach the staging primary through a port-forward made with the Kubernetes API "
        "(from a workstation; the default is staging.address)",
    )
    t.add_argument("--run-id", help=argparse.SUPPRESS)  # a launcher's run id (in-cluster Jobs)
    mode.add_argument(
        "--history",
        action="store_true",
        help="list the archived restore tests, newest first (of the first CLUSTER given, if any)",
    )
    add_in_cluster_options(t)
    t.add_argument(
        "--older-than",
        type=duration,
        metavar="AGE",
        help="with --cleanup: only clusters created longer ago, e.g. 6h, 2d (default: 1d)",
    )


def add_demo(sub: Any, parents: Parents) -> None:
    """``demo``."""
    d = sub.add_parser(
        "demo",
        parents=[parents.common],
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


def duration(text: str) -> timedelta:
    """An age such as ``7d``, ``36h`` or ``2w`` (``--since``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw])\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 7d, 36h or 2w")
    n, unit = float(m[1]), m[2]
    return timedelta(hours=n) if unit == "h" else timedelta(days=n * (7 if unit == "w" else 1))
