"""The archive of restore reports and weekly reviews, kept so that an auditor can trust it.

One ``Archive`` over a local directory or an ``s3://bucket/prefix`` (``archive:`` in the
config). Layout, the same in both::

    restores/<UTC stamp>-<label>-<random>.json and .md    a restore's report
    reviews/<UTC stamp>-review-<random>.json and .md      a signed-off review
    running/<same name>.json                              a restore under way
    audit.log (+ audit.head) locally, audit/<seq>.json on S3   the hash-chained audit log

Every report is created under a name no other has (a random part besides the second),
exclusively: a name that exists is never overwritten. A restore writes a ``running``
record when it starts (its process: host, pid, the process's start time from /proc, so
a reused pid is not mistaken for it); ``complete`` writes the final report under the same
name, appends the audit entry and removes the record. A record whose process is gone is
completed as ``interrupted`` (with an audit entry) by ``recover_interrupted``, which the
command line and the TUI call before they read or write the archive. A record written on
another host (a Kubernetes Job writing to an S3 archive) cannot be probed: it counts as
interrupted once ``FOREIGN_LIMIT`` (48 hours, or the limit its writer set) has passed
since it started.

Every entry records the process's real OS user (from the passwd database, not from
variables a user can set); a name a person types (a reviewer) is recorded beside it.
Nothing secret is written: callers pass targets as user@host:port/db.

Anything in the archive may have been put there by hand: a file that is no report pgdeck
wrote (not a JSON object, nested past the parser's recursion, bigger than ``MAX_REPORT``)
is left out wherever reports are listed, and recovery skips a record it cannot handle.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.archive_store import ArchiveStore, Exists, digest, open_store
from services.audit import REPORT_LOCATION, AuditCheck, entry_bytes, verify_chain
from services.clock import Clock, system_clock
from services.config import StorageLocation
from services.errors import ArchiveError
from services.jsonable import iso
from services.liveness import os_user, process_identity, why_gone

if TYPE_CHECKING:
    from services.config import Config

KINDS = {"restore": "restores", "review": "reviews", "restore-test": "restore-tests"}
RUNNING = "running"
FOREIGN_LIMIT = timedelta(hours=48)
# The most of one report or running record that is read. pgdeck's own are a few KiB (a
# review with thousands of findings a few MiB): a bigger file is not one pgdeck wrote, and
# reading it whole would let one planted file exhaust the memory of every reader.
MAX_REPORT = 16 << 20
_SAFE = re.compile(r"[^A-Za-z0-9._-]")

ArchiveSpec = Path | StorageLocation
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    """A report begun (status ``running``), to be completed under the same name."""

    kind: str
    name: str
    location: str  # running/<name>.json
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Archived:
    """Where a completed report is: locations in the archive, and as the user sees them."""

    json: str  # restores/<name>.json
    markdown: str
    json_url: str  # a path, or s3://bucket/prefix/restores/<name>.json
    markdown_url: str
    seq: int  # its audit entry
    entry_sha256: str


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    kind: str
    location: str  # of the JSON
    url: str
    name: str
    document: dict[str, Any]

    @property
    def markdown(self) -> str:
        return self.location.removesuffix(".json") + ".md"


@dataclass(frozen=True, slots=True)
class Recovered:
    kind: str
    name: str
    outcome: str  # "interrupted" (completed as such), "logged" (a report without its entry)
    archived: Archived | None


def describe(spec: ArchiveSpec) -> str:
    """The archive as a user recognises it: a path or s3://bucket/prefix."""
    return spec.url if isinstance(spec, StorageLocation) else str(spec)


def open_archive(where: Config | ArchiveSpec | Archive, clock: Clock = system_clock) -> Archive:
    if isinstance(where, Archive):
        return where
    if isinstance(where, Path | StorageLocation):
        return Archive(open_store(where), clock)
    return Archive(open_store(where.archive), clock)


