"""The catalog's local cache: every backup object seen, in SQLite.

It lets the catalog answer at once on start and refresh behind, and tells the
incremental refresh where each uid's listing left off (keys sort by time under a
uid). SQLite (stdlib) over a JSON file: a summary of 500,000 objects is one indexed
query, and a refresh writes only what is new, in one transaction.
"""

from __future__ import annotations

import array
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.operator import parse_backup_key
from services.storage import StoredObject

SCHEMA_VERSION = "3"
RECENT_KEPT = 168  # newest objects per (cluster, uid) kept in the summary: a week hourly
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    location TEXT NOT NULL, rel TEXT NOT NULL, cluster TEXT NOT NULL, uid TEXT NOT NULL,
    epoch INTEGER NOT NULL, size INTEGER NOT NULL, storage_class TEXT, etag TEXT,
    PRIMARY KEY (location, rel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_cluster ON objects (location, cluster, epoch);
CREATE TABLE IF NOT EXISTS summary (
    location TEXT NOT NULL, cluster TEXT NOT NULL, uid TEXT NOT NULL, count INTEGER NOT NULL,
    rel TEXT NOT NULL, epoch INTEGER NOT NULL, size INTEGER NOT NULL,
    recent BLOB NOT NULL,  -- int64 epoch, size, epoch, size ... of the newest, oldest first
    PRIMARY KEY (location, cluster, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listings (
    location TEXT NOT NULL, cluster TEXT NOT NULL, full_at REAL NOT NULL, refreshed_at REAL NOT NULL,
    PRIMARY KEY (location, cluster)
);
CREATE TABLE IF NOT EXISTS heads (
    location TEXT NOT NULL, rel TEXT NOT NULL, sse TEXT NOT NULL, PRIMARY KEY (location, rel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kube (
    context TEXT PRIMARY KEY, snapshot TEXT NOT NULL, taken_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS views (
    name TEXT PRIMARY KEY, key TEXT NOT NULL, payload TEXT NOT NULL, written_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class CachedObject:
    location: str
    rel: str
    cluster: str
    uid: str
    epoch: int
    size: int
    storage_class: str | None
    etag: str | None


class BackupCache:
    """A thread-safe handle on the cache file (``:memory:`` works for tests)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = self._open(path)

    def _open(self, path: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            row = None
            with contextlib.suppress(sqlite3.OperationalError):
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and row[0] != SCHEMA_VERSION:
                db.executescript(
                    "DROP TABLE IF EXISTS objects; DROP TABLE IF EXISTS listings;"
                    "DROP TABLE IF EXISTS summary;"
                    "DROP TABLE IF EXISTS heads; DROP TABLE IF EXISTS kube; DROP TABLE IF EXISTS meta;"
                )
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError:
            # A cache is disposable: a corrupt file is replaced, never fatal.
            db.close()
            if isinstance(path, Path):
                path.unlink(missing_ok=True)
            return self._open(path)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- listings ---------------------------------------------------------------------
    def listing_times(self, location: str) -> dict[str, tuple[float, float]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT cluster, full_at, refreshed_at FROM listings WHERE location=?", (location,)
            ).fetchall()
        return {c: (f, r) for c, f, r in rows}

    def last_keys(self, location: str, not_after: int | None = None) -> dict[str, dict[str, str]]:
        """cluster -> uid -> newest relative key known (with ``not_after``, the newest whose
        epoch is not after it; ``<cluster>/<uid>/`` when there is none)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cluster, uid, rel, epoch FROM summary WHERE location=?", (location,)
            ).fetchall()
            out: dict[str, dict[str, str]] = {}
            for cluster, uid, rel, epoch in rows:
                if not_after is not None and epoch > not_after:  # rare: a future-dated key
                    lo, hi = f"{cluster}/{uid}/", f"{cluster}/{uid}0"
                    row = self._db.execute(
                        "SELECT max(rel) FROM objects WHERE location=? AND rel>=? AND rel<? "
                        "AND epoch<=?",
                        (location, lo, hi, not_after),
                    ).fetchone()
                    rel = row[0] if row and row[0] else lo
                out.setdefault(cluster, {})[uid] = rel
        return out

    def store_listing(
        self,
        location: str,
        results: dict[str, list[StoredObject]],
        full: set[str],
        gone: Iterable[str] = (),
    ) -> None:
        """Write one refresh: ``full`` clusters are replaced, the others appended to."""
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                for cluster in gone:
                    db.execute(
                        "DELETE FROM objects WHERE location=? AND cluster=?", (location, cluster)
                    )
                    db.execute(
                        "DELETE FROM summary WHERE location=? AND cluster=?", (location, cluster)
                    )
                    db.execute(
                        "DELETE FROM listings WHERE location=? AND cluster=?", (location, cluster)
                    )
                for cluster, objs in results.items():
                    if cluster in full:
                        db.execute(
                            "DELETE FROM objects WHERE location=? AND cluster=?",
                            (location, cluster),
                        )
                    rows = []
                    for o in objs:
                        k = parse_backup_key(o.relative_key)
                        if k is None:
                            continue
                        rows.append(
                            (
                                location,
                                o.relative_key,
                                k.cluster,
                                k.uid,
                                k.epoch,
                                o.size,
                                o.storage_class,
                                o.etag,
                            )
                        )
                    db.executemany("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?)", rows)
                    if cluster in full:
                        db.execute(
                            "INSERT OR REPLACE INTO listings VALUES (?,?,?,?)",
                            (location, cluster, now, now),
                        )
                    else:
                        db.execute(
                            "UPDATE listings SET refreshed_at=? WHERE location=? AND cluster=?",
                            (now, location, cluster),
                        )
                    if objs or cluster in full:
                        self._summarize(location, cluster)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _summarize(self, location: str, cluster: str) -> None:
        """Keep the per-uid summary of ``cluster`` true to its objects (inside a write).

        The catalog opens from these rows alone: no scan of every object at start. Keys
        sort by time under a uid (``<cluster>/<uid>/logical_backups/<epoch>``), so each
        uid's newest objects are a range of the primary key read backwards.
        """
        db = self._db
        db.execute("DELETE FROM summary WHERE location=? AND cluster=?", (location, cluster))
        uids = db.execute(
            "SELECT uid, count(*) FROM objects WHERE location=? AND cluster=? GROUP BY uid",
            (location, cluster),
        ).fetchall()
        for uid, count in uids:
            lo, hi = f"{cluster}/{uid}/", f"{cluster}/{uid}0"  # "0" sorts right after "/"
            recent = db.execute(
                "SELECT rel, epoch, size FROM objects WHERE location=? AND rel>=? AND rel<? "
                "ORDER BY rel DESC LIMIT ?",
                (location, lo, hi, RECENT_KEPT),
            ).fetchall()
            if not recent:
                continue
            rel, epoch, size = recent[0]
            flat = array.array("q", [v for _, e, n in reversed(recent) for v in (e, n)])
            db.execute(
                "INSERT INTO summary VALUES (?,?,?,?,?,?,?,?)",
                (location, cluster, uid, count, rel, epoch, size, flat.tobytes()),
            )

    # --- reading ----------------------------------------------------------------------
    def objects(self, location: str, cluster: str) -> list[CachedObject]:
        with self._lock:
            rows = self._db.execute(
                "SELECT location, rel, cluster, uid, epoch, size, storage_class, etag FROM objects "
                "WHERE location=? AND cluster=? ORDER BY epoch DESC, rel DESC",
                (location, cluster),
            ).fetchall()
        return [CachedObject(*r) for r in rows]

    def summaries(self, location: str) -> list[tuple[str, str, int, str, int, int]]:
        """(cluster, uid, count, newest rel, newest epoch, newest size) per cluster and uid."""
        with self._lock:
            return self._db.execute(
                "SELECT cluster, uid, count, rel, epoch, size FROM summary WHERE location=?",
                (location,),
            ).fetchall()

    def recent(
        self, location: str, per_cluster: int
    ) -> dict[tuple[str, str], tuple[tuple[int, ...], tuple[int, ...]]]:
        """(cluster, uid) -> (epochs, sizes) of its newest objects (up to RECENT_KEPT),
        oldest first: two tuples sliced from the packed array, no object per backup."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cluster, uid, recent FROM summary WHERE location=?", (location,)
            ).fetchall()
        out = {}
        for cluster, uid, blob in rows:
            flat = array.array("q")
            flat.frombytes(blob[-16 * per_cluster :])  # the newest per_cluster pairs
            out[(cluster, uid)] = (tuple(flat[::2]), tuple(flat[1::2]))
        return out

    def clusters(self, location: str) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._db.execute(
                    "SELECT cluster FROM listings WHERE location=? ORDER BY cluster", (location,)
                )
            ]

    # --- HEAD results (objects never change, so an answer is good forever) ------------
    def sse(self, location: str, rels: Iterable[str]) -> dict[str, str]:
        rels = list(rels)
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(rels), 500):
                chunk = rels[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for rel, sse in self._db.execute(
                    f"SELECT rel, sse FROM heads WHERE location=? AND rel IN ({marks})",
                    (location, *chunk),
                ):
                    out[rel] = sse
        return out

    def store_sse(self, location: str, values: dict[str, str]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO heads VALUES (?,?,?)",
                [(location, rel, sse) for rel, sse in values.items()],
            )

    def unknown_sse(self, locations: Sequence[str], limit: int) -> list[tuple[str, str]]:
        """(location, rel) of up to ``limit`` listed objects no HEAD has answered yet, newest
        first (by the key's epoch)."""
        if not locations or limit <= 0:
            return []
        marks = ",".join("?" * len(locations))
        return self._read(
            "SELECT o.location, o.rel FROM objects o LEFT JOIN heads h "
            "ON h.location=o.location AND h.rel=o.rel "
            f"WHERE o.location IN ({marks}) AND h.rel IS NULL "
            "ORDER BY o.epoch DESC, o.rel DESC LIMIT ?",
            (*locations, limit),
        )

    def count_unknown_sse(self, locations: Sequence[str]) -> int:
        """How many listed objects of ``locations`` no HEAD has answered yet."""
        if not locations:
            return 0
        marks = ",".join("?" * len(locations))
        rows = self._read(
            "SELECT count(*) FROM objects o LEFT JOIN heads h "
            "ON h.location=o.location AND h.rel=o.rel "
            f"WHERE o.location IN ({marks}) AND h.rel IS NULL",
            tuple(locations),
        )
        return int(rows[0][0])

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """A long read (a scan of every object: about a second at 500,000) on a connection
        of its own, so it holds neither the shared lock nor, under WAL, any writer up. An
        in-memory cache has no second connection: it is read under the lock."""
        if isinstance(self.path, Path):
            try:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    return db.execute(sql, params).fetchall()
                finally:
                    db.close()
            except sqlite3.OperationalError:
                pass  # no second connection here (a read-only directory): the shared one
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- Kubernetes snapshots ---------------------------------------------------------
    def store_kube(self, context: str, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO kube VALUES (?,?,?)",
                (context, json.dumps(snapshot, default=str), time.time()),
            )

    def kube(self) -> dict[str, tuple[dict[str, Any], float]]:
        with self._lock:
            rows = self._db.execute("SELECT context, snapshot, taken_at FROM kube").fetchall()
        return {c: (json.loads(s), t) for c, s, t in rows}

    # --- views: what a screen last showed, to show again at start ---------------------
    # The table came after schema 3 and is created beside the others (IF NOT EXISTS), so
    # a cache written before it keeps its objects and merely has no view to show yet.
    def store_view(self, name: str, key: str, payload: str) -> None:
        """Keep ``payload`` (opaque text) as view ``name``, valid for ``key`` only (what
        the view was built from: a configuration's sources, the payload's format). A
        cache that cannot take it (read-only, full) keeps none: a view is disposable."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.execute(
                "INSERT OR REPLACE INTO views VALUES (?,?,?,?)", (name, key, payload, time.time())
            )

    def view(self, name: str, key: str) -> str | None:
        """The payload last stored as ``name`` for ``key``; None when there is none, it was
        stored for another key, or the cache cannot say (a view is only a head start)."""
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT payload FROM views WHERE name=? AND key=?", (name, key)
                ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None
