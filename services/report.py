"""Restore reports for the audit: JSON and Markdown in the archive, and one line per
restore appended to the archive's audit log. Nothing secret is ever in them: targets
are shown as user@host:port/db, never with a password."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import humanize

from services.archive import Archive, ArchiveSpec, Pending, open_archive
from services.clock import Clock, system_clock
from services.jsonable import iso
from services.liveness import os_user
from services.text import safe_text
from services.validate import TableCheck, Validation


@dataclass(frozen=True, slots=True)
class PhaseTime:
    name: str  # preflight, restore <database>, restore, validate
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds}


@dataclass(frozen=True, slots=True)
class RolesOutcome:
    """What became of the backup's roles (known once the restore has read them)."""

    existing_left_alone: tuple[str, ...] = ()
    passwords_left_out: int = 0
    created: tuple[str, ...] = ()
    privileges_left_out: tuple[str, ...] = ()  # roles created without privileged attributes
    memberships_left_out: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportScope:
    databases: tuple[str, ...]  # NAME or OLD:NEW; empty: the whole cluster
    roles: str
    target_system_identifier: str | None = None  # None until the server was asked
    roles_outcome: RolesOutcome | None = None

    def to_dict(self) -> dict[str, Any]:
        scope: dict[str, Any] = {"databases": list(self.databases), "roles": self.roles}
        if self.target_system_identifier is not None:
            scope["target_system_identifier"] = self.target_system_identifier
        r = self.roles_outcome
        if r is not None:
            scope["existing_roles_left_alone"] = list(r.existing_left_alone)
            scope["passwords_left_out"] = r.passwords_left_out
            scope["roles_created"] = list(r.created)
            if r.privileges_left_out:
                scope["privileges_left_out"] = list(r.privileges_left_out)
            if r.memberships_left_out:
                scope["memberships_left_out"] = list(r.memberships_left_out)
        return scope


