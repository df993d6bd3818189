"""``pgdeck restore`` and ``pgdeck verify``: a backup read end to end, or restored into a
PostgreSQL server and validated, with the signals that stop a restore cleanly.

The restore is ``services.restore_flow`` in a thread; this module answers its questions on
the terminal (in the main thread, where a signal interrupts them) and presents its events
and report with ``tui.restore_view``."""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from services.config import load_config
from services.errors import ConfigError
from services.text import safe_text
from tui import present
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, Progress, err, print_json, table
from tui.cli.sources import resolve_backup

if TYPE_CHECKING:
    from services.restore_flow import RestoreCancel, RestorePlan
    from services.target import ResolvedTarget

T = TypeVar("T")


def cmd_restore(args: argparse.Namespace) -> int:
    from services.restore_flow import (
        CancelledBeforeWriting,
        NotConfirmed,
        ReportNotArchived,
        RestoreCancel,
        RestoreRequest,
        run_restore,
    )
    from services.restore_plan import Scope
    from services.target import read_password_file, resolve_target
    from tui.restore_view import RestoreView, incomplete_lines

    config = load_config(args.config, args.kube)
    scope = Scope.parse(args.database, args.roles)
    if not args.yes and not sys.stdin.isatty():
        raise ConfigError(
            "restore needs confirmation", "pass --yes when running without a terminal"
        )
    password = read_password_file(args.target_password_file) if args.target_password_file else None
    target = resolve_target(args.target, config, password=password)
    if target.password_in_spec:
        err(
            "pgdeck: warning: the password in --target is visible to other local users in the "
            "process list; use --target-password-file FILE or ~/.pgpass, or leave it out to be asked"
        )
    request = RestoreRequest(
        backup=args.backup,
        target=target,
        scope=scope,
        namespace=args.namespace,
        verify_first=args.verify_first,
        drop_existing=args.drop_existing,
        thorough=args.thorough,
        on_failure=args.on_failure,
        production_confirmed=args.yes_production,
        jobs=args.jobs,
    )
    cancel = RestoreCancel()
    view = RestoreView(sys.stderr, quiet=args.json)
    archive_error = None
    with _Signals(cancel) as signals, view:

        def confirm(plan: RestorePlan) -> bool:
            return signals.in_main_thread(lambda: _confirm(plan))

        def ask_password(t: ResolvedTarget) -> str:
            import getpass

            return signals.in_main_thread(lambda: getpass.getpass(f"password for {t.display}: "))

        try:
            report = signals.run(
                lambda: run_restore(
                    request,
                    view.on_event,
                    config=config,
                    resolve=lambda _spec, _namespace: resolve_backup(args, config),
                    confirm=None if args.yes else confirm,
                    ask_password=ask_password if sys.stdin.isatty() else None,
                    cancel=cancel,
                    clock=args.clock,
                )
            )
        except NotConfirmed:
            err("pgdeck: nothing was done")
            return EXIT_PROBLEMS
        except CancelledBeforeWriting as exc:
            raise Interrupted(signals.received or 2) from exc
        except ReportNotArchived as exc:  # the restore ran; its report says how
            report, archive_error = exc.report, exc
    if args.json:
        print_json(report)
        for line in incomplete_lines(report):
            err(f"pgdeck: {line}")
    else:
        view.summary(report)
    if archive_error is not None:
        err(f"pgdeck: {archive_error}")
        return EXIT_PROBLEMS
    if report.status == "succeeded":
        return EXIT_OK
    if report.status == "cancelled":
        return 128 + (signals.received or 2)
    return EXIT_PROBLEMS


def _confirm(plan: RestorePlan) -> bool:
    err(
        f"restore {plan.scope.describe()} from {plan.url}\n   into {plan.server} (roles: {plan.scope.roles})"
    )
    return input("proceed? [y/N] ").strip().lower() in ("y", "yes")


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP before a restore began writing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Signals:
    """SIGINT, SIGTERM and SIGHUP stop a restore as Ctrl-C does: the restore runs in a
    thread, and the main thread (where Python runs signal handlers) cancels it. Before it
    writes, a signal interrupts the command (nothing was written, and nothing will be).
    Questions for the terminal are asked from the main thread, so a signal interrupts
    them too, and no thread is left reading the terminal."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, cancel: RestoreCancel) -> None:
        self.received: int | None = None
        self._cancel = cancel
        self._done = False
        self._asks: queue.Queue[Callable[[], None] | None] = queue.Queue()
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
            return  # the restore ended: its report is archived
        self.received = self.received or signum
        if self._cancel.cancel():
            return  # it was writing: it stops as cancelled, and its report is archived
        raise Interrupted(signum)  # nothing was written, and now nothing will be

    def run(self, work: Callable[[], T]) -> T:
        result: list[T] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                result.append(work())
            except BaseException as exc:  # handed to the main thread
                failure.append(exc)
            finally:
                self._asks.put(None)  # wakes the main thread now, not at its next timeout

        thread = threading.Thread(target=target, name="restore", daemon=True)
        try:
            thread.start()
            while True:
                try:
                    # the timeout keeps the main thread where signal handlers run
                    ask = self._asks.get(timeout=0.2)
                except queue.Empty:
                    if not thread.is_alive():
                        break
                    continue
                if ask is None:
                    break
                ask()
            thread.join()
        finally:
            self._done = True
        if failure:
            raise failure[0]
        return result[0]

    def in_main_thread(self, question: Callable[[], T]) -> T:
        """From the restore's thread: ``question`` asked by the main thread, its answer."""
        answered = threading.Event()
        answer: list[T] = []
        failure: list[Exception] = []

        def ask() -> None:
            try:
                answer.append(question())
            except Exception as exc:  # a signal's Interrupted stays in the main thread
                failure.append(exc)
            answered.set()

        self._asks.put(ask)
        answered.wait()
        if failure:
            raise failure[0]
        return answer[0]


def cmd_verify(args: argparse.Namespace) -> int:
    from services.verify import verify_backup

    store, key, url = resolve_backup(args)
    with Progress(sys.stderr, f"verifying {url}", in_bytes=True) as progress:
        result = verify_backup(store, key, progress=progress)
    s = result.summary
    if args.json:
        print_json(result)
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
        table(["DATABASE", "TABLE", "ROWS"], rows)
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
        err(
            f"pgdeck: {problem}"
            if problem.startswith(result.url)
            else f"pgdeck: {result.url}: {problem}"
        )
    return EXIT_OK if result.ok else EXIT_PROBLEMS
