"""``pgdeck restore`` and ``pgdeck verify``: a backup read end to end, or restored into a
PostgreSQL server and validated, with the signals that stop a restore cleanly."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from services.config import load_config
from services.errors import ConfigError, PgdeckError
from services.text import safe_text
from tui import present
from tui.cli.render import EXIT_OK, EXIT_PROBLEMS, Progress, err, print_json, table
from tui.cli.sources import resolve_backup


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
        err(
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
            err(f"pgdeck: warning: {note}")
        if twin is not None and not target.production:
            target = dataclasses.replace(target, production=True, name=twin.name)
            err(
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
            err(
                f"restore {scope.describe()} from {url}\n   into {identity.display} (roles: {scope.roles})"
            )
            if input("proceed? [y/N] ").strip().lower() not in ("y", "yes"):
                err("pgdeck: nothing was done")
                return EXIT_PROBLEMS
        verified = None
        if args.verify_first:
            from services.verify import verify_before_restore

            with Progress(sys.stderr, f"verifying {url}", in_bytes=True) as progress:
                verified = verify_before_restore(store, key, url, progress=progress)
            err(f"pgdeck: {url}: intact ({len(verified.tables)} tables), restoring")
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
            report = archive_report(
                report, archive, label, pending=pending[0] if pending else None, clock=args.clock
            )
        except PgdeckError as exc:
            archive_error = exc
    if args.json:
        print_json(report)
        for line in present.incomplete_lines(report):
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
