"""The words pgdeck judges with: a finding's severity, a checklist cell, a cluster's health
mark, an hour of the coverage grid and a cluster's restore tests.

Each vocabulary is declared here once, as a ``StrEnum`` whose values are the words the
JSON and Markdown reports have always carried, so archived reports read the same. How a
word is drawn (its sign, its colour) is the console's business: ``tui/glyphs.py``.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How much a finding asks of the reviewer."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return CheckMark(self).rank


class CheckMark(StrEnum):
    """A cell of the review's checklist: the check passed, was skipped, or the worst
    severity among its findings."""

    OK = "ok"
    SKIPPED = "skipped"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _CHECK_RANK[self]


_CHECK_RANK = {
    CheckMark.OK: 0,
    CheckMark.SKIPPED: 0,
    CheckMark.INFO: 1,
    CheckMark.WARNING: 2,
    CheckMark.CRITICAL: 3,
}


class HealthMark(StrEnum):
    """A cluster's health at a glance, worst first: a cluster shows the worst that applies."""

    FAILED = "failed"
    NO_BACKUPS = "no backups"
    LATE = "late"
    MISSING = "missing"  # shown with its count of runs: "missing 3"
    OK = "ok"
    OFF = "off"
    GONE = "gone"
    BAD_SCHEDULE = "bad schedule"


class CoverageCell(StrEnum):
    """An hour of the coverage grid."""

    PRESENT = "present"  # an object was written in it
    MISSING = "missing"  # a run started in it left no object in its window
    UNUSUAL = "unusual"  # its object's size is an outlier
    PENDING = "pending"  # a run still within its grace
    NONE = "none"  # nothing was expected
    BEFORE = "before"  # before the cluster's creation or first backup
    FUTURE = "future"  # not come yet


class RestoreTestMark(StrEnum):
    """A cluster's restore tests at a glance (``services.restore_test_history``), worst first."""

    FAILED = "failed"  # its last test with a verdict did not pass
    STALE = "stale"  # it passed, longer ago than a quarter
    NEVER = "never"  # no test of it reached a verdict
    OK = "ok"