class Archive:
    def __init__(self, store: ArchiveStore, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock

    @property
    def where(self) -> str:
        return self.store.where

    def url(self, location: str) -> str:
        return self.store.url(location)

    def check_writable(self) -> None:
        self.store.check_writable()

    # --- writing ------------------------------------------------------------------------
    def begin(
        self, kind: str, label: str, document: dict[str, Any], *, limit: timedelta = FOREIGN_LIMIT
    ) -> Pending:
        """The ``running`` record, written before the work starts (so an unwritable
        archive refuses the restore before anything is touched)."""
        folder(kind)
        started = self.clock()
        record = {
            "kind": kind,
            "label": label,
            "status": "running",
            "started_at": iso(started),
            "stale_after": iso(started + limit),
            "os_user": os_user(),
            **process_identity(),
            "document": document,
        }
        data = (json.dumps(record, indent=2) + "\n").encode()
        for _ in range(5):
            name = _name(started, label)
            location = f"{RUNNING}/{name}.json"
            try:
                self.store.put_new(location, data)
            except Exists:
                continue
            return Pending(kind, name, location, started)
        raise ArchiveError(f"no free name for a report in {self.where}")

    def complete(
        self,
        pending: Pending | None,
        kind: str,
        label: str,
        document: dict[str, Any],
        markdown: str,
        audit: dict[str, Any],
    ) -> Archived:
        """The final JSON and Markdown, each created exclusively, then the audit entry.
        Any failure raises ``ArchiveError``; what was written of this report is removed
        again (as far as the store allows), so no path is ever returned that does not
        exist, nor a report left that no entry names."""
        base = folder(kind)
        if pending is not None and pending.kind != kind:
            raise ValueError(f"a pending {pending.kind} completed as {kind}")
        body = (json.dumps(document, indent=2) + "\n").encode()
        md = markdown.encode()
        written: list[str] = []
        try:
            for _ in range(5):
                name = pending.name if pending else _name(self.clock(), label)
                json_loc, md_loc = f"{base}/{name}.json", f"{base}/{name}.md"
                try:
                    self.store.put_new(json_loc, body)
                except Exists:
                    if pending is not None:
                        raise ArchiveError(
                            f"{self.url(json_loc)} exists already; nothing was overwritten"
                        ) from None
                    continue
                written.append(json_loc)
                break
            else:
                raise ArchiveError(f"no free name for a report in {self.where}")
            try:
                self.store.put_new(md_loc, md)
            except Exists:
                raise ArchiveError(
                    f"{self.url(md_loc)} exists already; nothing was overwritten"
                ) from None
            written.append(md_loc)
            seq, line = self._append(
                {"action": kind, **audit},
                {"report": (json_loc, digest(body)), "markdown": (md_loc, digest(md))},
            )
        except BaseException:
            for loc in written:
                # An Object Lock bucket keeps it; `audit verify` will name it.
                with contextlib.suppress(ArchiveError):
                    self.store.delete(loc)
            raise
        if pending is not None:
            # If this fails, recovery finds the final report and clears the record later.
            with contextlib.suppress(ArchiveError):
                self.store.delete(pending.location)
        return Archived(json_loc, md_loc, self.url(json_loc), self.url(md_loc), seq, digest(line))

    def note(self, fields: dict[str, Any]) -> int:
        """An audit entry that records an act with no report of its own (a staging
        cluster created or deleted): its sequence number."""
        seq, _ = self._append(fields, {})
        return seq

    def _append(
        self, fields: dict[str, Any], reports: dict[str, tuple[str, str]]
    ) -> tuple[int, bytes]:
        when, user, host = iso(self.clock()), os_user(), socket.gethostname()
        return self.store.append_audit(
            lambda seq, prev: entry_bytes(
                seq, prev, when=when, os_user=user, host=host, fields=fields, reports=reports
            )
        )

    # --- reports whose process is gone -------------------------------------------------------
    def recover_interrupted(
        self, clock: Clock | None = None, *, quiet: bool = False
    ) -> list[Recovered]:
        """``running`` records whose process is gone become ``interrupted`` reports with
        an audit entry. A record whose final report exists (its process ended between
        the two) is cleared, its report logged if no entry names it. A record that cannot
        be read, or that fails in a way no ``ArchiveError`` names, is skipped with a
        warning; an ``ArchiveError`` (the archive refuses a write) is raised, or with
        ``quiet`` logged and the next record tried."""
        now = (clock or self.clock)()
        out: list[Recovered] = []
        logged: list[set[str]] = []  # the audit log's reports, read once when first needed
        for location in self.store.keys(RUNNING):
            if not location.endswith(".json"):
                continue
            record = _json(self._read_quietly(location))
            kind = record.get("kind") if record else None
            if record is None or not isinstance(kind, str) or kind not in KINDS:
                continue  # not a record pgdeck wrote (or unreadable now): nothing to complete
            try:
                done = self._recover(location, record, now, logged)
            except ArchiveError as exc:
                if not quiet:
                    raise
                _log.warning("running record %s not completed: %s", self.url(location), exc)
                continue
            except Exception as exc:
                # A field no pgdeck writes (a pid past any int's range, a document nested
                # too deep to write back): this record stays, the others are recovered.
                _log.warning("running record %s skipped: %r", self.url(location), exc)
                continue
            if done is not None:
                out.append(done)
        return out

    def _recover(
        self, location: str, record: dict[str, Any], now: datetime, logged: list[set[str]]
    ) -> Recovered | None:
        gone = why_gone(record, now)
        if gone is None:
            return None
        kind, name = record["kind"], location.removeprefix(f"{RUNNING}/").removesuffix(".json")
        json_loc = f"{folder(kind)}/{name}.json"
        final = self.store.get(json_loc)
        if final is not None:
            if not logged:
                logged.append(self._logged())
            done = None
            if json_loc not in logged[0]:
                done = self._log_found(kind, json_loc, final)
            self.store.delete(location)
            return None if done is None else Recovered(kind, name, "logged", done)
        done = self._complete_interrupted(record, name, gone, now)  # clears the record
        return None if done is None else Recovered(kind, name, "interrupted", done)

    def _complete_interrupted(
        self, record: dict[str, Any], name: str, reason: str, now: datetime
    ) -> Archived | None:
        kind = record["kind"]
        found = record.get("document")
        doc: dict[str, Any] = found if isinstance(found, dict) else {}
        document: dict[str, Any] = {
            **doc,
            "status": "interrupted",
            "error": doc.get("error") or reason,
            "interrupted": {"found_at": iso(now), "reason": reason},
        }
        if "result" in doc:  # a restore test's verdict: it has none
            document["result"] = "interrupted"
            document["reasons"] = [f"interrupted: {reason}"]
        pending = Pending(kind, name, f"{RUNNING}/{name}.json", now)
        audit: dict[str, Any] = {
            "outcome": "interrupted",
            **{k: doc[k] for k in ("backup", "target", "target_name") if k in doc},
            "started_at": record.get("started_at"),
            "process": {k: record.get(k) for k in ("host", "pid")},
            "found_by": "recovery",
        }
        try:
            return self.complete(
                pending,
                kind,
                str(record.get("label", kind)),
                document,
                _interrupted_markdown(record, document, reason, now),
                audit,
            )
        except ArchiveError:
            if self.store.get(f"{folder(kind)}/{name}.json") is not None:
                return None  # another pgdeck recovered it at the same moment
            raise

    def _log_found(self, kind: str, json_loc: str, final: bytes) -> Archived:
        doc = _json(final) or {}
        md_loc = json_loc.removesuffix(".json") + ".md"
        md = self.store.get(md_loc)
        reports = {"report": (json_loc, digest(final))}
        if md is not None:
            reports["markdown"] = (md_loc, digest(md))
        fields: dict[str, Any] = {
            "action": kind,
            "outcome": doc.get("status"),
            **{k: doc[k] for k in ("backup", "target", "target_name") if k in doc},
            "found_by": "recovery",
        }
        seq, line = self._append(fields, reports)
        return Archived(json_loc, md_loc, self.url(json_loc), self.url(md_loc), seq, digest(line))

    def _logged(self) -> set[str]:
        out = set()
        for _, raw in self.store.audit_entries():
            entry = _json(raw)
            if entry and isinstance(entry.get("report"), str):
                out.add(entry["report"])
        return out

    # --- reading ---------------------------------------------------------------------------
    def list(self, kind: str) -> list[ArchivedItem]:
        """The reports of one kind, newest first; one that cannot be read is left out."""
        keys = [k for k in self.store.keys(folder(kind)) if k.endswith(".json")]
        keys.sort(reverse=True)
        with cf.ThreadPoolExecutor(8 if len(keys) > 1 else 1) as pool:
            bodies = list(pool.map(self._read_quietly, keys))
        out = []
        for key, body in zip(keys, bodies, strict=True):
            doc = _json(body)
            if doc is not None:
                name = key.rsplit("/", 1)[-1].removesuffix(".json")
                out.append(ArchivedItem(kind, key, self.url(key), name, doc))
        return out

    def _read_quietly(self, location: str) -> bytes | None:
        """A report's bytes, None when it cannot be read; past ``MAX_REPORT`` only as much
        as tells ``_json`` it is too big."""
        try:
            return self.store.get(location, MAX_REPORT + 1)
        except ArchiveError as exc:
            _log.warning("%s", exc)
            return None

    def read(self, location: str) -> bytes:
        if not _is_report(location):
            raise ArchiveError(f"{location!r} is not a report of this archive")
        data = self.store.get(location)
        if data is None:
            raise ArchiveError(f"{self.url(location)} is not in the archive")
        return data

    def read_json(self, location: str) -> dict[str, Any]:
        doc = _json(self.read(location))
        if doc is None:
            raise ArchiveError(f"{self.url(location)} is not a JSON report")
        return doc

    def verify(self) -> AuditCheck:
        return verify_chain(self.store)


def recover_quietly(archive: Archive) -> list[Recovered]:
    """``recover_interrupted`` where failing to write must not stop a read (an auditor
    with read-only access opening reports): the failure is logged, the read goes on."""
    try:
        return archive.recover_interrupted(quiet=True)
    except Exception as exc:  # whatever one record does, the read goes on
        _log.warning("interrupted reports not completed: %s", exc)
        return []


def verify_audit(archive: Archive) -> AuditCheck:
    return archive.verify()


def folder(kind: str) -> str:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown report kind {kind!r}") from None


# --- helpers --------------------------------------------------------------------------------
def _name(when: datetime, label: str) -> str:
    safe = _SAFE.sub("_", label).strip("._-")[:80] or "report"
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{safe}-{secrets.token_hex(4)}"


def _is_report(location: str) -> bool:
    return bool(REPORT_LOCATION.match(location))


def _json(data: bytes | None) -> dict[str, Any] | None:
    """A JSON object, or None for anything else: missing, too big, not UTF-8, not JSON,
    nested deeper than the parser recurses (``[`` * 100000), or not an object."""
    if data is None or len(data) > MAX_REPORT:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError, MemoryError):
        return None
    return obj if isinstance(obj, dict) else None


def _interrupted_markdown(
    record: dict[str, Any], document: dict[str, Any], reason: str, now: datetime
) -> str:
    kind = str(record.get("kind", "report")).replace("-", " ").capitalize()
    lines = [
        f"# {kind} interrupted: {record.get('label', '')}",
        "",
        f"- Started: {record.get('started_at')} by {record.get('os_user')} on "
        f"{record.get('host')} (process {record.get('pid')})",
        f"- Found interrupted: {iso(now)}: {reason}",
    ]
    for key, label in (("backup", "Backup"), ("target", "Target"), ("target_name", "Target name")):
        if document.get(key):
            lines.append(f"- {label}: `{document[key]}`")
    lines += [
        "",
        "The process ended before it could complete its report: what it did after it "
        "started is not known. Check the target before relying on it.",
    ]
    return "\n".join(lines) + "\n"
