"""A restore test's report: the restore's own report with what an auditor asks of a test.

The document keeps every field of the restore's report (``status``, ``ttr_seconds``,
``phases``, ``validation``, ``tables``, ...) at its top level and adds the test's: its run
id and result, who and what started it, the source cluster, the backup chosen and how,
the staging cluster, the time-to-restore per phase against the objective, the errors
that were expected and those that were not, and what became of the staging cluster.
The Markdown is written from the document itself, so the two never disagree, and
through ``safe_text``: names and messages come from storage, Kubernetes and servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import humanize

from services.backup_choice import Chosen
from services.jsonable import iso
from services.models import Cluster
from services.report import RestoreReport, validation_markdown
from services.staging import StagingCluster
from services.text import safe_text

KIND = "restore-test"
PASSED, FAILED, ERROR, CANCELLED = "passed", "failed", "error", "cancelled"
EXPECTED = "expected: "  # how the engine marks what a restore into a new cluster always meets


@dataclass(frozen=True, slots=True)
class Teardown:
    status: str  # deleted, kept, gone, failed, not-created
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error}


@dataclass(frozen=True, slots=True)
class TestFacts:
    """Everything a test learned on its way, whatever point it reached."""

    run_id: str
    cluster: str
    rto_seconds: float
    started_by: dict[str, Any]
    test_started_at: datetime
    test_finished_at: datetime
    source: Cluster | None = None
    chosen: Chosen | None = None
    staging: StagingCluster | None = None
    staging_seconds: float | None = None  # from the create until it was ready
    connect: str = "service"  # or port-forward
    address: str | None = None
    restore: RestoreReport | None = None
    teardown: Teardown = field(default_factory=lambda: Teardown("not-created"))
    error: str | None = None  # why the test could not run (or stopped) before the restore ended
    cancelled: bool = False
    jobs: int = 1  # the data sessions the restore loads table data on (--jobs)


def judge(facts: TestFacts) -> tuple[str, list[str]]:
    """The result and every reason it is not ``passed``."""
    r = facts.restore
    if facts.cancelled or (r is not None and r.status == "cancelled"):
        return CANCELLED, ["cancelled before it finished"]
    if r is None:
        return ERROR, [facts.error or "the test stopped before the restore ran"]
    reasons = []
    if r.status != "succeeded":
        reasons.append(f"restore {r.status}: {r.error or 'see the phases'}")
    # Data of the backup a restore left out (a template1 with tables) is not tested.
    reasons += [w for w in r.warnings if "not restored" in w and not w.startswith(EXPECTED)]
    measured = measured_seconds(facts)
    if measured is not None and measured > facts.rto_seconds:
        reasons.append(
            f"time-to-restore {_minutes(measured)} over the objective {_minutes(facts.rto_seconds)}"
        )
    if facts.teardown.status == "failed":
        reasons.append(f"the staging cluster was not deleted: {facts.teardown.error}")
    if facts.error:
        reasons.append(facts.error)
    return (PASSED if not reasons else FAILED), reasons


def measured_seconds(facts: TestFacts) -> float | None:
    """What the objective is measured against: staging ready + restore + validation, what
    getting a cluster back takes when the one that broke is gone."""
    if facts.restore is None:
        return None
    return (facts.staging_seconds or 0.0) + facts.restore.ttr_seconds


def document(facts: TestFacts) -> dict[str, Any]:
    """The archived JSON document of a test at whatever point it reached."""
    result, reasons = judge(facts)
    r = facts.restore
    base: dict[str, Any] = r.to_dict() if r is not None else {"status": "not-run"}
    measured = measured_seconds(facts)
    warnings = list(r.warnings) if r is not None else []
    unexpected = [w for w in warnings if not w.startswith(EXPECTED)]
    if r is not None and r.error:
        unexpected.append(r.error)
    if facts.error:
        unexpected.append(facts.error)
    staging = facts.staging.to_dict() if facts.staging else None
    if staging is not None:
        staging.update(
            ready_seconds=_round(facts.staging_seconds),
            connect=facts.connect,
            address=facts.address,
        )
    src = facts.source
    chosen = facts.chosen
    return {
        **base,
        "kind": KIND,
        "run_id": facts.run_id,
        "result": result,
        "reasons": reasons,
        "started_by": dict(facts.started_by),
        "source": {
            "cluster": facts.cluster,
            "namespace": src.namespace if src else None,
            "uid": src.uid if src else None,
            "context": src.context if src else None,
            "version": src.version if src else None,
        },
        "backup_object": None
        if chosen is None
        else {
            "url": chosen.backup.url,
            "key": chosen.backup.key,
            "time": iso(chosen.backup.time),
            "size": chosen.backup.size,
            "sse": chosen.backup.sse,
            "choice": str(chosen.choice),
            "seed": chosen.seed,
            "among": chosen.among,
            "window_end": iso(chosen.window_end),
        },
        "staging": staging,
        "test_started_at": iso(facts.test_started_at),
        "test_finished_at": iso(facts.test_finished_at),
        "objective": {
            "rto_seconds": facts.rto_seconds,
            "measured_seconds": _round(measured),
            "met": None if measured is None else measured <= facts.rto_seconds,
            "measured": "staging ready + restore + validation",
        },
        "time_to_restore": {
            "staging_seconds": _round(facts.staging_seconds),
            "restore_seconds": _round(r.ttr_seconds if r else None),
            "total_seconds": _round(measured),
            "data_sessions": facts.jobs,
        },
        "errors": {
            "expected": [w.removeprefix(EXPECTED) for w in warnings if w.startswith(EXPECTED)],
            "unexpected": unexpected,
        },
        "teardown": facts.teardown.to_dict(),
    }


def markdown(doc: dict[str, Any]) -> str:
    """The document for people, from the document itself."""
    src, bk, st = doc["source"], doc.get("backup_object"), doc.get("staging")
    obj, ttr = doc["objective"], doc["time_to_restore"]
    lines = [
        f"# Restore test {doc['result']}: {src['cluster']}",
        "",
        f"- Run: `{doc['run_id']}`, started {doc['test_started_at']}, "
        f"finished {doc['test_finished_at']}",
        f"- Started by {doc['started_by'].get('user', '?')} "
        f"(OS user {doc['started_by'].get('os_user', '?')}) on "
        f"{doc['started_by'].get('host', '?')}: `{doc['started_by'].get('command', '?')}`",
        f"- Source: {src['namespace'] or '-'}/{src['cluster']} (uid {src['uid'] or '-'}, "
        f"context {src['context'] or '-'}, PostgreSQL {src['version'] or '-'})",
    ]
    if bk:
        seed = (
            f", seed {bk['seed']}, one of {bk['among']} in the window ending {bk.get('window_end')}"
            if bk["seed"] is not None
            else ""
        )
        lines.append(
            f"- Backup: {bk['url']} of {bk['time']}, "
            f"{humanize.naturalsize(bk['size'] or 0, binary=True)}, SSE {bk['sse'] or 'unknown'} "
            f"(chosen: {bk['choice']}{seed})"
        )
    if st:
        lines.append(
            f"- Staging cluster: {st['namespace']}/{st['name']} (uid {st['uid'] or '-'}, "
            f"PostgreSQL {st['version']}, volume {st['volume']}, reached by {st['connect']})"
        )
    lines.append(f"- Teardown: {doc['teardown']['status']}")
    if doc["teardown"].get("error"):
        lines[-1] += f" ({doc['teardown']['error']})"
    if doc["reasons"]:
        lines += ["", "## Why it did not pass", ""] + [f"- {r}" for r in doc["reasons"]]
    objective = obj["rto_seconds"] or 0
    lines += [
        "",
        "## Time to restore",
        "",
        f"Objective {_minutes(objective)}; measured "
        f"{_minutes(obj['measured_seconds']) if obj['measured_seconds'] is not None else '-'} "
        f"({obj['measured']}, table data on {_sessions(ttr.get('data_sessions'))}): "
        f"{_met(obj['met'])}.",
        "",
        "| phase | seconds | of the objective |",
        "|---|---:|---:|",
    ]
    phases = [("staging ready", ttr["staging_seconds"])]
    phases += [(p["name"], p["seconds"]) for p in doc.get("phases") or []]
    for name, seconds in phases:
        if seconds is None:
            continue
        share = f"{100 * seconds / objective:.1f}%" if objective else "-"
        lines.append(f"| {_cell(name)} | {seconds:.2f} | {share} |")
    lines += validation_markdown(doc)
    for title, items in (
        ("Unexpected errors", doc["errors"]["unexpected"]),
        ("Expected", doc["errors"]["expected"]),
    ):
        if items:
            lines += ["", f"## {title}", ""] + [f"- {w}" for w in items]
    return safe_text("\n".join(lines) + "\n", keep="\t\n")


def audit_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The audit entry of a completed test (no secret is in the document to begin with)."""
    return {
        "run_id": doc["run_id"],
        "source_cluster": doc["source"]["cluster"],
        "backup": (doc.get("backup_object") or {}).get("url"),
        "staging_cluster": (doc.get("staging") or {}).get("name"),
        "outcome": doc["result"],
        "ttr_seconds": doc["time_to_restore"]["total_seconds"],
        "rto_seconds": doc["objective"]["rto_seconds"],
        "teardown": doc["teardown"]["status"],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _minutes(seconds: float) -> str:
    """Minutes, as objectives are set; a short span in seconds."""
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _sessions(n: int | None) -> str:
    """A document archived before the data sessions were recorded says nothing of them."""
    if n is None:
        return "sessions not recorded"
    return f"{n} session{'s' if n != 1 else ''}"


def _met(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "MISSED")


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")
