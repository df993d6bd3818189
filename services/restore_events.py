"""What a restore says while it runs: one event model, sent to a callback, presented by the
command line (``tui.restore_view``) and the console (the wizard's messages) alike.

The engine sends the log, its phases, its progress and each table loaded; the flow around
it (``services.restore_flow``) adds what comes before the first write: the production
server recognised, the backup read through first.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.report import RestoreReport


@dataclass(frozen=True, slots=True)
class RestoreLog:
    level: str  # info, warning, error
    text: str
    source: str = "pgdeck"  # or "server"


@dataclass(frozen=True, slots=True)
class RestorePhase:
    name: str
    state: str  # started, finished
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class SessionProgress:
    """One data session of a parallel load (``--jobs N``) and the table it loads."""

    session: int  # 1..N
    table: str  # schema.table
    done: int  # bytes of its rows sent to the server
    total: int | None  # bytes of its rows, once the reader has them all


@dataclass(frozen=True, slots=True)
class RestoreProgress:
    read: int  # compressed bytes read
    total: int  # compressed size
    uncompressed: int
    rate: float  # compressed bytes per second
    eta: float | None  # seconds
    database: str | None
    table: str | None
    rows: int  # rows of the table being read, so far
    sessions: tuple[SessionProgress, ...] = ()  # --jobs N: the tables loading now


@dataclass(frozen=True, slots=True)
class TableLoaded:
    database: str
    table: str
    rows: int


@dataclass(frozen=True, slots=True)
class RestoreDone:
    report: RestoreReport


@dataclass(frozen=True, slots=True)
class ProductionRecognised:
    """The target typed is the server of a production target: it is confirmed as that one."""

    server: str  # user@host:port/db, as the server says
    name: str  # the production target's name
    system_identifier: str


@dataclass(frozen=True, slots=True)
class VerifyProgress:
    """``verify first``: the backup read through before anything is written."""

    url: str
    read: int  # compressed bytes
    total: int


@dataclass(frozen=True, slots=True)
class BackupIntact:
    url: str
    tables: int


RestoreEvent = (
    RestoreLog
    | RestorePhase
    | RestoreProgress
    | TableLoaded
    | RestoreDone
    | ProductionRecognised
    | VerifyProgress
    | BackupIntact
)
