"""``prepare_sandbox``: the demo sandbox reused, rolled forward or built, then installed.

What ``pgdeck demo`` calls. A build happens in a temporary directory beside ``root`` and
is renamed into place, replacing an older sandbox, so an interrupted build never leaves
half a sandbox; a directory that is not a sandbox is never replaced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox.demo.build import build_sandbox
from sandbox.demo.layout import STAMP, Progress, Sandbox, load_sandbox
from sandbox.demo.roll_forward import behind, roll_forward_safely, stamp_times
from services.errors import PgdeckError

_STALE_BUILD = 3600  # seconds after which a leftover build directory is removed
ROLL_FORWARD_LIMIT = timedelta(days=7)  # an older sandbox is built again, not rolled forward


def prepare_sandbox(
    root: Path,
    *,
    now: datetime | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> Sandbox:
    """The demo sandbox under ``root``: reused when complete and current, rolled forward
    to ``now`` when its CronJobs have run since, built when missing or older than 7 days.

    ``now`` is the end of the month of backups (default: the current time).
    """
    root = Path(os.path.abspath(root))
    say = progress or (lambda _msg: None)
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    if not rebuild:
        existing = load_sandbox(root)
        times = stamp_times(root) if existing is not None else None
        if existing is not None and times is not None:
            stamp, built, until = times
            if now - built <= ROLL_FORWARD_LIMIT:
                if not behind(built, until, now):
                    say(f"reusing the demo sandbox in {root}")
                    return existing
                roll_forward_safely(root, stamp, now, say)
                return existing
            say(f"the demo sandbox in {root} is more than 7 days old: building it again")
    _refuse_foreign(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PgdeckError(
            f"cannot create the demo sandbox in {root}: {exc.strerror}",
            hint="choose a writable directory",
        ) from None
    _remove_stale_builds(root)
    started = time.monotonic()
    build = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    try:
        os.chmod(build, 0o755)
        build_sandbox(build, root, now, say)
        _install(build, root)
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        where = f" ({exc.filename})" if exc.filename else ""
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: {exc.strerror or exc}{where}",
            hint="check free disk space and permissions, then run the demo again",
        ) from None
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    say(f"demo sandbox ready in {root} ({time.monotonic() - started:.1f} s)")
    sandbox = load_sandbox(root)
    if sandbox is None:  # pragma: no cover - the rename just put it there
        raise PgdeckError(f"the demo sandbox in {root} is incomplete after building it")
    return sandbox


def _install(build: Path, root: Path) -> None:
    """Rename the finished build into place, replacing an old sandbox."""
    old: Path | None = None
    if root.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.rename(root, old / "sandbox")
    try:
        os.rename(build, root)
    except OSError:
        # another process installed a sandbox meanwhile: keep theirs when it is complete
        if load_sandbox(root) is not None:
            shutil.rmtree(build, ignore_errors=True)
        else:
            if old is not None and not root.exists():
                os.rename(old / "sandbox", root)  # put the previous sandbox back
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _refuse_foreign(root: Path) -> None:
    """Never replace a directory that is not a sandbox (it would be deleted)."""
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: it exists and is not a directory",
            hint="remove it or choose another directory",
        )
    if root.is_dir() and any(root.iterdir()) and not (root / STAMP).is_file():
        raise PgdeckError(
            f"cannot build the demo sandbox in {root}: the directory holds other files",
            hint="remove it or choose another directory",
        )


def _remove_stale_builds(root: Path) -> None:
    cutoff = time.time() - _STALE_BUILD
    for prefix in (f".{root.name}.build-", f".{root.name}.old-"):
        for d in root.parent.glob(prefix + "*"):
            with contextlib.suppress(OSError):
                if d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)
