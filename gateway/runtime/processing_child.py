"""A processing child: whole processing jobs (analysis, pipeline, maildir delivery) in
their own process, so that processing uses every core instead of one GIL.

Why: in ``gateway serve`` the worker threads and SMTP intake shared one interpreter
lock, so processing ran on one core at most, and only while intake let it (the old
all-or-nothing gate of ``inbound.intake_priority``).  A child runs the very same
``process_spool_entry`` with its own database connections, so exactly once is
unchanged: the spool row is locked, and its new state commits with the ticket,
message and outbox rows in one transaction.  Under ``serve`` children run at a
higher nice value than the process that takes the mail, so the kernel gives intake the
CPU first (``processing_pool.child_nice``).

A child says ``("ready",)`` once warm.  The parent
(:mod:`gateway.runtime.processing_pool`) sends a spool id; the child answers
``("analysing",)`` when the analysis starts and ``("analysed",)`` when it ends (the
parent times only that part against ``processing_budget_seconds``, and kills the
child past it), then ``(outcome, retire)``.  On SQLite one process at a time
writes, on the writer lane of :mod:`inbound.intake_priority` (a ``flock``), where
intake and every other writer go before the children.

One turn of that lane per message: the child reads the row without writing (its
parent counts the attempts a child does not live to finish,
``processing.record_interruption``), and the maildir deliveries of one message are
composed and written under ``tmp/`` after its transaction, then completed (marked sent,
linked into ``new/``) in the lane turn of the child's next message, or alone when no
next message comes within ``IDLE_COMPLETION_SECONDS`` or before a large one is analysed.
Why: each turn was a gap in which neither child held the lane while both did work
outside it; with three turns a message the lane stood idle a quarter of the time
(``bench/RESULTS.md``, session 10).  The answer names the deliveries still waiting
(``JobResult.staged``): if the child dies first, the parent queues them for the delivery
job, which sends each once (the file under ``tmp/`` was never linked).

Importing this module is the forkserver's preload: the pipeline, the analysers and
the outbound modules are imported once there; each child then warms its own
templates and caches (``warm_up``) before it says it is ready.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Connection as SqlConnection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.logs import configure_logging
from gateway.memory import return_large_buffers
from gateway.pipeline.analysis_pool import limits_of
from gateway.pipeline.processing import ProcessOutcome, process_spool_entry
from gateway.runtime.warm_up import warm_up
from gateway.secrets import load_secret
from gateway.services import Services
from inbound.intake_priority import LanedDatabase
from inbound.parsing.analysis import Analysis, analyze
from outbound.delivery import StagedDelivery, deliver_outbox_item, stage_maildir_delivery
from outbound.render import Renderer
from outbound.transports import Transport, transport_from_url
from outbound.transports.maildir import MaildirTransport

__all__ = ["ChildSetup", "JobResult", "ParentGone", "child_main"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
RETIRE_RSS_KB = 300 * 1024
"""A child whose peak resident memory passed this (KiB) exits after its job."""
IDLE_COMPLETION_SECONDS = 0.02
"""How long staged deliveries wait for the next message's lane turn before they take
their own (when no next job comes: the acknowledgement's added latency)."""
EARLY_COMPLETION_BYTES = 256 * 1024
"""A message at least this large completes the waiting deliveries before its analysis,
which may take long (they would wait for it)."""


@dataclass(frozen=True)
class ChildSetup:
    """What a child needs to build its own database, services and transport."""

    settings: Settings
    cwd: Path
    nice: int
    idle_completion: float = IDLE_COMPLETION_SECONDS
    log_level: str = "WARNING"
    """The parent's (``gateway.logs``): a forkserver child inherits no logging set-up."""


@dataclass
class JobResult:
    """A processing job's answer: the outcome, and the outbox rows this child did not
    deliver itself (SMTP transport, or a maildir write that failed): the parent queues
    them for the delivery job and its retries."""

    outcome: ProcessOutcome
    undelivered: list[int] = field(default_factory=list)
    staged: list[int] = field(default_factory=list)
    """Outbox rows written under ``tmp/`` and not yet marked sent: the parent queues them
    for delivery if the child dies before it completes them."""
    pid: int = 0
    cpu: float = 0.0
    """CPU seconds of the job in the child (for ``bench/parallel.py``) …"""
    cpu_in_lane: float = 0.0
    """… the part spent holding SQLite's one-writer lane …"""
    wall_in_lane: float = 0.0
    """… and the wall-clock time it held the lane."""


class _Child:
    """The state of one child process: its connections, services and transport."""

    def __init__(self, conn: Connection, setup: ChildSetup) -> None:
        settings = setup.settings
        self.conn = conn
        self.settings = settings
        self.limits = limits_of(settings)
        self.db = LanedDatabase(settings.database_url, first=False)  # intake goes first
        self.services = Services(settings, load_secret(settings), Renderer(settings.templates_dir))
        self.services.analyzer = self._analyse
        self.transport: Transport = transport_from_url(
            settings.outbound_url, settings.smtp_client_timeout, base=setup.cwd,
            ca_file=settings.smtp_ca_file)
        self.staged: list[StagedDelivery] = []
        """Deliveries waiting for a lane turn (only on SQLite, where there is a lane)."""
        self.idle_completion = setup.idle_completion
        self.failed: list[int] = []
        """Outbox rows whose completion failed, for the next answer (the delivery job)."""
        if self.db.lane is not None:
            self.services.turn = self._turn
            self.services.ride_along = self._complete_within

    def _analyse(self, raw: bytes, mail_from: str) -> Analysis:
        """The analysis, announced so that the parent times exactly this part."""
        if self.staged and len(raw) >= EARLY_COMPLETION_BYTES:
            self.complete_staged()
        self._tell(("analysing",))
        analysis = analyze(raw, mail_from, self.limits)
        self._tell(("analysed",))
        return analysis

    def _tell(self, message: tuple[str]) -> None:
        try:
            self.conn.send(message)
        except OSError:
            raise ParentGone from None

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The pipeline's lane turn, in which the previous message's deliveries complete
        too: in the pipeline's transaction (``_complete_within``), else after it."""
        assert self.db.lane is not None
        with self.db.lane.held():
            try:
                yield
            finally:
                self.complete_staged()

    def _complete_within(self, session: Session) -> None:
        """Complete the staged deliveries in the pipeline's transaction, each under a
        savepoint: one that fails rolls back alone and its row waits for the delivery
        job; the pipeline commits all the others with its own writes."""
        self._complete(lambda: _savepoint(session))

    def complete_staged(self) -> None:
        """Mark the staged deliveries sent and link their files, each in its own
        transaction (on the lane, in one turn); a failure leaves its row ``pending``."""
        if not self.staged:
            return
        lane = self.db.lane
        assert lane is not None
        with lane.held():
            self._complete(self.db.writing)

    def _complete(self, transaction: Callable[[], AbstractContextManager[SqlConnection]]
                  ) -> None:
        """Complete each staged delivery in a ``transaction()`` of its own; one that fails
        goes to the delivery job with the next answer."""
        staged, self.staged = self.staged, []
        for delivery in staged:
            try:
                with transaction() as connection:
                    delivery.complete(connection)
            except Exception:  # noqa: BLE001 - the delivery job retries (and logs) it
                log.info("outbox %s: completing the delivery failed; queued for retry",
                         delivery.outbox_id, exc_info=True)
                self.failed.append(delivery.outbox_id)
            finally:
                delivery.discard()

    def run(self, spool_id: int) -> JobResult:
        started = time.process_time()
        lane = self.db.lane
        cpu_before, wall_before = (lane.cpu_held, lane.wall_held) if lane else (0.0, 0.0)
        outcome = process_spool_entry(self.db, self.services, spool_id, count_attempt=False)
        undelivered = [outbox_id for outbox_id in outcome.outbox_ids
                       if not self._deliver_inline(outbox_id)]
        undelivered += self.failed
        self.failed = []
        return JobResult(outcome, undelivered, [d.outbox_id for d in self.staged], os.getpid(),
                         time.process_time() - started,
                         (lane.cpu_held - cpu_before) if lane else 0.0,
                         (lane.wall_held - wall_before) if lane else 0.0)

    def _deliver_inline(self, outbox_id: int) -> bool:
        """A maildir write is local and fast: do it here (see ``process_message``); on
        SQLite staged now and completed in the next lane turn."""
        if not isinstance(self.transport, MaildirTransport):
            return False
        try:
            if self.db.lane is None:
                deliver_outbox_item(self.db, self.transport, self.settings, outbox_id)
                return True
            staged = stage_maildir_delivery(self.db, self.transport, self.settings, outbox_id)
        except Exception:  # noqa: BLE001 - the delivery job retries (and logs) it
            log.info("outbox %s: inline delivery failed; queued for retry", outbox_id)
            return False
        if staged is None:  # the general path records what went wrong
            return False
        if isinstance(staged, StagedDelivery):
            self.staged.append(staged)
        return True


@contextmanager
def _savepoint(session: Session) -> Iterator[SqlConnection]:
    """A savepoint in the session's transaction, as a connection to write on."""
    with session.begin_nested():
        yield session.connection()


class ParentGone(BaseException):
    """The worker that sent the job died: stop without a verdict on the message (not an
    ``Exception``, so that no step turns it into a quarantine); the row stays
    ``received`` and the restarted gateway's sweep processes it."""


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when its parent (the forkserver, which exits
    with the gateway) dies, as the worker threads died with the process before; a
    transaction cut short rolls back, and the restart's sweep redoes the job."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() == 1:  # the parent died before prctl: nobody waits for us
        os._exit(0)


def _outage(exc: Exception) -> bool:
    """The database could not be reached or used (retry, nobody's fault) rather than it
    refusing what this message made it do (counted: see ``record_interruption``)."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _answer(child: _Child, spool_id: int) -> tuple[str, Any]:
    try:
        return ("ok", child.run(spool_id))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, whose job retries
        log.exception("spool %s: processing failed in child %s", spool_id, os.getpid())
        return ("outage" if _outage(exc) else "error", f"{type(exc).__name__}: {exc}"[:500])


def child_main(conn: Connection, setup: ChildSetup) -> None:
    """A child's loop: spool ids in, results out, until the parent goes away."""
    _die_with_parent()
    configure_logging(setup.log_level)
    return_large_buffers()
    child = _Child(conn, setup)
    warm_up(child.services)  # at normal priority: start-up, before serve listens
    gc.freeze()  # what start-up built lives as long as the child
    os.nice(setup.nice)
    try:
        conn.send(("ready",))
    except OSError:
        return
    try:
        _serve(conn, child)
    finally:  # what was staged is completed before the child goes (else: the sweep)
        try:
            child.complete_staged()
        finally:
            child.db.dispose()


def _serve(conn: Connection, child: _Child) -> None:
    while True:
        try:
            if child.staged and not conn.poll(child.idle_completion):
                child.complete_staged()  # no next message to share the lane turn with
            spool_id = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = _answer(child, spool_id)
        except ParentGone:
            return
        retire = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > RETIRE_RSS_KB
        try:
            conn.send((answer, retire))
        except OSError:  # the parent died: what we committed stays committed
            return
        if retire:
            return

