"""The running gateway: settings, database, services, broker, actors and the sweep.

One ``Gateway`` per process (tests build several), created from settings and
passed explicitly; ``serve`` and ``worker`` in :mod:`gateway.runtime.server` add the
network front ends and the worker threads around it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

import dramatiq
from sqlalchemy import or_, select

from gateway.config import Settings
from gateway.db import Database
from gateway.errors import GatewayError
from gateway.memory import return_large_buffers
from gateway.models import OutboxItem, OutboxStatus, SpoolEntry, SpoolState, utcnow
from gateway.pipeline.analysis_pool import AnalysisPool
from gateway.runtime.actors import Actors, declare_actors
from gateway.runtime.broker import make_broker
from gateway.runtime.processing_pool import ProcessingPool, child_nice, pool_size
from gateway.secrets import load_secret
from gateway.services import Services
from inbound.intake_priority import LanedDatabase
from outbound.delivery import STALE_SENDING, deliver_outbox_item
from outbound.render import Renderer
from outbound.transports import Transport, transport_from_url

__all__ = ["REQUEUE_EXTERNAL_AFTER", "Gateway", "SweepReport"]

REQUEUE_EXTERNAL_AFTER = 900.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    spool: int
    outbox: int


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # SQLite: every write takes the writer lane before the processing children do.
        self.db: Database = LanedDatabase(settings.database_url, first=True)
        self.broker = make_broker(settings)
        self.actors: Actors = declare_actors(self)
        self._worker: dramatiq.Worker | None = None
        self._enqueued: dict[int, float] = {}
        self._enqueued_lock = threading.Lock()
        self._analysis: AnalysisPool | None = None
        self.processing_pool: ProcessingPool | None = None
        """Set while a worker runs with processing children (``processing_processes``)."""
        self.processing_feed: Callable[[int], None] | None = None
        """Set by ``serve`` with an in-process worker: new jobs go through the intake-first
        feed of :mod:`inbound.intake_priority` instead of straight to the broker."""

    @cached_property
    def services(self) -> Services:
        hub_url = f"{self.settings.public_url.rstrip('/')}/hub/"
        return Services(self.settings, load_secret(self.settings),
                        Renderer(self.settings.templates_dir, hub_url=hub_url))

    @cached_property
    def transport(self) -> Transport:
        return transport_from_url(self.settings.outbound_url, self.settings.smtp_client_timeout,
                                  base=Path.cwd(), ca_file=self.settings.smtp_ca_file)

    # -- jobs ---------------------------------------------------------------
    def enqueue_processing(self, spool_id: int) -> None:
        """Ask a worker to process a committed spool row; losing this only delays it."""
        with self._enqueued_lock:
            self._enqueued[spool_id] = time.monotonic()
        if self.processing_feed is not None:
            self.processing_feed(spool_id)
        else:
            self.send_processing(spool_id)

    def send_processing(self, spool_id: int) -> None:
        """Send the processing job to the broker now."""
        try:
            self.actors.process.send(spool_id)
        except Exception:  # noqa: BLE001 - broker down: the sweep will enqueue it again
            log.exception("could not enqueue spool %s; the sweep will retry", spool_id)
            with self._enqueued_lock:
                self._enqueued.pop(spool_id, None)

    def _needs_requeue(self, spool_ids: list[int]) -> list[int]:
        """Rows whose job this process did not hand to the broker (or long ago).

        A job this process enqueued is still waiting in a backlog, not lost: the
        in-memory queue dies only with this process, and an external broker keeps
        its jobs (redelivering those of a dead worker).  Re-sending them would only
        grow the backlog.  An external broker's job is re-sent after
        ``REQUEUE_EXTERNAL_AFTER`` seconds as a last safety net.
        """
        limit = math.inf if self.settings.embedded else REQUEUE_EXTERNAL_AFTER
        now = time.monotonic()
        with self._enqueued_lock:
            waiting = set(spool_ids)
            for known in [k for k in self._enqueued if k not in waiting]:
                del self._enqueued[known]  # processed meanwhile
            return [i for i in spool_ids
                    if i not in self._enqueued or now - self._enqueued[i] > limit]

    def enqueue_delivery(self, outbox_id: int) -> None:
        try:
            self.actors.deliver.send(outbox_id)
        except Exception:  # noqa: BLE001
            log.exception("could not enqueue outbox %s; the sweep will retry", outbox_id)

    def deliverer(self, *, inline: bool) -> Callable[[Iterable[int]], None]:
        """What hands committed outbox rows to delivery, for code that takes it as an
        argument: ``inline`` delivers them now in this process (a command in embedded
        mode has no worker), else they are enqueued for the workers.  A failure loses
        nothing: the row stays pending and the sweep retries it."""
        def deliver(outbox_ids: Iterable[int]) -> None:
            for outbox_id in outbox_ids:
                if inline:
                    self.deliver_now(outbox_id)
                else:
                    self.enqueue_delivery(outbox_id)
        return deliver

    def deliver_now(self, outbox_id: int) -> None:
        try:
            deliver_outbox_item(self.db, self.transport, self.settings, outbox_id)
        except GatewayError as error:
            log.warning("outbox %s not delivered yet (%s); serve will retry", outbox_id, error)

    def start_worker(self, threads: int | None = None, *, beside_intake: bool = False) -> None:
        """Start the job worker; ``beside_intake``: SMTP intake runs in this process."""
        return_large_buffers()  # also for `gateway worker`
        children = pool_size(self.settings)
        if children and self.processing_pool is None:
            # Whole processing jobs in child processes: every core, not one GIL.
            nice = child_nice(self.settings, beside_intake=beside_intake)
            self.processing_pool = ProcessingPool(self.settings, self.db, children, nice=nice,
                                                  redeliver=self.enqueue_delivery)
            self.processing_pool.warm()
            log.info("processing in %s child processes (nice +%s)", children, nice)
        elif self.settings.analysis_processes and self._analysis is None:
            # Processing analyses each message in a child stopped at the budget.
            self._analysis = AnalysisPool(self.settings)
            self._analysis.warm()
            self.services.analyzer = self._analysis.analyze
        # A job thread waits on a child's pipe: at least one thread per child.
        threads = max(threads or self.settings.worker_threads, children)
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=30_000)
            self._worker = None
        if self.processing_pool is not None:
            self.processing_pool.close()
            self.processing_pool = None
        if self._analysis is not None:
            self.services.analyzer = None
            self._analysis.close()
            self._analysis = None

    # -- sweep --------------------------------------------------------------
    def sweep(self, *, everything: bool = False) -> SweepReport:
        """Re-enqueue spool rows stuck in ``received`` and outbox rows nobody is sending.

        Every node sweeps (re-enqueueing is harmless twice); the periodic jobs that write
        (escalation, expiring-grant notices) run on the scheduler's leader instead.

        ``everything`` takes every such row regardless of age: right after start in
        embedded mode, when the in-memory queue of a previous process is gone.
        """
        now = utcnow()
        age = timedelta(0) if everything else timedelta(seconds=self.settings.stuck_after)
        with self.db.reading() as session:
            spool_ids = session.scalars(
                select(SpoolEntry.id).where(SpoolEntry.state == SpoolState.RECEIVED,
                                            SpoolEntry.received_at <= now - age)
                .order_by(SpoolEntry.id)).all()
            outbox_ids = session.scalars(select(OutboxItem.id).where(or_(
                (OutboxItem.status == OutboxStatus.PENDING)
                & (OutboxItem.next_attempt_at <= now - age),
                (OutboxItem.status == OutboxStatus.SENDING)
                & (OutboxItem.updated_at <= now - STALE_SENDING),
            )).order_by(OutboxItem.id)).all()
        if not everything:
            spool_ids = self._needs_requeue(list(spool_ids))
        for spool_id in spool_ids:
            self.enqueue_processing(spool_id)
        for outbox_id in outbox_ids:
            self.enqueue_delivery(outbox_id)
        if spool_ids or outbox_ids:
            log.info("sweep re-enqueued %s spool rows and %s outbox rows",
                     len(spool_ids), len(outbox_ids))
        return SweepReport(len(spool_ids), len(outbox_ids))

    def close(self) -> None:
        self.stop_worker()
        self.broker.close()
        self.db.dispose()
