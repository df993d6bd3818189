"""A throwaway local PostgreSQL server, run from the machine's own binaries.

Used by the test suite (a real server, no mocks), by the demo sandbox builder and by
restore demos. PostgreSQL refuses to run as root, so when this process is root only the
server commands (``initdb``, ``pg_ctl``) run as the ``postgres`` system user through
``runuser``; this process itself never switches user. Otherwise they run as the current
user.

Usage::

    pg = create(tmp / "pg")          # initdb, not started
    with pg:                         # starts; stops (fast) on exit
        psycopg.connect(pg.dsn())

The server listens on 127.0.0.1 (TCP) and on a unix socket in ``<datadir>.sock`` (or a
short directory under the system temp dir when that path is too long for a socket).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.errors import PgdeckError

SERVER_USER = "postgres"
LOG_NAME = "pgdeck-server.log"
_CONF_MARK = "# --- pgdeck localpg settings ---"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.65535" is appended
_NOT_FOUND_HINT = "install postgresql (apt-get install postgresql) or set PGDECK_PG_BINDIR"


# --------------------------------------------------------------------------- binaries


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl``, ``pg_dumpall`` and ``psql``.

    ``$PGDECK_PG_BINDIR`` when set (it must hold initdb), else ``pg_config --bindir`` when
    that has initdb, else the newest ``/usr/lib/postgresql/*/bin``, else the directory of
    ``initdb`` on PATH (symlinks resolved).
    """
    explicit = os.environ.get("PGDECK_PG_BINDIR")
    if explicit:
        path = Path(explicit).expanduser()
        if _has_server(path):
            return path
        raise PgdeckError(
            f"PostgreSQL server binaries not found: PGDECK_PG_BINDIR={path} has no initdb and pg_ctl",
            hint=_NOT_FOUND_HINT,
        )
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _has_server(Path(out)):
                return Path(out)
    versions = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        m = re.fullmatch(r"(\d+)(?:\.(\d+))?", d.parent.name)
        if m and _has_server(d):
            versions.append(((int(m[1]), int(m[2] or 0)), d))
    if versions:
        return max(versions)[1]
    initdb = shutil.which("initdb")
    if initdb:
        d = Path(initdb).resolve().parent
        if _has_server(d):
            return d
    raise PgdeckError("PostgreSQL server binaries not found", hint=_NOT_FOUND_HINT)


def _has_server(d: Path) -> bool:
    return all(
        os.access(d / name, os.X_OK) and (d / name).is_file() for name in ("initdb", "pg_ctl")
    )


# --------------------------------------------------------------------------- the server


