"""Data sessions ("lanes") that load a database's COPY blocks side by side (``--jobs N``).

The dump is still read once, in its order, on one thread; the main session still runs
every statement in that order, but two kinds. The rows of a ``COPY ... FROM stdin`` block
go to one of N lane sessions connected to the same database, each in a thread of its own,
so the server parses several tables' rows at once; and the post-data's index builds and
foreign keys run on the lanes too (below). ``--jobs N`` means N lanes,
that is at most N sessions loading table data at once; the main session loads none
(``--jobs 1`` is the serial path, without this module).

How a COPY travels, and why it cannot deadlock:

- When the reader reaches a COPY and a lane is free, the rows stream to that lane through
  a queue bounded in bytes (``queue_limit``). When the queue is full and another lane is
  idle, the rest of the table goes to a spool file that its lane reads after the queue
  (it follows the file as it grows), so the reader moves on to the next tables instead
  of holding the idle lanes back; when its lane has caught up with the file, the rows
  stream by the queue again. With no lane idle (or no room in the spool) the reader waits.
- When every lane is busy the rows go to a spool file (``services.spool``); a lane that
  frees takes the oldest waiting table first (dump order), spooled ones before new ones.
  A lane that takes the table the reader is still spooling loads the file, then the rest
  streams to it. When the spool holds ``spool_limit`` bytes the reader waits until a lane
  frees some or takes its table: every other table's rows are all delivered by then (the
  reader is past them), so each lane finishes and one takes it.
- Before its COPY, a lane runs the settings the main session had at the COPY's place in
  the dump (``services.copy_order.replay``); after it, the loader's own checks
  (``Loader._check_session``) hold on the lane as on the main session.
- Each COPY's tag (the rows the server stored) is added to the restore's counts as it
  ends; the tables loaded are handed to the engine (``take_finished``) to announce.

The post-data's index builds and foreign keys run on the lanes too
(``services.postdata_order``): a statement waits for every COPY into its tables and every
earlier statement on them, and then runs on whichever lane is free, so a table's indexes
are built while other tables are still loading; of those ready, a COPY goes first, then the
statement on the most table data, but none passes an older one across a setting. A COPY
after them, and any statement on the main session but the settings, ``setval`` and the
large-object calls, waits for all of them to end first.

A lane that fails fails the restore: its error (``LaneFailed``, naming the COPY) is raised
in the reader at its next call, every other lane's COPY in flight is ended with CopyFail
(rolled back) and ``on_halt`` wakes a reader waiting on the download. ``cancel()`` (any
thread) does the same for a cancel; ``close()`` ends whatever is still in flight the same
way, closes the lanes' sessions and removes the spool.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.copy_order import LoadAlone, SessionLog, SessionStatement, replay
from services.errors import PgdeckError
from services.loader import Cancelled, Loader, LoadFailed, ServerMessage
from services.postdata_order import PostStatement, TableOrder, roots_of
from services.restore_events import SessionProgress
from services.spool import Spool, SpoolFile
from services.sqllex import size_text
from services.target import ResolvedTarget

QUEUE_LIMIT = 4 << 20  # bytes queued for one streaming lane
_STREAM, _SPOOL = "stream", "spool"
_WAIT = 0.5  # seconds between checks while waiting (every wait is also notified)


class LaneFailed(LoadFailed):
    """A lane's COPY was refused (or its session failed); ``statement``: the COPY."""

    def __init__(self, message: str, statement: tuple[int, str], sqlstate: str | None) -> None:
        super().__init__(message, sqlstate=sqlstate)
        self.statement = statement


@dataclass(eq=False)
class _Job:
    database: str  # the target's database the lane connects to
    key: tuple[str, str]  # (the dump's database, schema.table): the restore's counts
    sql: bytes
    encoding: str
    line: int
    log: list[SessionStatement]
    mark: int  # the main session's settings at its place in the dump: log[:mark]
    alone: bool
    label: str = ""  # a post-data statement's (services.postdata_order); "" for a COPY
    after: list[_Job] = field(default_factory=list)  # what must end before it may start
    roots: frozenset[tuple[str, str]] = frozenset()  # its tables' trees' roots
    finished: bool = False  # its lane has run all of it
    mode: str = _STREAM
    spool: SpoolFile | None = None
    read: int = 0  # bytes of ``spool`` its lane has sent (a file it follows as it grows)
    running: bool = False  # a lane has taken it
    spilled: bool = False  # it went to the spool once (counted once in the spool's tables)
    chunks: deque[memoryview | bytes] = field(default_factory=deque)
    queued: int = 0
    received: int = 0  # bytes the reader delivered
    ended: bool = False  # the reader reached its \.
    done: int = 0  # bytes sent to the server


