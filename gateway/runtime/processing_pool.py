"""Processing jobs in child processes, one per core: every core processes.

The worker's job threads hand a spool id to an idle child
(:mod:`gateway.runtime.processing_child`) and wait on its pipe, holding no lock and
almost no CPU, so SMTP intake in this process keeps its core while the children use
the others.  The budget of containment (issue 13) is kept: the child says when its
analysis starts and ends, and past ``processing_budget_seconds`` the child is killed
(a fresh one takes its place) and the message is quarantined with that reason.  A
child that dies by itself fails the job (it is retried), as does an error the child
reports (a database outage): the row stays ``received``.  The parent counts each
attempt a child did not live to finish (``processing.record_interruption``) and
quarantines a message that keeps doing it (``max_processing_attempts``); the child
itself writes no count (one lane turn a message, see ``processing_child``); a child
that died before it read the job (killed while idle) counts nothing, and another child
takes the job.  A child
that dies or is killed with deliveries staged and not yet completed hands them to
``redeliver`` (the delivery job), which sends each once.

Why one per core and not more: on SQLite one process writes at a time and most of a
message's CPU is inside its write transaction; a third child on two cores made each
message cost more CPU (22.7-24.9 against 17.5-20.2 ms) and processed fewer a second
(``bench/parallel.py``, ``bench/RESULTS.md``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.db import Database
from gateway.logs import current_level
from gateway.models import SpoolState
from gateway.pipeline.analysis_pool import AnalysisCrashed, NotTaken, budget_reason
from gateway.pipeline.processing import ProcessOutcome, quarantine, record_interruption
from gateway.runtime.processing_child import (
    IDLE_COMPLETION_SECONDS,
    ChildSetup,
    JobResult,
    child_main,
)

__all__ = ["ProcessingFailed", "ProcessingPool", "available_cores", "child_nice", "pool_size"]

log = logging.getLogger(__name__)


INTAKE_FIRST_NICE = 10
"""The children's nice value beside SMTP intake (``serve``), unless set."""


def child_nice(settings: Settings, *, beside_intake: bool) -> int:
    """``processing_nice``, or when unset 10 beside intake and 0 in a worker of its own.

    Why not always 10: the niceness only serves to give intake in the same process the
    CPU first; against any other process (a spam filter, the other workers of a busy host)
    a child at +10 gets about a tenth of a core, and a job's many database round trips
    each wait for it (one request took 9 s instead of 0.1 s behind three busy loops)."""
    if settings.processing_nice is not None:
        return settings.processing_nice
    return INTAKE_FIRST_NICE if beside_intake else 0


class ProcessingFailed(Exception):
    """The child reported an error (a database outage, a bug): the job is retried."""


def available_cores() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def pool_size(settings: Settings) -> int:
    """``processing_processes``, or when unset one child per core."""
    if settings.processing_processes is not None:
        return settings.processing_processes
    return available_cores()


class _Child:
    def __init__(self, context: Any, setup: ChildSetup) -> None:
        parent, child = context.Pipe()
        self.process = context.Process(target=child_main, args=(child, setup),
                                       name="gateway-processing", daemon=True)
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.ready = False
        self.staged: list[int] = []
        """Outbox rows the child staged and had not completed at its last answer."""

    def wait_ready(self) -> None:
        """Until the child has warmed up (imports, templates, a sample analysis)."""
        if not self.ready:
            if self.conn.recv() != ("ready",):  # pragma: no cover - protocol bug
                raise OSError("unexpected message from the processing child")
            self.ready = True

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def close(self) -> None:
        """Let an idle child complete what it staged and exit (its pipe's end is its
        signal), then stop it."""
        self.conn.close()
        self.process.join(timeout=5)
        self.stop()


