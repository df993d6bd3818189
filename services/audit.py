"""The audit log's hash chain: how an entry is made and how the whole log is checked.

Each entry is one JSON object (a line of ``audit.log``, or an object ``audit/<seq>.json``
on S3) that begins with ``seq`` (1, 2, 3 ...) and ``prev``, the sha256 of the previous
entry's bytes (``GENESIS`` for the first), and names the report it records with the
report's sha256. So an entry edited, deleted or moved breaks the chain at that place, and
a report edited or deleted no longer matches its entry. Deleting the newest entries
leaves a valid chain behind, so two more facts are checked: every report in the archive
must be named by an entry (a report whose entry went is found), and locally
``audit.head`` records the newest entry's number and hash (a log that ends before it is
found; the next append continues past the head's number, so the gap stays visible).

What this gives: any edit, deletion or reordering made with ordinary tools is found and
named. Someone able to rewrite the whole log, its head and the reports consistently is
not stopped by hashes alone: that is what an S3 archive with Object Lock is for (objects
that cannot be replaced or deleted until their retention ends).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from services.archive_store import GENESIS, ArchiveStore, digest

RESERVED = ("seq", "prev", "when", "os_user", "host", "report", "report_sha256")
REPORT_FOLDERS = ("restores", "reviews", "restore-tests")
_NEW_STYLE = re.compile(r"-[0-9a-f]{8}\.(json|md)$")
REPORT_LOCATION = re.compile(
    r"^(restores|reviews|restore-tests)/[A-Za-z0-9][A-Za-z0-9._-]*\.(json|md)$"
)


def entry_bytes(
    seq: int,
    prev: str,
    *,
    when: str,
    os_user: str,
    host: str,
    fields: dict[str, Any],
    reports: dict[str, tuple[str, str]],
) -> bytes:
    """One entry: the chain first, who and when, the caller's fields, then each report's
    location and sha256 (``reports``: ``"report" -> (location, sha)``, ``"markdown" -> ...``)."""
    clash = set(fields) & {*RESERVED, *reports, *(f"{k}_sha256" for k in reports)}
    if clash:
        raise ValueError(f"audit fields {sorted(clash)} are the archive's own")
    entry: dict[str, Any] = {"seq": seq, "prev": prev, "when": when, "os_user": os_user}
    entry["host"] = host
    entry.update(fields)
    for name, (location, sha) in reports.items():
        entry[name] = location
        entry[f"{name}_sha256"] = sha
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class AuditProblem:
    position: int  # the entry's place in the log, 1 first (len + 1: past the end)
    kind: str  # edited, deleted, reordered, truncated, report changed, report missing,
    #            report not in the log, head unreadable
    where: str  # "…/audit.log line 3", "audit entry 3 (s3://…)"
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "kind": self.kind,
            "where": self.where,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class AuditCheck:
    archive: str
    entries: int  # entries in the log
    legacy: int = 0  # lines from before the chain, which cannot be checked
    reports: int = 0  # reports checked against their entries
    last_sha256: str | None = None  # the newest entry's hash: note it elsewhere to anchor
    problems: tuple[AuditProblem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> AuditProblem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "ok": self.ok,
            "entries": self.entries,
            "legacy_lines": self.legacy,
            "reports_checked": self.reports,
            "last_sha256": self.last_sha256,
            "problems": [p.to_dict() for p in self.problems],
        }


def verify_chain(store: ArchiveStore) -> AuditCheck:
    """Check the chain, the head, every report an entry names and every report kept."""
    entries = store.audit_entries()
    problems: list[AuditProblem] = []
    named: dict[str, tuple[int, str | None]] = {}  # location -> (position, sha or None)
    parsed: list[dict[str, Any] | None] = []
    for _, raw in entries:
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        parsed.append(obj if isinstance(obj, dict) else None)

    def problem(position: int, kind: str, detail: str) -> None:
        where = store.entry_name(position)
        if position > len(entries):
            where += " (after the last entry)"
        problems.append(AuditProblem(position, kind, where, detail))

    # Lines from before the chain (no seq, no prev) may open a local log: counted, and
    # the first chained line's prev must still match the last of them.
    legacy = 0
    while legacy < len(parsed) and _is_legacy(parsed[legacy]):
        obj = parsed[legacy]
        assert obj is not None
        for loc in _legacy_locations(obj):
            if _NEW_STYLE.search(loc):
                # Reports named with a random suffix were written after the chain began:
                # an old-format line cannot stand for one (a forged log would).
                problem(legacy + 1, "edited", f"an old-format line names {loc}, a newer report")
            named.setdefault(loc, (legacy + 1, None))
        legacy += 1
    prev = digest(entries[legacy - 1][1]) if legacy else GENESIS
    expected = legacy + 1
    chain_broken = False
    seqs = [o.get("seq") if o else None for o in parsed]
    for i in range(legacy, len(entries)):
        position, raw, obj = i + 1, entries[i][1], parsed[i]
        if (
            obj is None
            or not isinstance(obj.get("seq"), int)
            or not isinstance(obj.get("prev"), str)
        ):
            problem(position, "edited", "not an audit entry any more")
            chain_broken = True
            break
        seq = obj["seq"]
        if seq != expected:
            if seq < expected or expected in seqs[i + 1 :]:
                problem(
                    position,
                    "reordered",
                    f"holds entry {seq} where entry {expected} belongs",
                )
            else:
                problem(position, "deleted", f"{_missing(expected, seq - 1)} before it")
            chain_broken = True
            break
        if obj["prev"] != prev:
            if position == 1:
                problem(position, "edited", "its link to the start of the chain was changed")
            else:
                problem(
                    position - 1,
                    "edited",
                    f"its bytes no longer match the hash that entry {seq} records of it",
                )
            chain_broken = True
            break
        for name in ("report", "markdown"):
            ref = obj.get(name)
            if ref is None:
                continue
            if not isinstance(ref, str) or not REPORT_LOCATION.match(ref):
                problem(position, "edited", f"names an impossible report location {ref!r}")
                continue
            named[ref] = (position, obj.get(f"{name}_sha256"))
        prev = digest(raw)
        expected = seq + 1
    if chain_broken:  # past the break nothing is trusted, but what it names is not orphaned
        for position, obj in enumerate(parsed, 1):
            for name in ("report", "markdown"):
                ref = (obj or {}).get(name)
                if isinstance(ref, str) and REPORT_LOCATION.match(ref):
                    named.setdefault(ref, (position, None))
    last_sha = digest(entries[-1][1]) if entries else None
    if not chain_broken:
        head = store.audit_head()
        if head is not None and head[0] >= expected:
            problem(
                len(entries) + 1,
                "truncated",
                f"{_missing(expected, head[0])} at the end (the head record names entry {head[0]})",
            )
        elif head is not None and head[0] == expected - 1 and head[1] != last_sha:
            problem(len(entries), "edited", "its bytes no longer match the head record's hash")
        elif head is not None and head[0] != expected - 1:
            # The head names an entry the chain holds, but not the last: entries were
            # added (or the log rewritten, legacy lines included) outside pgdeck.
            problem(
                len(entries),
                "edited",
                f"the head record names entry {head[0]}, but the log goes on past it",
            )
    # Reports: each one named must be there with its hash; each one kept must be named.
    checked = 0
    for loc, (position, sha) in sorted(named.items(), key=lambda kv: kv[1][0]):
        if sha is None:
            continue  # a legacy line recorded no hash
        data = store.get(loc)
        checked += 1
        if data is None:
            problem(position, "report missing", f"{store.url(loc)} is gone")
        elif digest(data) != sha:
            problem(position, "report changed", f"{store.url(loc)} no longer has its sha256")
    for loc in _kept_reports(store):
        if loc not in named:
            problem(
                len(entries) + 1,
                "report not in the log",
                f"no entry names {store.url(loc)} (its entry was deleted, or it was added by hand)",
            )
    problems.sort(key=lambda p: p.position)
    return AuditCheck(
        archive=store.where,
        entries=len(entries),
        legacy=legacy,
        reports=checked,
        last_sha256=last_sha,
        problems=tuple(problems),
    )


def _missing(first: int, last: int) -> str:
    return f"entry {first} is missing" if first == last else f"entries {first}-{last} are missing"


def _is_legacy(obj: dict[str, Any] | None) -> bool:
    return obj is not None and "seq" not in obj and "prev" not in obj and "action" in obj


def _legacy_locations(obj: dict[str, Any]) -> Iterable[str]:
    """What an old line's absolute report path names, as a location in this archive."""
    path = obj.get("report")
    if not isinstance(path, str):
        return ()
    parts = path.replace("\\", "/").rsplit("/", 2)
    if len(parts) < 2:
        return ()
    loc = f"{parts[-2]}/{parts[-1]}"
    if not REPORT_LOCATION.match(loc) or not loc.endswith(".json"):
        return ()
    return (loc, loc.removesuffix(".json") + ".md")


def _kept_reports(store: ArchiveStore) -> list[str]:
    out = []
    for folder in REPORT_FOLDERS:
        out += [k for k in store.keys(folder) if REPORT_LOCATION.match(k)]
    return out