class _Lane:
    def __init__(self, number: int, loader: Loader) -> None:
        self.number = number
        self.loader = loader
        self.job: _Job | None = None
        self.database: str | None = None
        self.log: list[SessionStatement] | None = None
        self.seen = 0
        self.applied: dict[str, bytes] = {}
        self.thread: threading.Thread | None = None
        # What the report says of the session: its COPYs' wall time, the part of it spent
        # waiting for the reader's bytes, what it loaded, and its post-data statements.
        self.copy_seconds = 0.0
        self.copy_waiting_seconds = 0.0
        self.copy_bytes = 0
        self.tables = 0
        self.postdata_seconds = 0.0
        self.postdata_statements = 0

    def facts(self) -> dict[str, Any]:
        return {
            "session": self.number,
            "tables": self.tables,
            "copy_bytes": self.copy_bytes,
            "copy_seconds": round(self.copy_seconds, 3),
            "copy_waiting_seconds": round(self.copy_waiting_seconds, 3),
            "postdata_statements": self.postdata_statements,
            "postdata_seconds": round(self.postdata_seconds, 3),
        }


class LanePool:
    def __init__(
        self,
        target: ResolvedTarget,
        *,
        jobs: int,
        spool: Spool,
        copied: dict[tuple[str, str], int],
        on_message: Callable[[ServerMessage], None] | None = None,
        on_halt: Callable[[], None] | None = None,
        queue_limit: int = QUEUE_LIMIT,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.jobs = jobs
        self._settings = settings  # the restore's session settings, as the main session's
        self.spool = spool
        self.queue_limit = queue_limit
        self.log = SessionLog()
        self.alone = LoadAlone()
        self.failure: LaneFailed | None = None
        self.busiest = 0  # the most lanes loading at once
        self._target = target
        self._copied = copied
        self._on_message = on_message
        self._on_halt = on_halt or (lambda: None)
        self._cond = threading.Condition()
        self._lanes: list[_Lane] = []
        self._pending: deque[_Job] = deque()
        self._current: _Job | None = None  # the COPY the reader is delivering
        self._cancelled = False
        self._closing = False
        self._finished: list[tuple[str, str, int]] = []
        self._order: TableOrder[_Job] = TableOrder()
        self._loaded: dict[tuple[str, str], int] = {}  # COPY bytes stored, by tree root
        self._run_started: float | None = None  # post-data statements are in flight since
        self.postdata_statements = 0  # post-data statements run on the lanes
        self.postdata_runs = 0  # runs of them, each ended by a barrier
        self.postdata_seconds = 0.0  # the runs' wall time, each from its first statement to its end

    # --- the reader's side -----------------------------------------------------------------
    def new_database(self) -> None:
        """A ``\\connect``: every lane has finished (the caller waited); settings and
        table facts start again."""
        with self._cond:
            self.log.reset()
            self.alone = LoadAlone()
            self._order = TableOrder()
            self._loaded = {}

    def begin(
        self,
        database: str,
        key: tuple[str, str],
        table: tuple[str, str],
        sql: bytes,
        encoding: str,
        line: int,
    ) -> None:
        """A COPY of ``table`` (schema, name) begins: its rows follow (``write``)."""
        alone = self.alone.alone(*table)
        if alone or self._run_started is not None:
            self.wait_idle()
        job = _Job(
            database, key, sql, encoding, line, self.log.entries, len(self.log.entries), alone
        )
        with self._cond:
            self._check()
            self._start_lanes()
            job.roots = roots_of((table,), self.alone.roots)
            job.after = self._order.load(job, job.roots)
            free = sum(1 for lane in self._lanes if lane.job is None) - len(self._pending)
            if free <= 0:
                job.mode = _SPOOL  # its file is made with its first bytes
            self._pending.append(job)
            self._current = job
            self._cond.notify_all()

    def statement(
        self, database: str, post: PostStatement, sql: bytes, encoding: str, line: int
    ) -> None:
        """A post-data statement: it runs on the first free lane once every COPY into its
        tables and every earlier statement on them has ended."""
        key = ("", post.label)
        job = _Job(
            database, key, sql, encoding, line, self.log.entries, len(self.log.entries), False
        )
        job.label = post.label
        job.ended = True
        with self._cond:
            self._check()
            if self._run_started is None:
                self._run_started = time.monotonic()
                self.postdata_runs += 1
            self._start_lanes()
            job.roots = roots_of(post.tables, self.alone.roots)
            job.after = self._order.statement(job, job.roots)
            self._pending.append(job)
            self.postdata_statements += 1
            self._cond.notify_all()

    def write(self, data: memoryview | bytes) -> None:
        size = len(data)
        with self._cond:
            job = self._current
            assert job is not None
            while True:
                self._check()
                room = self.spool.total + size <= self.spool.limit
                if job.mode == _STREAM:
                    if job.queued < self.queue_limit:
                        job.chunks.append(data)
                        job.queued += size
                        break
                    # Only a table a lane has taken: one still waiting for a lane would
                    # be loaded file first, queue after.
                    if room and job.running and job.spool is None and self._idle_lane():
                        job.mode = _SPOOL  # its lane reads the file after the queue
                elif self._caught_up(job):
                    # Its lane has sent all of the file: the rows stream again.
                    assert job.spool is not None
                    self.spool.release(job.spool)
                    job.spool, job.read, job.mode = None, 0, _STREAM
                    continue
                if job.mode == _SPOOL and room:
                    if job.spool is None:
                        job.spool = self.spool.create(job.key[1], count=not job.spilled)
                        job.spilled = True
                    self.spool.write(job.spool, data)
                    break
                self._cond.wait(_WAIT)
            job.received += size
            self._cond.notify_all()

    def _idle_lane(self) -> bool:
        """Whether a lane has nothing to do (under the lock)."""
        return any(lane.job is None for lane in self._lanes) and not self._pending_others()

    def _pending_others(self) -> bool:
        return any(job is not self._current for job in self._pending)

    @staticmethod
    def _caught_up(job: _Job) -> bool:
        """A running job whose lane has sent every byte delivered so far (under the lock)."""
        return (
            job.running and job.spool is not None and not job.chunks and job.read == job.spool.size
        )

    def end(self) -> None:
        with self._cond:
            job = self._current
            self._current = None
            if job is not None:
                job.ended = True
            self._cond.notify_all()
            self._check()
        if job is not None and job.alone:
            self.wait_idle()

    def wait_idle(self) -> None:
        """The barrier: returns once no COPY or post-data statement is waiting or running."""
        with self._cond:
            started, self._run_started = self._run_started, None
            while (self._pending or any(lane.job for lane in self._lanes)) and not self._stopped:
                self._cond.wait(_WAIT)
            if started is not None:
                self.postdata_seconds += time.monotonic() - started
            self._check()
            self._order = TableOrder()  # everything registered has ended

    def take_finished(self) -> list[tuple[str, str, int]]:
        """The tables loaded since the last call: (the dump's database, table, rows)."""
        with self._cond:
            out, self._finished = self._finished, []
        return out

    def progress(self) -> tuple[SessionProgress, ...]:
        with self._cond:
            return tuple(
                SessionProgress(
                    lane.number,
                    job.key[1],
                    job.done,
                    None if job.label else job.received if job.ended else None,
                )
                for lane in self._lanes
                if (job := lane.job) is not None
            )

    def summary(self) -> str:
        """The restore's closing line on how the load went."""
        spool = self.spool
        spooled = (
            f"{spool.tables} table{'s' if spool.tables != 1 else ''} went through the spool "
            f"in {spool.where} (at most {size_text(spool.largest)} at once)"
            if spool.tables
            else "none went through the spool"
        )
        post = (
            f"; {self.postdata_statements} post-data statements (indexes, keys) ran on them"
            if self.postdata_statements
            else ""
        )
        return (
            f"table data loaded on up to {self.busiest} of {self.jobs} data sessions; "
            f"{spooled}{post}"
        )

    def facts(self) -> dict[str, Any]:
        """The report's account of the data sessions (``parallel`` in its JSON)."""
        with self._cond:
            return {
                "jobs": self.jobs,
                "busiest": self.busiest,
                "largest_spool_bytes": self.spool.largest,
                "spooled_tables": self.spool.tables,
                "postdata_runs": self.postdata_runs,
                "postdata_statements": self.postdata_statements,
                "postdata_seconds": round(self.postdata_seconds, 3),
                "sessions": [lane.facts() for lane in self._lanes],
            }

    # --- stopping ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """From any thread: every lane's COPY is rolled back, the reader stops."""
        with self._cond:
            self._cancelled = True
            self._halt()

    def close(self) -> None:
        """End what is in flight (rolled back), close the lanes' sessions, drop the spool."""
        with self._cond:
            self._closing = True
            self._halt()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout=60)
        for lane in self._lanes:
            lane.loader.close()
        with self._cond:
            self.spool.close()

    @property
    def _stopped(self) -> bool:
        return self._closing or self._cancelled or self.failure is not None

    def _halt(self) -> None:
        for lane in self._lanes:
            lane.loader.cancel()
        self._cond.notify_all()

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self._cancelled or self._closing:
            raise Cancelled()

    # --- the lanes' side ---------------------------------------------------------------------
    def _start_lanes(self) -> None:
        while len(self._lanes) < self.jobs:
            loader = Loader(self._target, on_message=self._on_message, settings=self._settings)
            lane = _Lane(len(self._lanes) + 1, loader)
            lane.thread = threading.Thread(
                target=self._run, args=(lane,), name=f"copy-lane-{lane.number}", daemon=True
            )
            self._lanes.append(lane)
            lane.thread.start()

    def _run(self, lane: _Lane) -> None:
        while True:
            with self._cond:
                while not self._stopped and (job := self._next()) is None:
                    self._cond.wait(_WAIT)
                if self._stopped or job is None:
                    return
                lane.job = job
                job.running = True
                spooled = 0
                if job.mode == _SPOOL:
                    spooled = job.spool.size if job.spool is not None else 0
                    if not job.ended:
                        job.mode = _STREAM  # the reader's next bytes come by the queue
                loading = sum(1 for x in self._lanes if x.job and not x.job.label)
                self.busiest = max(self.busiest, loading)
                self._cond.notify_all()
            started = time.monotonic()
            try:
                rows = self._load(lane, job, spooled)
            except Exception as exc:  # the restore stops on any lane's failure
                lane.loader.abort_copy()
                with self._cond:
                    self._failed(job, exc)
                    lane.job = None
                    if job.spool is not None:
                        self.spool.release(job.spool)
                    self._cond.notify_all()
                return
            seconds = time.monotonic() - started
            with self._cond:
                if job.label:
                    lane.postdata_seconds += seconds
                    lane.postdata_statements += 1
                else:
                    self._copied[job.key] = self._copied.get(job.key, 0) + rows
                    for root in job.roots:
                        self._loaded[root] = self._loaded.get(root, 0) + job.done
                    self._finished.append((*job.key, rows))
                    lane.copy_seconds += seconds
                    lane.copy_bytes += job.done
                    lane.tables += 1
                job.finished = True
                lane.job = None
                self._cond.notify_all()

    def _next(self) -> _Job | None:
        """The next job for a free lane, taken off the queue (any lane may take any job):
        of those waiting whose predecessors have all ended, a COPY in the dump's order,
        else the post-data statement on the most table data, as pg_restore takes the
        largest first, so the longest chain (the biggest table's indexes, then its keys)
        starts earliest; on a tie, the oldest.

        A job may pass older ones still waiting only when the main session's settings are
        the same at all of them (no SET between): a lane only ever moves forward in the
        settings (``_load`` replays what came after its last job), so each lane's jobs
        are taken in the settings' order, and the oldest job can always be taken once
        what it waits for has ended."""
        if not self._pending:
            return None
        oldest = self._pending[0]
        best: int | None = None
        weight = -1
        for i, job in enumerate(self._pending):
            if job.log is not oldest.log or job.mark != oldest.mark:
                break
            if not all(before.finished for before in job.after):
                continue
            if not job.label:  # a COPY
                if best is None:
                    best = i
                break
            size = sum(self._loaded.get(root, 0) for root in job.roots)
            if size > weight:
                best, weight = i, size
        if best is None:
            return None
        job = self._pending[best]
        del self._pending[best]
        job.after = []  # nothing to keep alive
        return job

    def _load(self, lane: _Lane, job: _Job, spooled: int) -> int:
        loader = lane.loader
        if lane.database != job.database:
            loader.use(job.database)
            lane.database, lane.log = job.database, None
        if lane.log is not job.log:
            lane.log, lane.seen, lane.applied = job.log, 0, {}
        for s in replay(job.log[lane.seen : job.mark], lane.applied):
            loader.execute(s.sql, encoding=s.encoding, encoding_after=s.encoding_after)
            lane.applied[s.name] = s.sql
        lane.seen = job.mark
        if job.label:
            loader.execute(job.sql, encoding=job.encoding)
            return 0
        loader.copy_begin(job.sql, job.encoding)
        if spooled and job.spool is not None:
            # What was spooled before the lane took it: the file, then the queue. (No
            # spill can begin meanwhile: the reader spills only a job without a file.)
            offset = 0
            while offset < spooled:
                block = job.spool.read(offset, spooled)
                loader.copy_write(block)
                offset += len(block)
                job.done += len(block)
            with self._cond:
                self.spool.release(job.spool)
                job.spool = None
                self._cond.notify_all()
        # Then the queue, and what spilled to a file when the queue was full: a file only
        # ever receives bytes after every byte queued before it (the reader switches to
        # it with the queue full, and back only once the lane has sent all of it), so
        # sending the queue first keeps the rows in order.
        while True:
            items: list[memoryview | bytes] = []
            file: SpoolFile | None = None
            start = stop = 0
            with self._cond:
                if not job.chunks and not self._unread(job) and not job.ended:
                    waited = time.monotonic()
                    while (
                        not job.chunks
                        and not self._unread(job)
                        and not job.ended
                        and not self._stopped
                    ):
                        self._cond.wait(_WAIT)
                    lane.copy_waiting_seconds += time.monotonic() - waited
                if self._stopped:
                    raise Cancelled()
                if job.chunks:
                    items = list(job.chunks)
                    job.chunks.clear()
                    job.queued = 0
                    self._cond.notify_all()
                elif job.spool is not None and job.read < job.spool.size:
                    file, start, stop = job.spool, job.read, job.spool.size
                else:
                    break  # ended, and all of it sent
            if items:
                for item in items:
                    loader.copy_write(item)
                    job.done += len(item)
                continue
            assert file is not None
            block = file.read(start, stop)
            loader.copy_write(block)
            job.done += len(block)
            with self._cond:
                job.read += len(block)
                self._cond.notify_all()
        if job.spool is not None:
            with self._cond:
                self.spool.release(job.spool)
                job.spool = None
                self._cond.notify_all()
        return loader.copy_end()

    @staticmethod
    def _unread(job: _Job) -> bool:
        return job.spool is not None and job.read < job.spool.size

    def _failed(self, job: _Job, exc: Exception) -> None:
        """The first failure stops everything; a lane stopped by it (or by a cancel)
        adds nothing."""
        if self.failure is not None or self._cancelled or self._closing:
            return
        if isinstance(exc, LoadFailed):
            message, sqlstate = exc.message, exc.sqlstate
        elif isinstance(exc, PgdeckError):
            message, sqlstate = exc.message, None
        else:
            message = f"a data session failed unexpectedly ({type(exc).__name__}: {exc})"
            sqlstate = None
        statement = (job.line, job.sql.decode("utf-8", "replace"))
        self.failure = LaneFailed(message, statement, sqlstate)
        self._halt()
        with contextlib.suppress(Exception):
            self._on_halt()
