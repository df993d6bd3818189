"""Who writes and whether a process still runs: the identity a ``running`` record keeps.

A pid alone is not an identity (pids are reused), so a record keeps the host, the pid, the
process's start time in clock ticks after boot (``/proc/<pid>/stat``), the boot id and the
pid namespace; a process on the same machine is then probed, and one on another machine
(a pod of a Kubernetes Job) is judged by the deadline its record states.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from services.jsonable import iso


def os_user() -> str:
    """The process's real user from the passwd database: not $USER or $LOGNAME, which
    anyone can set. A container without a passwd entry gets its uid."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def process_identity(pid: int | None = None) -> dict[str, Any]:
    pid = os.getpid() if pid is None else pid
    state = _proc_stat(pid)
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "proc_start": state[1] if state else None,  # clock ticks after boot
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": _readlink("/proc/self/ns/pid"),
    }


def why_gone(record: dict[str, Any], now: datetime) -> str | None:
    """Why the process that wrote a running record is gone, or None while it may run."""
    me = process_identity()
    host, pid = record.get("host"), record.get("pid")
    same_machine = host == me["host"] and record.get("pid_ns") == me["pid_ns"]
    if same_machine and record.get("boot_id") != me["boot_id"]:
        return f"{host} was restarted since process {pid} began"
    if not same_machine or not isinstance(pid, int):
        stale = _parse(record.get("stale_after"))
        if stale is not None and now >= stale:
            return f"process {pid} on {host} has not finished by {iso(stale)}"
        return None
    state = _proc_stat(pid)
    if state is None:
        if os.path.exists("/proc/self/stat"):
            return f"process {pid} on {host} is gone"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"process {pid} on {host} is gone"
        except PermissionError:
            return None
        return None
    if state[0] in ("Z", "X"):
        return f"process {pid} on {host} is gone"
    if record.get("proc_start") is not None and state[1] != record.get("proc_start"):
        return f"process {pid} on {host} is gone (its pid is now another process's)"
    return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) from /proc/<pid>/stat."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and ")"
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
