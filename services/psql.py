"""psql as a child process that a restore writes into, with its messages read live.

psql runs with ``ON_ERROR_STOP=1``: the restore filter has already turned what an
operator cluster is expected to have (existing roles, what Spilo creates) into
statements that cannot fail, so any error left is a real one, and psql itself stops on
it before the next statement: no race with statements already in the pipe.
The password never appears on psql's command line (where ``ps`` would show it): it goes
through ``PGPASSWORD`` in psql's environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.errors import PgdeckError

_MESSAGE = re.compile(r"^psql:<stdin>:(\d+): (ERROR|WARNING|NOTICE|FATAL|INFO|PANIC):  (.*)$")
_COPY_TAG = re.compile(rb"^COPY (\d+)\r?\n?$")
_CONTINUATION = re.compile(r"^(DETAIL|HINT|CONTEXT|LINE \d+|QUERY):  ?(.*)$")


@dataclass
class PsqlMessage:
    level: str  # ERROR, WARNING, NOTICE, FATAL, ... or "psql" for psql's own complaints
    text: str
    line: int | None  # input line psql was at
    details: list[str] = field(default_factory=list)


def find_psql() -> Path:
    """The newest psql: it must know the \\restrict of recent pg_dumpall output."""
    env = os.environ.get("PGDECK_PSQL")
    if env:
        return Path(env)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/psql"), key=lambda p: _major(p.parent.parent.name)
    )
    if candidates:
        return candidates[-1]
    found = shutil.which("psql")
    if found:
        return Path(found)
    raise PgdeckError("psql not found", "install postgresql-client or set PGDECK_PSQL")


def _major(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def psql_version(psql: Path) -> tuple[int, int]:
    out = subprocess.run(
        [str(psql), "--version"], capture_output=True, text=True, check=False
    ).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else (0, 0)


def knows_restrict(version: tuple[int, int]) -> bool:
    """\\restrict came with 13.22, 14.19, 15.14, 16.10, 17.6 and every release after."""
    major, minor = version
    firsts = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
    if major >= 18:
        return True
    return major in firsts and minor >= firsts[major]


class PsqlProcess:
    def __init__(
        self,
        psql: Path,
        conninfo: str,
        password: str | None,
        on_message: Callable[[PsqlMessage], None],
    ) -> None:
        env = dict(os.environ)
        if password is not None:
            env["PGPASSWORD"] = password
        env.setdefault("PGAPPNAME", "pgdeck-restore")
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()
        self._on_message = on_message
        try:
            self.proc = subprocess.Popen(
                # "-f -" rather than plain stdin: psql then names the input line of each error.
                # No -q: psql then prints each statement's command tag, and "COPY n" is
                # the server's own count of the rows it stored for that table.
                [str(psql), "-X", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d", conninfo],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise PgdeckError(f"cannot start psql ({psql}): {exc.strerror}") from exc
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self._stdin = self.proc.stdin
        self.copied: list[int] = []  # the "COPY n" tags, in statement order
        self._reader = threading.Thread(target=self._read, name="psql-stderr", daemon=True)
        self._reader.start()
        self._tags = threading.Thread(target=self._read_tags, name="psql-stdout", daemon=True)
        self._tags.start()
        self.killed = False

    def _read_tags(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.startswith(b"COPY "):
                m = _COPY_TAG.match(raw)
                if m:
                    self.copied.append(int(m[1]))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        current: PsqlMessage | None = None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            m = _MESSAGE.match(line)
            if m:
                if current:
                    self._on_message(current)
                current = PsqlMessage(level=m[2], text=m[3], line=int(m[1]))
                continue
            c = _CONTINUATION.match(line)
            if c and current is not None:
                current.details.append(line)
                continue
            if current:
                self._on_message(current)
                current = None
            if line.strip():
                self._on_message(
                    PsqlMessage(level="psql", text=line.removeprefix("psql: "), line=None)
                )
        if current:
            self._on_message(current)

    def write(self, data: bytes) -> None:
        try:
            self._stdin.write(data)
        except (BrokenPipeError, ValueError, OSError, RuntimeError) as exc:
            raise PsqlDied(self.proc.poll()) from exc

    def terminate(self) -> None:
        """Stop psql from any thread (a signal handler too): the writer then fails."""
        self.killed = True
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait_messages(self, timeout: float = 10) -> None:
        """After psql has exited: every message it wrote has been handed on."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=timeout)

    def finish(self) -> int:
        """Close psql's input, wait for it to apply the rest, and for its messages."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._stdin.close()
        code = self.proc.wait()
        self._reader.join(timeout=10)
        self._tags.join(timeout=10)
        return code

    def kill(self) -> None:
        self.killed = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            self._stdin.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)


class PsqlDied(PgdeckError):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"psql stopped unexpectedly (exit status {code})")
        self.code = code
