"""A weekly review as made: its checklist, its findings with their evidence, its sign-off,
and the JSON and Markdown it is archived as for the audit.

The JSON and Markdown are records: their shape does not change between versions, and
an archived review reads back into the same values (``Review.from_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.jsonable import iso
from services.marks import CheckMark, Severity
from services.review_checks import CHECK_NAMES, Evidence
from services.text import safe_text


@dataclass(frozen=True, slots=True)
class Finding:
    cluster: str
    namespace: str
    context: str
    check: str
    severity: Severity
    detail: str
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = [asdict(e) for e in self.evidence]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        fields = {k: v for k, v in data.items() if k != "evidence"}
        return cls(
            **{**fields, "severity": Severity(fields["severity"])},
            evidence=tuple(Evidence(**e) for e in data.get("evidence", [])),
        )


@dataclass(frozen=True, slots=True)
class ClusterReview:
    cluster: str
    namespace: str
    context: str
    in_kubernetes: bool
    logical_backup: bool
    schedule: str | None
    objects: int  # objects written in the window
    # check -> its mark. The order is the JSON's: archived reviews keep theirs.
    marks: Mapping[str, CheckMark]

    @property
    def worst(self) -> CheckMark:
        return max(self.marks.values(), key=lambda m: m.rank, default=CheckMark.OK)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterReview:
        marks = {k: CheckMark(v) for k, v in (data.get("marks") or {}).items()}
        return cls(**{**data, "marks": marks})


@dataclass(frozen=True, slots=True)
class Review:
    window_start: datetime
    window_end: datetime
    verify: bool
    clusters: tuple[ClusterReview, ...] = ()
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()  # limited sources, said once
    reviewer: str | None = None
    note: str | None = None
    signed_at: datetime | None = None
    archived: dict[str, str] | None = None  # json, markdown (URLs) and location

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity.rank >= Severity.WARNING.rank for f in self.findings) else 0

    def counts(self) -> dict[str, int]:
        """Findings per severity, every severity named (the JSON's summary)."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def for_cluster(self, c: ClusterReview) -> list[Finding]:
        return [
            f
            for f in self.findings
            if (f.cluster, f.namespace, f.context) == (c.cluster, c.namespace, c.context)
        ]

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "verify": self.verify,
            "signed_off": None
            if self.signed_at is None
            else {"reviewer": self.reviewer, "note": self.note, "at": iso(self.signed_at)},
            "summary": self.counts(),
            "clusters": [asdict(c) for c in self.clusters],
            "findings": [f.to_dict() for f in self.findings],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        signed = data.get("signed_off") or {}
        return cls(
            window_start=_parse(data["window"]["start"]),
            window_end=_parse(data["window"]["end"]),
            verify=bool(data.get("verify")),
            clusters=tuple(ClusterReview.from_dict(c) for c in data.get("clusters", [])),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            warnings=tuple(data.get("warnings", [])),
            reviewer=signed.get("reviewer"),
            note=signed.get("note"),
            signed_at=_parse(signed["at"]) if signed.get("at") else None,
        )

    def to_markdown(self) -> str:
        c = self.counts()
        lines = [
            "# pgdeck weekly backup review",
            "",
            f"- Window: {iso(self.window_start)} to {iso(self.window_end)}",
            f"- Clusters: {len(self.clusters)}; findings: {c['critical']} critical, "
            f"{c['warning']} warning, {c['info']} info",
            f"- Newest backups verified end to end: {'yes' if self.verify else 'no'}",
        ]
        if self.signed_at is not None:
            lines.append(
                f"- Signed off by {safe_text(self.reviewer or '')} at {iso(self.signed_at)}"
            )
            if self.note:
                lines.append(f"- Note: {safe_text(self.note)}")
        else:
            lines.append("- Not signed off")
        lines += ["", "## Checklist", "", "| Cluster | " + " | ".join(CHECK_NAMES) + " |"]
        lines.append("|---" * (len(CHECK_NAMES) + 1) + "|")
        for cr in self.clusters:
            where = f"{cr.namespace}/{cr.cluster}" if cr.namespace else f"{cr.cluster} (storage)"
            lines.append(
                f"| {safe_text(where)} | "
                + " | ".join(cr.marks.get(k, "-") for k in CHECK_NAMES)
                + " |"
            )
        off = [cr for cr in self.clusters if cr.in_kubernetes and not cr.logical_backup]
        if off:
            lines += [
                "",
                "Without logical backups: "
                + safe_text(", ".join(f"{cr.namespace}/{cr.cluster}" for cr in off)),
            ]
        lines += ["", "## Findings", ""]
        if not self.findings:
            lines.append("None.")
        for f in sorted(self.findings, key=lambda f: (-f.severity.rank, f.cluster, f.check)):
            where = f"{f.namespace}/{f.cluster}" if f.namespace else f.cluster
            lines.append(
                f"- **{f.severity}** `{f.check}` {safe_text(where)}: {safe_text(f.detail)}"
            )
            lines += [
                f"  - {e.kind} `{safe_text(e.ref)}`"
                + (f": {safe_text(e.detail)}" if e.detail else "")
                for e in f.evidence
            ]
        if self.warnings:
            lines += ["", "## Sources", ""] + [f"- {safe_text(w)}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
