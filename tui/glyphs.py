"""How the console draws the marks services judge with: each member of each vocabulary of
``services/marks.py`` has one sign (which reads without colour), one word and one style.

The screens, the widgets (given the ``Glyph`` values, never the enums) and the command
line's tables all draw from these tables, so a mark looks the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import TypeVar

from services.health import Health
from services.marks import CheckMark, CoverageCell, HealthMark, RestoreTestMark, Severity
from widgets.glyph import Glyph

M = TypeVar("M", bound=StrEnum)


def _drawn(signs: dict[M, tuple[str, str]]) -> dict[M, Glyph]:
    """Each member's (sign, style), with its word: the member's own value."""
    return {m: Glyph(sign, m.value, style) for m, (sign, style) in signs.items()}


CHECK: dict[CheckMark, Glyph] = _drawn(
    {
        CheckMark.OK: ("✓", "green"),
        CheckMark.SKIPPED: ("-", "dim"),
        CheckMark.INFO: ("i", "cyan"),
        CheckMark.WARNING: ("!", "bold yellow"),
        CheckMark.CRITICAL: ("✗", "bold red"),
    }
)

# By how much each asks of the reader.
HEALTH: dict[HealthMark, Glyph] = _drawn(
    {
        HealthMark.OK: ("✓", "green"),
        HealthMark.LATE: ("!", "bold yellow"),
        HealthMark.MISSING: ("!", "yellow"),
        HealthMark.FAILED: ("✗", "bold red"),
        HealthMark.NO_BACKUPS: ("✗", "bold red"),
        HealthMark.BAD_SCHEDULE: ("✗", "red"),
        HealthMark.OFF: ("-", "dim"),
        HealthMark.GONE: ("-", "dim"),
    }
)
NO_HEALTH = Glyph("?", "")  # a cluster not judged

# A cluster's restore tests: "never" shares the sign of what is not known.
RESTORE_TEST: dict[RestoreTestMark, Glyph] = _drawn(
    {
        RestoreTestMark.OK: ("✓", "green"),
        RestoreTestMark.STALE: ("!", "bold yellow"),
        RestoreTestMark.NEVER: ("?", "yellow"),
        RestoreTestMark.FAILED: ("✗", "bold red"),
    }
)
# A test's own result, as its report names it (an unknown word is drawn as itself).
TEST_RESULT: dict[str, Glyph] = {
    "passed": Glyph("✓", "passed", "green"),
    "failed": Glyph("✗", "failed", "bold red"),
    "error": Glyph("✗", "error", "bold red"),
    "cancelled": Glyph("-", "cancelled", "yellow"),
    "interrupted": Glyph("-", "interrupted", "yellow"),
}


# A notification's severity: its toast's title without colour (an information has none).
NOTICE: dict[str, Glyph] = {
    "error": Glyph("✗", "error", "bold red"),
    "warning": Glyph("!", "warning", "bold yellow"),
}


def restore_test(mark: RestoreTestMark) -> Glyph:
    return RESTORE_TEST[mark]


def test_result(result: str) -> Glyph:
    return TEST_RESULT.get(result) or Glyph("?", result or "-", "")


_COVERAGE: dict[CoverageCell, Glyph] = _drawn(
    {
        CoverageCell.PRESENT: ("■", "green"),
        CoverageCell.UNUSUAL: ("▲", "bold yellow"),
        CoverageCell.MISSING: ("✗", "bold red"),
        CoverageCell.PENDING: ("…", "cyan"),
        CoverageCell.NONE: ("·", "dim"),
        CoverageCell.BEFORE: (" ", ""),
        CoverageCell.FUTURE: (" ", ""),
    }
)
# As the grid widget takes it: keyed by plain state names (the cells it gets are
# CoverageCell members, which are those strings).
COVERAGE: dict[str, Glyph] = {cell.value: glyph for cell, glyph in _COVERAGE.items()}
# The hours the grid's legend counts, in its order.
COVERAGE_LEGEND = (
    CoverageCell.PRESENT,
    CoverageCell.MISSING,
    CoverageCell.UNUSUAL,
    CoverageCell.PENDING,
    CoverageCell.NONE,
)


def severity(s: Severity) -> Glyph:
    """A finding's severity, drawn as its checklist cell is."""
    return CHECK[CheckMark(s)]


def severity_counts(counts: Mapping[str, object], sep: str = " ") -> str:
    """A review's summary as signs and counts, worst first: "✗ 0 ! 2 i 1" (``counts`` as
    its JSON has them: a severity not named counts 0)."""
    return sep.join(f"{severity(s).sign} {counts.get(s, 0)}" for s in reversed(Severity))


def health(h: Health | None) -> Glyph:
    """A cluster's mark, with its count where it has one ("! missing 3")."""
    if h is None:
        return NO_HEALTH
    return replace(HEALTH[h.mark], word=h.label)