class ProcessingPool:
    """At most ``processes`` jobs at once, each in its own child."""

    def __init__(self, settings: Settings, database: Database, processes: int, *,
                 nice: int = 0, redeliver: Callable[[int], None] | None = None,
                 idle_completion: float = IDLE_COMPLETION_SECONDS) -> None:
        self.settings = settings
        self.database = database
        self.redeliver = redeliver
        """Takes the outbox rows a dead child left staged (None: the sweep finds them)."""
        self.analysing: set[int] = set()
        """The spool ids whose analysis runs in a child now (for tests and diagnostics)."""
        self.budget = settings.processing_budget_seconds
        self.nice = nice
        self.setup = ChildSetup(settings=settings, cwd=Path.cwd(), nice=nice,
                                idle_completion=idle_completion, log_level=current_level())
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["gateway.runtime.processing_child"])
        self.processes = processes
        self._slots = threading.BoundedSemaphore(processes)
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._closed = False

    def process(self, spool_id: int) -> JobResult:
        """Process one spool row in a child; raise AnalysisCrashed or ProcessingFailed
        for the job to be retried."""
        with self._slots:
            for _ in range(self.processes + 2):
                child = self._take()
                try:
                    answer, retire = self._run(child, spool_id)
                    break
                except NotTaken as not_taken:
                    log.warning("a processing child died before it took spool %s (%s); "
                                "another takes it", spool_id, not_taken)
                    child.stop()
                    self._orphaned(child)
                except _Stopped as stopped:
                    self._orphaned(child)
                    return JobResult(stopped.outcome)
                except (EOFError, OSError) as error:
                    child.stop()
                    self._orphaned(child)
                    counted = record_interruption(self.database, self.settings, spool_id)
                    if counted is not None:  # the last attempt allowed: quarantined
                        return JobResult(counted)
                    raise AnalysisCrashed(
                        f"the processing process died ({type(error).__name__}, "
                        f"exit code {child.process.exitcode})") from None
            else:
                raise AnalysisCrashed("no processing process lived to take the job")
            status, value = answer
            if status == "ok":
                assert isinstance(value, JobResult)
                child.staged = value.staged
            if retire or self._closed:
                child.close()
            else:
                self._idle.put(child)
        if status == "error":  # the database refused it, no outage: an attempt used up
            counted = record_interruption(self.database, self.settings, spool_id, str(value))
            if counted is not None:  # the last attempt allowed: quarantined
                return JobResult(counted)
        if status != "ok":
            raise ProcessingFailed(str(value))
        assert isinstance(value, JobResult)
        return value

    def _run(self, child: _Child, spool_id: int) -> tuple[tuple[str, Any], bool]:
        """The job in ``child``: its answer, or :class:`NotTaken` when the child died
        before it read the spool id (killed while idle, its death not yet reported by the
        forkserver); the id is all we send it, so ECONNRESET means it was never read."""
        try:
            child.wait_ready()
            child.conn.send(spool_id)
        except (EOFError, OSError) as error:
            raise NotTaken(type(error).__name__) from None
        try:
            return self._await(child, spool_id)
        except ConnectionResetError:
            raise NotTaken("ConnectionResetError") from None

    def _orphaned(self, child: _Child) -> None:
        """A dead child's staged deliveries: to the delivery job (sent once each: their
        files under ``tmp/`` were never linked)."""
        staged, child.staged = child.staged, []
        if self.redeliver is None:
            return
        for outbox_id in staged:
            self.redeliver(outbox_id)

    def _await(self, child: _Child, spool_id: int) -> tuple[tuple[str, Any], bool]:
        """The child's answer; its analysis is timed against the budget."""
        try:
            return self._answer(child, spool_id)
        finally:
            self.analysing.discard(spool_id)

    def _answer(self, child: _Child, spool_id: int) -> tuple[tuple[str, Any], bool]:
        while True:
            message = child.conn.recv()
            if message != ("analysing",):
                return message  # type: ignore[no-any-return]
            self.analysing.add(spool_id)
            started = time.monotonic()
            if not child.conn.poll(self.budget):
                elapsed = time.monotonic() - started
                child.stop()
                log.warning("spool %s: analysis stopped after %.1f s (budget %g s)",
                            spool_id, elapsed, self.budget)
                reason = budget_reason(self.budget, elapsed)
                quarantine(self.database, spool_id, reason, uncounted_attempt=True)
                raise _Stopped(ProcessOutcome(SpoolState.QUARANTINED.value, reason))
            message = child.conn.recv()
            self.analysing.discard(spool_id)
            if message != ("analysed",):  # the analysis raised: the job's answer follows it
                return message  # type: ignore[no-any-return]

    def _take(self) -> _Child:
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return _Child(self._context, self.setup)
            if child.process.is_alive():
                return child
            child.stop()
            self._orphaned(child)

    def warm(self) -> None:
        """Start every child now and wait until they have warmed up (together), so that
        ``serve`` listens only when processing is ready."""
        children = [self._take() for _ in range(self.processes)]
        for child in children:
            try:
                child.wait_ready()
            except (EOFError, OSError):
                log.warning("a processing child died while warming up; another replaces it")
                child.stop()
                continue
            self._idle.put(child)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class _Stopped(Exception):
    def __init__(self, outcome: ProcessOutcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome
