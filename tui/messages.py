"""Messages from workers to the screens: past-tense names, plain payloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # for annotations only: importing the engine costs the start a moment
    from services.archive import ArchivedItem
    from services.catalog_state import CatalogState
    from services.report import RestoreReport
    from services.restore_events import RestoreEvent
    from services.restore_test import TestOutcome
    from services.restore_test_history import ClusterTests
    from services.review import ArchivedReview, Review
    from services.sse_check import SseCheck
    from services.target import ServerIdentity
    from services.timeline import Timeline
    from widgets.cluster_table import ClusterRow


@dataclass
class CatalogRefreshed(Message, bubble=False):
    """The app's catalog state was replaced (read from the cache, or refreshed): sent to
    every screen on the stack, once per load or refresh."""

    state: CatalogState
    rows: tuple[ClusterRow, ...]  # one per state.clusters, built by the worker


@dataclass
class RowsRecalled(Message, bubble=False):
    """The clusters table's rows as the last load or refresh left them (kept in the cache),
    read before the catalog is: sent to every screen on the stack, at most once, before
    the first ``CatalogRefreshed``."""

    rows: tuple[ClusterRow, ...]


@dataclass
class CatalogFailed(Message, bubble=False):
    """A load or refresh of the catalog failed: sent to every screen on the stack."""

    error: str


@dataclass
class CatalogProgressed(Message, bubble=False):
    """A step of the refresh under way: sent to every screen on the stack."""

    stage: str  # "kubernetes", "storage", "done"
    done: int
    total: int


@dataclass
class TimelineLoaded(Message):
    timeline: Timeline


@dataclass
class JobLogRead(Message):
    """Lines of the job log being shown (``request`` names which reading of it)."""

    request: int
    lines: list[str]
    ended: bool = False  # the log's last lines: nothing follows
    error: str | None = None  # the reading failed after ``lines``

    def can_replace(self, message: Message) -> bool:
        """A burst of lines is written once: while this message waits in the queue with a
        newer one of the same reading behind it, the newer takes these lines in front of
        its own and is handled instead (Textual calls this with the message behind)."""
        if (
            not isinstance(message, JobLogRead)
            or message.request != self.request
            or self.ended
            or self.error is not None
        ):
            return False
        message.lines[:0] = self.lines
        return True


@dataclass
class EncryptionKnown(Message):
    sse: dict[str, str]  # url -> algorithm, "" for none


@dataclass
class EncryptionCheckProgressed(Message, bubble=False):
    """The encryption check behind a refresh, once it takes a while: sent to every screen."""

    done: int
    total: int


@dataclass
class EncryptionChecked(Message, bubble=False):
    """The encryption check behind a refresh ended (its answers are in the cache): sent to
    every screen on the stack."""

    result: SseCheck


@dataclass
class ServiceFailed(Message):
    where: str  # the panel it concerns: "backups", "encryption", "log", "verify", ...
    error: str


@dataclass
class VerifyProgressed(Message):
    url: str
    read: int
    total: int


@dataclass
class VerifyFinished(Message):
    url: str
    ok: bool
    detail: str


@dataclass
class PreflightChecked(Message):
    target: str  # its display form
    findings: list[tuple[str, bool, str]]
    error: str | None = None
    production: str | None = None  # the production target this server is, by its identity
    identity: ServerIdentity | None = None


@dataclass
class RestoreProgressed(Message):
    """Events of a running restore. Sent one by one from the worker; a burst still queued
    is handled as one message (the older ones' events go first into the newest)."""

    events: list[RestoreEvent]

    def can_replace(self, message: Message) -> bool:
        # Textual asks the message about to be handled whether the next one queued may
        # take its place: it may, carrying both.
        if not isinstance(message, RestoreProgressed):
            return False
        message.events[:0] = self.events
        return True


@dataclass
class RestoreFinished(Message):
    report: RestoreReport | None  # None: it stopped before writing anything
    error: str | None = None


@dataclass
class ReviewProgressed(Message):
    stage: str  # "refresh", "backups", "encryption", "logs", "verify"
    done: int
    total: int


@dataclass
class ReviewLoaded(Message):
    review: Review
    archived: bool  # read back from the archive: shown read-only


@dataclass
class ReviewSigned(Message):
    review: Review  # signed off and archived
    unsigned: Review  # as it was before: the screen shows the signed one if it still shows this


@dataclass
class ReviewsListed(Message):
    reviews: list[ArchivedReview]  # newest first


@dataclass
class ArchiveListed(Message):
    items: list[ArchivedItem]  # reviews and restore reports, newest first
    where: str  # the archive, as the user named it
    recovered: int = 0  # reports of processes that were gone, completed as interrupted


@dataclass
class ArchiveReportRead(Message):
    location: str
    markdown: str


@dataclass
class RestoreTestsRead(Message):
    """The archive's restore tests, per cluster (``services.restore_test_history``)."""

    histories: list[ClusterTests]
    where: str  # the archive, as the user named it


@dataclass
class RestoreTestFinished(Message):
    """A restore test run from the console ended (its events came as ``RestoreProgressed``)."""

    cluster: str
    outcome: TestOutcome | None  # None: it could not start
    error: str | None = None
