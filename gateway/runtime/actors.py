"""The two jobs: ``process_message(spool_id)`` and ``deliver_message(outbox_id)``.

Actors are thin: they carry ids, never bytes, and call the functions that do the
work.  Retry policy is actor options (dramatiq's Retries middleware): database
outages retry processing; temporary delivery failures retry with exponential
backoff; permanent delivery failures are in ``throws`` and never retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import dramatiq

from gateway.config import Settings
from gateway.db import Database
from gateway.errors import PermanentFailure
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.broker import PROCESS_ACTOR, PROCESS_QUEUE
from gateway.runtime.processing_pool import ProcessingPool
from gateway.services import Services
from outbound.delivery import deliver_outbox_item
from outbound.transports import Transport
from outbound.transports.maildir import MaildirTransport

__all__ = ["ActorHost", "Actors", "declare_actors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actors:
    process: dramatiq.Actor[Any, Any]
    deliver: dramatiq.Actor[Any, Any]


class ActorHost(Protocol):
    """What the actors use of the running gateway (:class:`gateway.runtime.app.Gateway`,
    which declares them: a protocol, so that the two modules do not import each other)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def broker(self) -> dramatiq.Broker: ...
    @property
    def services(self) -> Services: ...
    @property
    def transport(self) -> Transport: ...
    @property
    def processing_pool(self) -> ProcessingPool | None: ...
    def enqueue_delivery(self, outbox_id: int) -> None: ...


def declare_actors(gateway: ActorHost) -> Actors:
    settings = gateway.settings

    def process_message(spool_id: int) -> None:
        pool = gateway.processing_pool
        if pool is not None:  # in a child, which also delivered what a maildir takes
            for outbox_id in pool.process(spool_id).undelivered:
                gateway.enqueue_delivery(outbox_id)
            return
        outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
        local = isinstance(gateway.transport, MaildirTransport)
        for outbox_id in outcome.outbox_ids:
            if local and _deliver_inline(outbox_id):
                continue
            gateway.enqueue_delivery(outbox_id)

    def _deliver_inline(outbox_id: int) -> bool:
        """A maildir write is local and fast: do it in this job (no second job, and the
        ack does not queue behind other messages).  Any failure leaves the row to the
        delivery job and its retry policy."""
        try:
            deliver_outbox_item(gateway.db, gateway.transport, settings, outbox_id)
        except Exception:  # noqa: BLE001 - the delivery job retries (and logs) it
            log.info("outbox %s: inline delivery failed; queued for retry", outbox_id)
            return False
        return True

    def deliver_message(outbox_id: int) -> None:
        deliver_outbox_item(gateway.db, gateway.transport, settings, outbox_id)

    process = dramatiq.actor(
        process_message, broker=gateway.broker, actor_name=PROCESS_ACTOR,
        queue_name=PROCESS_QUEUE, max_retries=50, min_backoff=500, max_backoff=60_000,
    )
    deliver = dramatiq.actor(
        deliver_message, broker=gateway.broker, actor_name="deliver_message",
        queue_name="deliver", max_retries=settings.delivery_max_attempts,
        min_backoff=int(settings.delivery_min_backoff * 1000),
        max_backoff=int(settings.delivery_max_backoff * 1000),
        throws=(PermanentFailure,),
    )
    return Actors(process=process, deliver=deliver)
