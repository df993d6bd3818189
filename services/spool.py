"""Temporary files that hold a table's COPY data while every data session is busy.

The dump is read once, in its order: when a COPY block arrives and no data session is
free, its bytes go to a spool file, and a session loads the table from the file when it
frees. Each file is made with ``tempfile.TemporaryFile``, which unlinks it as soon as it
is open: nothing is left behind, whatever ends the process. The total is bounded by
``restore.spool_limit``; the pool (``services.copy_lanes``) waits for a session rather
than pass it. What the spool cannot hold (the disk is full, the directory is not
writable) is one clear error, ``SpoolFailed``, with what to do about it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from services.errors import PgdeckError

READ_BLOCK = 1 << 20


class SpoolFailed(PgdeckError):
    pass


class SpoolFile:
    """One table's spooled bytes: written by the dump's reader, read by one session."""

    def __init__(self, file: BinaryIO, table: str) -> None:
        self.file = file
        self.table = table
        self.size = 0

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.file.fileno(), min(READ_BLOCK, size - offset), offset)


class Spool:
    """The spool files of one restore: where they go, how much they may hold, how much
    they hold now (``total``, kept by the pool under its lock) and at most."""

    def __init__(self, directory: Path | None, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.total = 0
        self.largest = 0  # the greatest total, for the restore's closing log line
        self.tables = 0  # tables that went through the spool
        self._open: set[SpoolFile] = set()

    @property
    def where(self) -> str:
        return str(self.directory or tempfile.gettempdir())

    def create(self, table: str, *, count: bool = True) -> SpoolFile:
        try:
            # Closed by release() or close(), whichever the pool reaches first.
            file = tempfile.TemporaryFile(  # noqa: SIM115
                dir=self.directory, prefix="pgdeck-spool-", buffering=0
            )
        except OSError as exc:
            raise self._failed(table, exc) from exc
        spooled = SpoolFile(file, table)  # type: ignore[arg-type]
        self._open.add(spooled)
        self.tables += count
        return spooled

    def write(self, spooled: SpoolFile, data: memoryview | bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = spooled.file.write(view)
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as exc:
            raise self._failed(spooled.table, exc) from exc
        spooled.size += len(data)
        self.total += len(data)
        self.largest = max(self.largest, self.total)

    def release(self, spooled: SpoolFile) -> None:
        """The file is read (or abandoned): closed, its bytes no longer counted."""
        if spooled in self._open:
            self._open.discard(spooled)
            self.total -= spooled.size
            with contextlib.suppress(OSError):
                spooled.file.close()

    def close(self) -> None:
        for spooled in list(self._open):
            self.release(spooled)

    def _failed(self, table: str, exc: OSError) -> SpoolFailed:
        why = exc.strerror or str(exc)
        return SpoolFailed(
            f"the spool in {self.where} could not hold the data of {table} while every "
            f"data session was busy ({why}); the restore was stopped",
            "restore with --jobs 1 (no spool), set restore.spool_dir to a larger disk, "
            "or lower restore.spool_limit so the reader waits for a session instead",
        )
