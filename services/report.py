"""Restore reports for the audit: JSON and Markdown in the archive, and one line per
restore appended to the archive's audit log. Nothing secret is ever in them: targets
are shown as user@host:port/db, never with a password."""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import humanize


@dataclass
class RestoreReport:
    status: str  # succeeded, failed, cancelled
    backup: str
    target: str  # display form, never with a password
    target_name: str
    started_at: datetime
    finished_at: datetime
    phases: list[dict[str, Any]] = field(default_factory=list)  # name, seconds
    scope: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    retries: int = 0
    databases_created: list[str] = field(default_factory=list)
    user: str = field(default_factory=lambda: _who())
    host: str = field(default_factory=socket.gethostname)
    archived: dict[str, str] = field(default_factory=dict)

    @property
    def ttr_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "backup": self.backup,
            "target": self.target,
            "target_name": self.target_name,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "ttr_seconds": round(self.ttr_seconds, 3),
            "phases": self.phases,
            "scope": self.scope,
            "validation": self.validation,
            "tables": self.tables,
            "warnings": self.warnings,
            "error": self.error,
            "compressed_bytes": self.compressed_bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "retries": self.retries,
            "databases_created": self.databases_created,
            "user": self.user,
            "host": self.host,
            "archived": self.archived,
        }

    def to_markdown(self) -> str:
        v = self.validation or {}
        comp = v.get("completeness", {})
        integ = v.get("integrity", {})
        lines = [
            f"# Restore {self.status}: {self.backup}",
            "",
            f"- Target: `{self.target}` ({self.target_name})",
            f"- Started: {_iso(self.started_at)}, finished: {_iso(self.finished_at)}",
            f"- Time to restore: {self.ttr_seconds:.1f} s",
            f"- Data: {humanize.naturalsize(self.compressed_bytes, binary=True)} compressed, "
            f"{humanize.naturalsize(self.uncompressed_bytes, binary=True)} of SQL",
            f"- Scope: databases {', '.join(self.scope.get('databases') or ['all'])}; roles {self.scope.get('roles')}",
            f"- By {self.user} on {self.host}",
        ]
        if self.error:
            lines += ["", f"**Error:** {self.error}"]
        lines += ["", "## Phases", "", "| phase | seconds |", "|---|---:|"]
        lines += [f"| {p['name']} | {p['seconds']:.2f} |" for p in self.phases]
        if v:
            lines += [
                "",
                "## Validation",
                "",
                f"- Completeness: {'passed' if comp.get('passed') else 'FAILED'} "
                f"({comp.get('tables_checked', 0)} tables checked)",
                f"- Integrity: {'passed' if integ.get('passed') else 'FAILED'} "
                f"({len(integ.get('foreign_keys', []))} foreign keys, {len(integ.get('checks', []))} checks)",
            ]
            for kind_map in (comp.get("missing_objects") or {}).items():
                lines.append(f"- Missing in {kind_map[0]}: {json.dumps(kind_map[1])}")
            for fk in integ.get("foreign_keys", []):
                if fk["orphans"]:
                    lines.append(
                        f"- {fk['database']}: {fk['constraint']} on {fk['table']}: {fk['orphans']} orphan rows"
                    )
            for c in integ.get("checks", []):
                lines.append(
                    f"- check {c['name']} ({c['database']}): {'passed' if c['passed'] else 'FAILED'}"
                )
        if self.tables:
            lines += [
                "",
                "## Tables",
                "",
                "| database | table | expected rows | restored rows |",
                "|---|---|---:|---:|",
            ]
            lines += [
                f"| {t['database']} | {t['table']} | {t['expected']} | {'' if t['restored'] is None else t['restored']} |"
                for t in self.tables
            ]
        if self.warnings:
            lines += ["", "## Warnings", ""] + [f"- {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def check_archive_writable(directory: Path) -> None:
    """The audit trail must be writable before a restore starts, not found broken after."""
    import tempfile

    from services.errors import ConfigError

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ConfigError(
            f"archive {directory} is not writable ({exc.strerror})", "fix `archive:` in the config"
        ) from exc


def report_label(url: str, target_name: str) -> str:
    """The report's file name part: which cluster went where (from the object's URL)."""
    from services.operator import parse_backup_key

    parts = url.rstrip("/").split("/")
    parsed = parse_backup_key("/".join(parts[-4:])) if len(parts) >= 4 else None
    return f"{parsed.cluster if parsed else 'backup'}-to-{target_name}"


def archive_report(report: RestoreReport, archive: Path, label: str) -> RestoreReport:
    """Write the report as JSON and Markdown, and append a line to the audit log."""
    folder = archive / "restores"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = report.started_at.strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:80]
    base = folder / f"{stamp}-{safe}"
    report.archived = {
        "json": str(base.with_suffix(".json")),
        "markdown": str(base.with_suffix(".md")),
    }
    base.with_suffix(".json").write_text(
        json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    base.with_suffix(".md").write_text(report.to_markdown(), encoding="utf-8")
    audit = {
        "when": _iso(report.finished_at),
        "who": report.user,
        "host": report.host,
        "action": "restore",
        "backup": report.backup,
        "target": report.target,
        "outcome": report.status,
        "ttr_seconds": round(report.ttr_seconds, 3),
        "report": report.archived["json"],
    }
    with (archive / "audit.log").open("a", encoding="utf-8") as f:
        f.write(json.dumps(audit) + "\n")
    return report


def _who() -> str:
    try:
        return os.environ.get("PGDECK_USER") or getpass.getuser()
    except Exception:
        return "unknown"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")
