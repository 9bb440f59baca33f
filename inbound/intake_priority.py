"""SMTP intake before processing, inside one process (embedded ``gateway serve``).

Since issue 18 this gate is only used when processing runs in the worker threads
(``processing_processes = 0``).  By default processing jobs run in child processes
(``gateway.runtime.processing_pool``) at a higher nice value: the kernel then gives
intake the CPU first, across processes, and processing is never held back, so a busy
intake no longer leaves a core idle.  :class:`IntakePriority` still counts the
messages intake answers (``answered``, ``busy``) in both cases.

The in-process worker threads and the SMTP event loop share one GIL.  A running
job makes the event loop wait for the GIL after every socket call (up to the
interpreter's switch interval, 5 ms, each time): during a burst, mail was taken
at a fraction of the speed of a bare aiosmtpd.  So while intake is busy,
processing waits.

"Busy" is a rate: at least ``busy_rate`` messages a second taken over the last
``window``.  That is more than one core can process (a job costs about 15 ms of
CPU), so at such a rate a backlog grows whatever we do, and taking the mail
first is what keeps it safe.  Below it processing runs freely, so a steady trickle
is answered at once.  A rate, not the number of open transactions: remote MTAs
keep transactions open for hundreds of milliseconds while the loop sleeps, and
that must not hold processing back.

On SQLite, processing jobs run one at a time (the "lane"): each holds the one
write lock for its whole pipeline, so others would only sleep in SQLite's busy
handler and add GIL switching; on PostgreSQL they overlap their round trips.
While intake is busy jobs always go one at a time, and each waits up to
``max_wait`` before it starts, and new jobs are not even handed to
the broker (see :class:`ProcessingFeed`).  Processing never starves: during a flood it still
does one job per ``max_wait``, and all of the backlog as soon as the rate drops.
Nothing durable waits here; every job is a database row.  The lane covers the
in-process part of a job (:meth:`IntakePriority.turn`); an analysis running in a
child process (``gateway.pipeline.analysis_pool``) is outside it, so one slow message does not
hold the others' acknowledgements.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway.db import Database

__all__ = ["IntakePriority", "LanedDatabase", "ProcessingFeed", "WriterLane", "writer_lane_for"]

log = logging.getLogger(__name__)

BUSY_RATE = 100.0
"""Messages per second above which intake goes first (about twice what a core processes)."""
WINDOW_SECONDS = 0.2
MAX_WAIT_SECONDS = 1.0
POLL_SECONDS = 0.01


class IntakePriority:
    """How fast intake is taking mail, and the wait worker jobs make because of it."""

    def __init__(self, busy_rate: float = BUSY_RATE, window: float = WINDOW_SECONDS,
                 max_wait: float = MAX_WAIT_SECONDS, one_at_a_time: bool = True) -> None:
        self.one_at_a_time = one_at_a_time
        self.window = window
        self.max_wait = max_wait
        self._busy_count = max(1, round(busy_rate * window))
        self._taken: deque[float] = deque(maxlen=self._busy_count)
        self._answered = 0
        self._lane = threading.Lock()  # one processing job at a time (always, or while busy)
        self._holding = threading.local()

    def taken(self) -> None:
        """Intake answered a message (called on the event loop's thread)."""
        self._taken.append(time.monotonic())
        self._answered += 1

    def answered(self) -> int:
        """How many messages intake answered since start (for tests and diagnostics)."""
        return self._answered

    def busy(self) -> bool:
        """At least ``busy_rate`` messages a second over the last ``window``."""
        taken = self._taken
        if len(taken) < self._busy_count:
            return False
        try:
            oldest = taken[0]
        except IndexError:  # pragma: no cover - emptied meanwhile
            return False
        return time.monotonic() - oldest < self.window

    def held_back(self) -> bool:
        """Wait while intake is busy, at most ``max_wait``; True if it still is."""
        deadline = time.monotonic() + self.max_wait
        while self.busy():
            if time.monotonic() >= deadline:
                return True
            time.sleep(POLL_SECONDS)
        return False

    def wait_turn(self) -> None:
        """Before a processing job: take the lane (kept until :meth:`job_done`), then wait
        while intake is busy."""
        if not (self.one_at_a_time or self.busy()):
            return
        self._lane.acquire()
        self._holding.lane = True
        self.held_back()

    def job_done(self) -> None:
        """The calling worker thread finished (or skipped) the job it waited for."""
        if getattr(self._holding, "lane", False):
            self._holding.lane = False
            self._lane.release()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """The lane for the CPU-bound, in-process part of one processing job (the
        pipeline's transaction; the analysis too when it runs in the thread).  An
        analysis in a child process (``gateway.pipeline.analysis_pool``) runs outside it, so a
        slow message there holds nobody up."""
        self.wait_turn()
        try:
            yield
        finally:
            self.job_done()


class ProcessingFeed:
    """Hands stored spool ids to the in-process worker when intake lets it run.

    Sending a dramatiq message costs the event loop little, but the in-memory
    broker's consumer thread then wakes, decodes and queues every message at once:
    during a burst that was a tenth of intake's CPU, spent on jobs that could not
    run yet anyway.  So intake drops the id here; a feeder thread sends them all
    when intake is not busy, and while it stays busy one every ``max_wait``.
    Ids waiting here are ``received`` rows: a restart's sweep finds them.
    """

    def __init__(self, priority: IntakePriority, send: Callable[[int], None]) -> None:
        self.priority = priority
        self._send = send
        self._pending: deque[int] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="processing-feed", daemon=True)
        self._thread.start()

    def submit(self, spool_id: int) -> None:
        self._pending.append(spool_id)
        self._wake.set()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            while self._pending and not self._stopping:
                count = 1 if self.priority.held_back() else len(self._pending)
                for _ in range(min(count, len(self._pending))):
                    spool_id = self._pending.popleft()
                    try:
                        self._send(spool_id)
                    except Exception:  # noqa: BLE001 - the sweep sends it again
                        log.exception("could not hand spool %s to the worker", spool_id)


