"""Messages from workers to the screens: past-tense names, plain payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # for annotations only: importing the engine costs the start a moment
    from services.archive import ArchivedItem
    from services.catalog import CatalogState
    from services.models import Backup, JobRun
    from services.restore import RestoreEvent
    from services.review import ArchivedReview, Review
    from widgets.cluster_table import ClusterRow
    from widgets.coverage_grid import GridDay


@dataclass
class CatalogLoaded(Message):
    state: CatalogState
    from_cache: bool
    rows: list[ClusterRow]  # one per state.clusters, built by the worker


@dataclass
class CatalogFailed(Message):
    error: str


@dataclass
class TimelineLoaded(Message):
    backups: list[Backup]  # newest first
    jobs: list[JobRun]  # newest first
    grid: list[GridDay] = field(default_factory=list)  # the coverage grid, newest day first
    caption: str = ""
    flags: dict[str, str] = field(default_factory=dict)  # url -> size outlier


@dataclass
class EncryptionKnown(Message):
    sse: dict[str, str]  # url -> algorithm, "" for none


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
class RestoreEvents(Message):
    events: list[RestoreEvent]


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
    review: Review


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