@dataclass
class LocalPostgres:
    """A local server in ``datadir``; ``host`` is its unix socket directory."""

    datadir: Path
    port: int
    host: str
    bindir: Path
    superuser: str = "postgres"
    # create() chose the port (free_port): another program may take it before the server
    # binds it (an outgoing connection's ephemeral port), and then start() takes another.
    port_chosen: bool = False

    @property
    def logfile(self) -> Path:
        return self.datadir / LOG_NAME

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq key=value connection string over the unix socket."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": self.superuser,
            "dbname": dbname,
        }
        return " ".join(f"{k}={_dsn_quote(v)}" for k, v in parts.items())

    def env(self) -> dict[str, str]:
        """PGHOST/PGPORT/PGUSER for child processes (psql, pg_dumpall); merge into os.environ."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.superuser}

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it accepts connections (no-op when running)."""
        if self.running():
            return
        if not (self.datadir / "PG_VERSION").is_file():
            raise PgdeckError(
                f"cannot start PostgreSQL: {self.datadir} is not a PostgreSQL data directory",
                hint="create it with sandbox.localpg.create()",
            )
        _ensure_socket_dir(Path(self.host))
        cmd = [
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            str(max(1, int(timeout))),
        ]
        for _ in range(5):
            result = _run_server_cmd(cmd, timeout=timeout + 15, what="start PostgreSQL")
            if result.returncode == 0 and self.running():
                return
            if not (self.port_chosen and "already in use" in _log_tail(self.logfile)):
                break
            self.port = free_port()
            with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as f:
                f.write(f"port = {self.port}  # the one chosen first was taken\n")
            self.logfile.unlink(missing_ok=True)
        if result.returncode != 0 or not self.running():
            raise PgdeckError(
                f"PostgreSQL in {self.datadir} did not start (port {self.port}): "
                + _why(result, self.logfile),
                hint=f"see {self.logfile}",
            )

    def stop(self) -> None:
        """Stop the server in fast mode (no-op when not running)."""
        if not self.running():
            return
        cmd = [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w"]
        result = _run_server_cmd(cmd, timeout=90, what="stop PostgreSQL")
        if result.returncode != 0 and self.running():
            raise PgdeckError(
                f"PostgreSQL in {self.datadir} did not stop: " + _why(result, self.logfile),
                hint=f"stop it by hand: pg_ctl stop -D {self.datadir} -m immediate",
            )

    def running(self) -> bool:
        """Whether a postmaster is alive for this data directory."""
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another user
        try:  # a stale pid file whose pid now belongs to another program
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return True  # no /proc: trust the signal
        return comm.startswith(("postgres", "postmaster"))

    def destroy(self) -> None:
        """Stop the server and delete its data directory and socket directory."""
        with contextlib.suppress(PgdeckError):
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        sock = Path(self.host)
        if sock.name.endswith(".sock") or sock.name.startswith("pgdeck-sock-"):
            shutil.rmtree(sock, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create(
    datadir: Path, *, port: int | None = None, settings: dict[str, str] | None = None
) -> LocalPostgres:
    """Run initdb in ``datadir`` (missing or empty) and configure it; the server is not started.

    Trust authentication, superuser ``postgres``, UTF8, locale C.UTF-8 (C when missing),
    durability off (fsync, synchronous_commit, full_page_writes): for tests and demos only.
    ``settings`` are added to postgresql.conf as given (values quoted when not numeric).
    """
    bindir = find_bindir()
    datadir = Path(os.path.abspath(datadir))
    if datadir.exists() and (not datadir.is_dir() or any(datadir.iterdir())):
        raise PgdeckError(
            f"cannot create a PostgreSQL data directory in {datadir}: it exists and is not empty",
            hint="remove it, or use sandbox.localpg.open_existing() for a directory created earlier",
        )
    try:
        datadir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PgdeckError(
            f"cannot create {datadir}: {exc.strerror}", hint="choose a writable directory"
        ) from None
    owner = _server_owner()
    if owner is not None:
        _make_traversable(datadir.parent, owner)
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
    os.chmod(datadir, 0o700)

    sockdir = _socket_dir_for(datadir)
    _ensure_socket_dir(sockdir)
    chosen = port is None
    port = port or free_port()

    result: subprocess.CompletedProcess[str] | None = None
    for locale in ("C.UTF-8", "C"):
        cmd = [
            str(bindir / "initdb"),
            "--no-sync",
            "-A",
            "trust",
            "-U",
            SERVER_USER,
            "-E",
            "UTF8",
            f"--locale={locale}",
            "-D",
            str(datadir),
        ]
        result = _run_server_cmd(cmd, timeout=120, what="initdb")
        if result.returncode == 0:
            break
        if "locale" not in (result.stderr + result.stdout).lower():
            break
        _clear_dir(datadir)
    assert result is not None
    if result.returncode != 0:
        raise PgdeckError(
            f"initdb failed in {datadir}: {_last_lines(result.stderr or result.stdout)}",
            hint="check that the directory is empty and writable by the postgres user",
        )

    conf: dict[str, str] = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockdir),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "50",
        "shared_buffers": "32MB",
    }
    conf.update(settings or {})
    lines = [_CONF_MARK] + [f"{k} = {_conf_quote(v)}" for k, v in conf.items()]
    with open(datadir / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(lines) + "\n")
    return LocalPostgres(
        datadir=datadir, port=port, host=str(sockdir), bindir=bindir, port_chosen=chosen
    )


def open_existing(datadir: Path) -> LocalPostgres:
    """A LocalPostgres for a data directory made by :func:`create` (port and socket from its conf)."""
    datadir = Path(os.path.abspath(datadir))
    conf_path = datadir / "postgresql.conf"
    try:
        text = conf_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PgdeckError(
            f"cannot open the PostgreSQL data directory {datadir}: {exc.strerror or exc}",
            hint="create it with sandbox.localpg.create()",
        ) from None
    values = _read_conf(text)
    try:
        port = int(values.get("port", "5432"))
    except ValueError:
        raise PgdeckError(
            f"cannot read the port from {conf_path}: {values.get('port')!r}",
            hint="fix the port setting in postgresql.conf",
        ) from None
    sockdirs = [s.strip() for s in values.get("unix_socket_directories", "/tmp").split(",")]
    host = next((s for s in sockdirs if s), "/tmp")
    return LocalPostgres(datadir=datadir, port=port, host=host, bindir=find_bindir())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- helpers