class WriterLane:
    """SQLite's one writer, taken in turn by every process of one database file, with
    intake (and every other process: web pages, commands, the pipe) first.

    Why: processing children (``gateway.runtime.processing_pool``) hand the write lock
    to each other as fast as the kernel wakes them, while a writer waiting in SQLite's
    busy handler sleeps 1, 2, 5 … 100 ms between tries and could wait seconds for a
    gap: SMTP's 250 would wait behind the whole backlog.  So every write transaction
    first takes an exclusive ``flock`` on ``<database>.lane``; a ``first`` writer also
    closes ``<database>.intake`` (exclusive) while it waits and writes.  Processing
    children (``first=False``) queue one at a time (``<database>.queue``) and pass that
    gate (shared, released at once) before they wait for the lane, so intake waits for
    the transaction in progress and at most one more.  The kernel drops
    a lock when its holder dies, so a process killed inside a transaction frees it.
    Re-entrant within a thread (a transaction opened inside another must not wait for
    itself).
    """

    def __init__(self, path: Path, *, first: bool) -> None:
        self.path = path
        self.gate = path.with_name(path.name.removesuffix(".lane") + ".intake")
        self.turnstile = path.with_name(path.name.removesuffix(".lane") + ".queue")
        self.first = first
        self.cpu_held = 0.0
        """CPU seconds this process held the lane (what serialises processing) …"""
        self.wall_held = 0.0
        """… and wall-clock seconds (above the CPU: waits for the disk or for a core)."""
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            if depth:
                yield
                return
            with self._taken():
                yield
        finally:
            self._local.depth = depth

    @contextmanager
    def _taken(self) -> Iterator[None]:
        gate = os.open(self.gate, os.O_RDWR | os.O_CREAT, 0o600)
        lane = turn = -1
        try:
            if self.first:
                fcntl.flock(gate, fcntl.LOCK_EX)
            else:  # one child at a time queues, and only while intake does not want it
                turn = os.open(self.turnstile, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(turn, fcntl.LOCK_EX)
                fcntl.flock(gate, fcntl.LOCK_SH)
                fcntl.flock(gate, fcntl.LOCK_UN)
            lane = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(lane, fcntl.LOCK_EX)
            if turn >= 0:
                os.close(turn)
                turn = -1
            taken, since = time.process_time(), time.perf_counter()
            try:
                yield
            finally:
                self.cpu_held += time.process_time() - taken
                self.wall_held += time.perf_counter() - since
        finally:  # closing a descriptor drops its lock
            for fd in (lane, turn):
                if fd >= 0:
                    os.close(fd)
            os.close(gate)


def writer_lane_for(database: Database, *, first: bool) -> WriterLane | None:
    """The lane of a SQLite database file (None for PostgreSQL, memory or URI databases,
    where writers do not queue on one lock)."""
    if database.sqlite_file is None:
        return None
    return WriterLane(Path(f"{database.sqlite_file}.lane"), first=first)


class LanedDatabase(Database):
    """A :class:`~gateway.db.Database` whose write transactions take the SQLite writer
    lane first (``lane`` None: exactly a Database)."""

    def __init__(self, url: str, *, first: bool) -> None:
        super().__init__(url)
        self.lane = writer_lane_for(self, first=first)

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Session]:
        if self.lane is None:
            with super().transaction(durable=durable) as session:
                yield session
            return
        with self.lane.held(), super().transaction(durable=durable) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        if self.lane is None:
            with super().writing() as connection:
                yield connection
            return
        with self.lane.held(), super().writing() as connection:
            yield connection
