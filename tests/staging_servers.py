"""Real PostgreSQL servers for the stand-in operator's staging clusters: one per cluster.

A restore test restores a whole cluster (``pg_dumpall``: roles and databases), so two
staging clusters cannot share a server. ``initdb`` runs once, into a template data
directory; each cluster's server is a copy of it (``cp -a``, owners kept: as root the
servers run as ``postgres``), started in a fraction of initdb's time.

Every server listens only on a unix socket directory named after its cluster,
``<base>/s/<cluster>``, port 5432 for all. So ``staging.address`` needs no per-cluster
address: ``address`` (``<base>/s/{cluster}:5432``) is the template, and libpq takes a
directory as its host. The socket's full path, ``<base>/s/<58-character name>/.s.PGSQL.5432``,
must fit in ``sun_path`` (108 bytes), so ``base`` must be short (``tempfile.mkdtemp`` under
``/tmp`` is).

    servers = StagingServers(Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp")))
    StandinOperator(kube, primary_factory=servers.start, release=servers.release)
    ...
    servers.close()
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sandbox import localpg

PORT = 5432
NAME_MAX = 58  # services.staging_spec: the longest staging cluster name
_SUN_PATH = 107  # bytes of a socket path, its NUL aside


class StagingServers:
    def __init__(self, base: Path, *, settings: dict[str, str] | None = None) -> None:
        self.base = base
        sockets = base / "s"
        longest = f"{sockets}/{'x' * NAME_MAX}/.s.PGSQL.{PORT}"
        if len(longest.encode()) > _SUN_PATH:
            raise ValueError(f"{base} is too long for the servers' socket paths; use a short one")
        self.sockets = sockets
        self.template = localpg.create(base / "template", settings=settings)
        # Called with the cluster's name and server just before it is stopped for good:
        # what a test wants to read from a staging cluster, it reads here.
        self.before_release: Callable[[str, localpg.LocalPostgres], None] | None = None
        self.servers: dict[str, localpg.LocalPostgres] = {}
        self.started = 0
        self.start_seconds: list[float] = []  # each server's copy and start
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``staging.address`` for these servers."""
        return f"{self.sockets}/{{cluster}}:{PORT}"

    def start(self, name: str) -> tuple[str, int]:
        """A running server for the staging cluster ``name``: (its socket directory, port)."""
        begun = time.monotonic()
        datadir = self.base / "d" / name
        datadir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(self.template.datadir), str(datadir)], check=True)
        with open(datadir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write(
                f"listen_addresses = ''\nport = {PORT}\n"
                f"unix_socket_directories = '{self.sockets / name}'\n"
            )
        pg = localpg.open_existing(datadir)
        pg.start()
        with self._lock:
            self.servers[name] = pg
            self.started += 1
            self.start_seconds.append(time.monotonic() - begun)
        return pg.host, pg.port

    def release(self, name: str) -> None:
        """Stop the cluster's server and delete its data (its cluster was deleted)."""
        with self._lock:
            pg = self.servers.pop(name, None)
        if pg is None:
            return
        try:
            if self.before_release is not None:
                self.before_release(name, pg)
        finally:
            pg.destroy()
            shutil.rmtree(pg.host, ignore_errors=True)

    def close(self) -> None:
        """Stop every server still running and delete the base directory."""
        with self._lock:
            names = list(self.servers)
        for name in names:
            self.release(name)
        shutil.rmtree(self.base, ignore_errors=True)
