"""``pgdeck verify``: a backup checked end to end without any target.

Streams the object, checks gzip (CRC32 and length of every member), reads the dump as a
restore would (every statement judged against what pg_dump writes; anything else makes
it "not a pg_dumpall stream"), counts its databases, tables and rows, and requires the
cluster-dump trailer. The same reader feeds the target in a restore; here nothing is sent.
A storage that cannot be read is said as such: it says nothing of the backup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from services.backup_stream import CorruptBackup, StreamProgress, compressed_chunks, gunzip
from services.dump import DumpReader, DumpSummary, NotADump
from services.errors import PgdeckError, StorageError
from services.storage import BackupStore


@dataclass(frozen=True, slots=True)
class VerifyResult:
    url: str
    ok: bool
    problem: str | None  # why it is not ok, one line
    compressed_bytes: int
    summary: DumpSummary
    seconds: float
    retries: int
    unreadable: bool = False  # the storage could not be read: nothing is known of the backup

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "url": self.url,
            "ok": self.ok,
            "problem": self.problem,
            "complete": s.complete,
            "compressed_bytes": self.compressed_bytes,
            "uncompressed_bytes": s.bytes,
            "seconds": round(self.seconds, 3),
            "retries": self.retries,
            "server_version": s.server_version,
            "pg_dumpall_version": s.pg_dumpall_version,
            "roles": s.roles,
            "databases": [
                {
                    "name": d.name,
                    "created": d.created,
                    "complete": d.complete,
                    "locale": d.locale,
                    "tables": [
                        {"schema": t.schema, "name": t.name, "rows": t.rows} for t in d.tables
                    ],
                    "objects": {k: len(v) for k, v in sorted(d.objects.items())},
                }
                for d in s.databases
            ],
        }


def verify_backup(
    store: BackupStore,
    relative_key: str,
    *,
    progress: Callable[[StreamProgress], None] | None = None,
    every: int = 8 << 20,
    retries: int = 5,
    backoff: float = 0.5,
) -> VerifyResult:
    started = time.monotonic()
    scanner = DumpReader()
    read = 0
    drops = 0
    total = 0
    next_report = every

    def on_retry(attempt: int, offset: int, exc: BaseException) -> None:
        nonlocal drops
        drops += 1

    def on_size(size: int) -> None:
        nonlocal total
        total = size

    def counted() -> Iterator[bytes]:
        nonlocal read
        for chunk in compressed_chunks(
            store,
            relative_key,
            on_retry=on_retry,
            on_size=on_size,
            retries=retries,
            backoff=backoff,
        ):
            read += len(chunk)
            yield chunk

    problem: str | None = None
    unreadable = False
    try:
        for data in gunzip(counted()):
            scanner.feed(data)
            if progress and read >= next_report:
                next_report = read + every
                progress(StreamProgress(read, total, scanner.bytes, drops))
    except CorruptBackup as exc:
        problem = str(exc)
    except NotADump as exc:
        problem = exc.message
    except StorageError as exc:
        # The storage failed, not the backup: the message says what could not be read.
        unreadable = True
        problem = str(exc)
    try:
        summary = scanner.summary()
    except NotADump as exc:
        problem = problem or exc.message
        summary = DumpSummary(
            scanner.databases, scanner.roles, False, scanner.bytes, None, None, False
        )
    if problem is None and not summary.complete:
        where = ""
        if scanner.table is not None:
            where = (
                f" (it stops inside the data of {scanner.table.database}.{scanner.table.qualified})"
            )
        elif summary.databases:
            where = f" (it stops in database {summary.databases[-1].name})"
        problem = (
            "the dump is incomplete: its trailer never arrived" + where + "; pick an older backup"
        )
    return VerifyResult(
        url=store.url(relative_key),
        ok=problem is None,
        problem=problem,
        unreadable=unreadable,
        compressed_bytes=read,
        summary=summary,
        seconds=time.monotonic() - started,
        retries=drops,
    )


def verify_before_restore(
    store: BackupStore,
    relative_key: str,
    url: str,
    *,
    progress: Callable[[StreamProgress], None] | None = None,
) -> DumpSummary:
    """Read a backup through once before a restore writes anything (``--verify-first``):
    its summary, or a PgdeckError saying why it must not be restored."""
    check = verify_backup(store, relative_key, progress=progress)
    if check.unreadable:
        raise StorageError(f"{check.problem}; nothing was written to the target")
    if not check.ok:
        raise PgdeckError(f"{url}: {check.problem}", "nothing was written to the target")
    return check.summary
