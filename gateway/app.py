"""The running gateway: settings, database, services, broker, actors and the sweep.

One ``Gateway`` per process (tests build several), created from settings and
passed explicitly; ``serve`` and ``worker`` in :mod:`gateway.server` add the
network front ends and the worker threads around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

import dramatiq
from sqlalchemy import or_, select

from gateway.actors import Actors, declare_actors
from gateway.broker import make_broker
from gateway.config import Settings
from gateway.db import Database
from gateway.models import OutboxItem, OutboxStatus, SpoolEntry, SpoolState, utcnow
from gateway.secrets import load_secret
from gateway.services import Services
from outbound.delivery import STALE_SENDING
from outbound.render import Renderer
from outbound.transports import Transport, transport_from_url

__all__ = ["Gateway", "SweepReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    spool: int
    outbox: int


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.broker = make_broker(settings)
        self.actors: Actors = declare_actors(self)
        self._worker: dramatiq.Worker | None = None

    @cached_property
    def services(self) -> Services:
        return Services(self.settings, load_secret(self.settings),
                        Renderer(self.settings.templates_dir))

    @cached_property
    def transport(self) -> Transport:
        return transport_from_url(self.settings.outbound_url, self.settings.smtp_client_timeout,
                                  base=Path.cwd())

    # -- jobs ---------------------------------------------------------------
    def enqueue_processing(self, spool_id: int) -> None:
        """Ask a worker to process a committed spool row; losing this only delays it."""
        try:
            self.actors.process.send(spool_id)
        except Exception:  # noqa: BLE001 - broker down: the sweep will enqueue it again
            log.exception("could not enqueue spool %s; the sweep will retry", spool_id)

    def enqueue_delivery(self, outbox_id: int) -> None:
        try:
            self.actors.deliver.send(outbox_id)
        except Exception:  # noqa: BLE001
            log.exception("could not enqueue outbox %s; the sweep will retry", outbox_id)

    def start_worker(self, threads: int | None = None) -> None:
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads or
                                       self.settings.worker_threads, worker_timeout=100)
        self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=30_000)
            self._worker = None

    # -- sweep --------------------------------------------------------------
    def sweep(self, *, everything: bool = False) -> SweepReport:
        """Re-enqueue spool rows stuck in ``received`` and outbox rows nobody is sending.

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
