"""The demo's restore target: a local PostgreSQL kept beside the demo sandbox.

``pgdeck demo`` opens the console with a target named ``demo-local`` pointing at it, so a
restore can be tried end to end. The data directory persists between runs
(``<sandbox>/target-pg``), is created again when it is broken, and the server listens on
a free loopback port chosen at each start. It runs only while the console is open.

When this process is root the server runs as the ``postgres`` user (sandbox.localpg),
which may be unable to enter the sandbox (a home directory is often 0700): the data
directory then lives under the system temp dir instead, named after the sandbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sandbox import localpg
from services.errors import PgdeckError

TARGET_NAME = "demo-local"
_DIRNAME = "target-pg"


@contextlib.contextmanager
def demo_target(
    root: Path, *, progress: Callable[[str], None] | None = None
) -> Iterator[localpg.LocalPostgres]:
    """A running local server for the sandbox in ``root``; stopped when the block ends."""
    say = progress or (lambda _msg: None)
    pg = _open(root, say)
    try:
        if not pg.running():
            try:
                _start(pg)
            except (PgdeckError, OSError) as exc:
                say(
                    f"the demo's target server in {pg.datadir} is broken ({exc}): creating it again"
                )
                _remove(pg.datadir)
                pg = _create(root)
                _start(pg)
        say(f"restore target {TARGET_NAME}: PostgreSQL on 127.0.0.1:{pg.port} ({pg.datadir})")
        yield pg
    finally:
        with contextlib.suppress(PgdeckError):
            pg.stop()


def dsn(pg: localpg.LocalPostgres) -> str:
    """A libpq DSN over loopback TCP (trust authentication, superuser postgres)."""
    return f"host=127.0.0.1 port={pg.port} user={pg.superuser} dbname=postgres"


def _open(root: Path, say: Callable[[str], None]) -> localpg.LocalPostgres:
    for datadir in _candidates(root):
        if (datadir / "PG_VERSION").is_file():
            try:
                return localpg.open_existing(datadir)
            except PgdeckError as exc:
                say(f"the demo's target server in {datadir} is broken ({exc}): creating it again")
                _remove(datadir)
    return _create(root)


def _create(root: Path) -> localpg.LocalPostgres:
    inside, outside = _candidates(root)
    try:
        _remove(inside)
        return localpg.create(inside)
    except PgdeckError as exc:
        if "cannot run PostgreSQL under" not in str(exc):
            raise
        _remove(inside)  # the server user cannot enter the sandbox: use the temp dir
    _remove(outside)
    return localpg.create(outside)


def _candidates(root: Path) -> tuple[Path, Path]:
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return root / _DIRNAME, Path(tempfile.gettempdir()) / f"pgdeck-demo-target-{tag}" / _DIRNAME


def _start(pg: localpg.LocalPostgres) -> None:
    _set_port(pg, localpg.free_port())
    pg.start()


def _set_port(pg: localpg.LocalPostgres, port: int) -> None:
    """Point the server at ``port``: the last ``port =`` line of postgresql.conf wins."""
    conf = pg.datadir / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^port = \d+\n?", "", text).rstrip("\n") + f"\nport = {port}\n"
    conf.write_text(text, encoding="utf-8")
    pg.port = port


def _remove(datadir: Path) -> None:
    shutil.rmtree(datadir, ignore_errors=True)
    shutil.rmtree(datadir.parent / f"{datadir.name}.sock", ignore_errors=True)