@dataclass(frozen=True, slots=True)
class RestoreReport:
    status: str  # running, succeeded, failed, cancelled, interrupted
    backup: str
    target: str  # display form, never with a password
    target_name: str
    started_at: datetime
    finished_at: datetime
    scope: ReportScope | None = None
    phases: tuple[PhaseTime, ...] = ()
    validation: Validation | None = None
    tables: tuple[TableCheck, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    retries: int = 0
    databases_created: tuple[str, ...] = ()
    # A restore that did not succeed: the databases it created and did not finish, and
    # those of them dropped again (--on-failure drop).
    databases_incomplete: tuple[str, ...] = ()
    databases_dropped: tuple[str, ...] = ()
    # The settings pgdeck's sessions ran with (restore.session_settings), where the time
    # went (download, decompress, the main thread's reading; see RestoreEngine._time_split)
    # and, with --jobs N > 1, the data sessions' account (LanePool.facts).
    session_settings: Mapping[str, str] = field(default_factory=dict)
    time_split: Mapping[str, float] = field(default_factory=dict)
    parallel: Mapping[str, Any] | None = None
    user: str = field(default_factory=lambda: _who())  # PGDECK_USER may name the person
    os_user: str = field(default_factory=lambda: os_user())  # the process's real user
    host: str = field(default_factory=socket.gethostname)
    archived: Mapping[str, str] = field(default_factory=dict)  # json, markdown: where

    @property
    def ttr_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def databases_left(self) -> tuple[str, ...]:
        """Created by this restore, left incomplete and still on the target."""
        return tuple(d for d in self.databases_incomplete if d not in self.databases_dropped)

    def to_dict(self) -> dict[str, Any]:
        """The report as archived (JSON), printed by ``--json`` and shown as Markdown."""
        return {
            "status": self.status,
            "backup": self.backup,
            "target": self.target,
            "target_name": self.target_name,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "ttr_seconds": round(self.ttr_seconds, 3),
            "phases": [p.to_dict() for p in self.phases],
            "scope": self.scope.to_dict() if self.scope else {},
            "validation": self.validation.to_dict() if self.validation else None,
            "tables": [t.to_dict() for t in self.tables],
            "warnings": list(self.warnings),
            "error": self.error,
            "compressed_bytes": self.compressed_bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "retries": self.retries,
            "databases_created": list(self.databases_created),
            "databases_incomplete": list(self.databases_incomplete),
            "databases_dropped": list(self.databases_dropped),
            "session_settings": dict(self.session_settings),
            "time_split": dict(self.time_split),
            "parallel": dict(self.parallel) if self.parallel is not None else None,
            "user": self.user,
            "os_user": self.os_user,
            "host": self.host,
            "archived": dict(self.archived),
        }

    def to_markdown(self) -> str:
        # From the archived document itself: the JSON and the Markdown never disagree.
        d = self.to_dict()
        lines = [
            f"# Restore {d['status']}: {d['backup']}",
            "",
            f"- Target: `{d['target']}` ({d['target_name']})",
            f"- Started: {d['started_at']}, finished: {d['finished_at']}",
            f"- Time to restore: {self.ttr_seconds:.1f} s",
            f"- Data: {humanize.naturalsize(d['compressed_bytes'], binary=True)} compressed, "
            f"{humanize.naturalsize(d['uncompressed_bytes'], binary=True)} of SQL",
            f"- Scope: databases {', '.join(d['scope'].get('databases') or ['all'])}; roles {d['scope'].get('roles')}",
            f"- By {d['user']} (OS user {d['os_user']}) on {d['host']}",
        ]
        if d["error"]:
            lines += ["", f"**Error:** {d['error']}"]
        if self.databases_incomplete:
            if self.databases_left:
                lines.append(
                    "**Left incomplete on the target** (created by this restore, not finished): "
                    + ", ".join(f"`{name}`" for name in self.databases_left)
                )
            if self.databases_dropped:
                lines.append(
                    "**Dropped again** (created by this restore, left incomplete): "
                    + ", ".join(f"`{name}`" for name in self.databases_dropped)
                )
        lines += ["", "## Phases", "", "| phase | seconds |", "|---|---:|"]
        lines += [f"| {p['name']} | {p['seconds']:.2f} |" for p in d["phases"]]
        lines += _sessions_markdown(d)
        lines += validation_markdown(d)
        if d["warnings"]:
            lines += ["", "## Warnings", ""] + [f"- {w}" for w in d["warnings"]]
        # Names, messages and errors come from the backup and the server: the archived
        # document never carries a terminal's control sequence.
        return safe_text("\n".join(lines) + "\n", keep="\t\n")


def _sessions_markdown(d: Mapping[str, Any]) -> list[str]:
    """The sessions' settings, where the time went, and the data sessions' account."""
    lines: list[str] = []
    if d.get("session_settings"):
        lines += ["", "## Session settings", ""]
        lines += [f"- `{k} = {v}`" for k, v in d["session_settings"].items()]
    if d.get("time_split"):
        lines += ["", "## Where the time went", "", "| part | seconds |", "|---|---:|"]
        lines += [
            f"| {k.removesuffix('_seconds').replace('_', ' ')} | {v:.2f} |"
            for k, v in d["time_split"].items()
        ]
    p = d.get("parallel")
    if p:
        lines += [
            "",
            "## Data sessions",
            "",
            f"- Jobs: {p['jobs']} (at most {p['busiest']} loading at once)",
            f"- Largest spool held: {humanize.naturalsize(p['largest_spool_bytes'], binary=True)}"
            f" ({p['spooled_tables']} tables spooled)",
            f"- Post-data on the data sessions: {p['postdata_statements']} statements"
            f" (indexes, keys), {p['postdata_seconds']:.2f} s",
            "",
            "| session | tables | COPY bytes | COPY s | of it waiting s | post-data statements | post-data s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {x['session']} | {x['tables']} | {x['copy_bytes']} | {x['copy_seconds']:.2f} |"
            f" {x['copy_waiting_seconds']:.2f} | {x['postdata_statements']} |"
            f" {x['postdata_seconds']:.2f} |"
            for x in p["sessions"]
        ]
    return lines


def validation_markdown(d: Mapping[str, Any]) -> list[str]:
    """The validation and tables sections of a restore's document (a restore test's
    report keeps the same fields), for its Markdown."""
    lines: list[str] = []
    v = d.get("validation") or {}
    if v:
        comp, integ = v.get("completeness", {}), v.get("integrity", {})
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
    if d.get("tables"):
        lines += [
            "",
            "## Tables",
            "",
            "| database | table | expected rows | restored rows |",
            "|---|---|---:|---:|",
        ]
        lines += [
            f"| {_cell(t['database'])} | {_cell(t['table'])} | {t['expected']} | {'' if t['restored'] is None else t['restored']} |"
            for t in d["tables"]
        ]
    return lines


def check_archive_writable(archive: ArchiveSpec | Archive) -> None:
    """The audit trail must be writable before a restore starts, not found broken after
    (``ArchiveError``, exit status 1, naming the archive and why)."""
    open_archive(archive).check_writable()


def begin_report(
    report: RestoreReport,
    archive: ArchiveSpec | Archive,
    label: str,
    *,
    clock: Clock = system_clock,
) -> Pending:
    """The report as a ``running`` record, written when the restore starts: if the
    process dies, the next pgdeck marks it ``interrupted`` (and audits that). Pass the
    result to ``archive_report(..., pending=...)`` at the end."""
    return open_archive(archive, clock).begin("restore", label, report.to_dict())


def report_label(url: str, target_name: str) -> str:
    """The report's file name part: which cluster went where (from the object's URL)."""
    from services.operator import parse_backup_key

    parts = url.rstrip("/").split("/")
    parsed = parse_backup_key("/".join(parts[-4:])) if len(parts) >= 4 else None
    return f"{parsed.cluster if parsed else 'backup'}-to-{target_name}"


def archive_report(
    report: RestoreReport,
    archive: ArchiveSpec | Archive,
    label: str,
    *,
    pending: Pending | None = None,
    clock: Clock = system_clock,
) -> RestoreReport:
    """Write the report as JSON and Markdown (exclusively, under a name of its own, or
    the name ``pending`` holds) and append its audit entry. ``ArchiveError`` when any of
    it cannot be written; the report returned names in ``archived`` files that exist."""
    done = open_archive(archive, clock).complete(
        pending,
        "restore",
        label,
        report.to_dict(),
        report.to_markdown(),
        {
            "action": "restore",
            "user": report.user,  # as the report names it (PGDECK_USER may set it)
            "backup": report.backup,
            "target": report.target,
            "target_name": report.target_name,
            "outcome": report.status,
            "started_at": iso(report.started_at),
            "finished_at": iso(report.finished_at),
            "ttr_seconds": round(report.ttr_seconds, 3),
        },
    )
    return replace(report, archived={"json": done.json_url, "markdown": done.markdown_url})


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _who() -> str:
    try:
        return os.environ.get("PGDECK_USER") or getpass.getuser()
    except Exception:
        return "unknown"