def _server_owner() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root; None when we run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PgdeckError(
            f"cannot run PostgreSQL as root and there is no '{SERVER_USER}' user to run it as",
            hint=f"create the user (useradd -r {SERVER_USER}) or run as a non-root user",
        ) from None


def _run_server_cmd(
    cmd: Sequence[str], *, timeout: float, what: str
) -> subprocess.CompletedProcess[str]:
    owner = _server_owner()
    full = list(cmd)
    if owner is not None:
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        full = [runuser, "-u", owner.pw_name, "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_MESSAGES"] = "C"
    try:
        return subprocess.run(
            full,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd="/",
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise PgdeckError(
            f"cannot {what}: {exc.filename} not found", hint=_NOT_FOUND_HINT
        ) from None
    except subprocess.TimeoutExpired:
        raise PgdeckError(
            f"cannot {what}: {Path(cmd[0]).name} did not finish within {timeout:.0f} s",
            hint="the machine may be overloaded; try again",
        ) from None


def _socket_dir_for(datadir: Path) -> Path:
    sockdir = datadir.parent / f"{datadir.name}.sock"
    if len(str(sockdir)) + len("/.s.PGSQL.65535") <= _SOCKET_PATH_MAX:
        return sockdir
    return Path(tempfile.mkdtemp(prefix="pgdeck-sock-"))


def _ensure_socket_dir(sockdir: Path) -> None:
    sockdir.mkdir(parents=True, exist_ok=True)
    owner = _server_owner()
    if owner is not None:
        _make_traversable(sockdir.parent, owner)
        os.chown(sockdir, owner.pw_uid, owner.pw_gid)
    os.chmod(sockdir, 0o755)


def _make_traversable(directory: Path, owner: pwd.struct_passwd) -> None:
    """Let ``owner`` reach ``directory``: add o+x to ancestors under the temp dir, else fail.

    pytest creates its temp dirs 0700; opening those for traversal is harmless. Anywhere
    else (a home directory, say) we do not change permissions and say what to do instead.
    """
    groups = {g for g in os.getgrouplist(owner.pw_name, owner.pw_gid)}
    tmp_roots = {Path(tempfile.gettempdir()).resolve(), Path("/tmp"), Path("/var/tmp")}
    directory = Path(os.path.abspath(directory))
    for d in [directory, *directory.parents]:
        try:
            st = d.stat()
        except OSError:
            continue
        if st.st_uid == owner.pw_uid and st.st_mode & stat.S_IXUSR:
            continue
        if st.st_gid in groups and st.st_mode & stat.S_IXGRP:
            continue
        if st.st_mode & stat.S_IXOTH:
            continue
        if any(r in d.parents for r in tmp_roots):
            os.chmod(d, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            continue
        raise PgdeckError(
            f"cannot run PostgreSQL under {directory}: the {owner.pw_name} user cannot enter {d}",
            hint=f"use a data directory under {tempfile.gettempdir()}, or chmod o+x {d}",
        )


def _clear_dir(d: Path) -> None:
    for child in d.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()


def _why(result: subprocess.CompletedProcess[str], logfile: Path) -> str:
    log = _log_tail(logfile)
    out = _last_lines(result.stderr or result.stdout)
    return log or out or f"exit status {result.returncode}"


def _log_tail(logfile: Path, lines: int = 3) -> str:
    """The server log's last telling lines (FATAL/ERROR/PANIC, "could not ..."), joined."""
    try:
        text = logfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    # "2026-11-25 15:59:51.013 UTC [11597] FATAL:  ..." -> "FATAL:  ..."
    all_lines = [
        re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ", "", ln.strip())
        for ln in text.splitlines()
        if ln.strip()
    ]
    telling = [
        ln for ln in all_lines if re.search(r"\b(FATAL|PANIC|ERROR):|could not |already in use", ln)
    ]
    return " | ".join((telling or all_lines)[-lines:])


def _last_lines(text: str, lines: int = 2) -> str:
    return " | ".join([ln.strip() for ln in text.splitlines() if ln.strip()][-lines:])


def _dsn_quote(value: str) -> str:
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conf_quote(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?|on|off|true|false", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _read_conf(text: str) -> dict[str, str]:
    """Settings of a postgresql.conf, last occurrence wins; quotes removed."""
    values: dict[str, str] = {}
    pattern = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^']|'')*'|[^#\s]+)")
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        value = m[2]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        values[m[1]] = value
    return values
