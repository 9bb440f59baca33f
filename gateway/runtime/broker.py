"""The dramatiq broker: in-process for the embedded mode, Redis or RabbitMQ for scale-out.

Embedded mode uses dramatiq's in-memory ``StubBroker`` with a worker thread pool
in the same process: durability does not depend on the queue, because every job
is a pointer to a database row and a sweep re-enqueues rows left behind.
"""

from __future__ import annotations

from dramatiq import Broker, Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, default_middleware

from gateway.config import Settings

__all__ = ["PROCESS_ACTOR", "PROCESS_QUEUE", "make_broker", "send_processing_job"]

#: The processing job's actor and queue (declared in :mod:`gateway.runtime.actors`).
PROCESS_ACTOR = "process_message"
PROCESS_QUEUE = "process"


def _middleware() -> list[Middleware]:
    """dramatiq's defaults without Prometheus: it needs the dramatiq CLI's process boot,
    and our metrics are read from the database rows."""
    return [cls() for cls in default_middleware if cls.__name__ != "Prometheus"]


def make_broker(settings: Settings) -> Broker:
    url = settings.broker_url
    if not url:
        return StubBroker(middleware=_middleware())
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=settings.broker_namespace,
                           middleware=_middleware())
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=_middleware())


def send_processing_job(broker: Broker, spool_id: int) -> None:
    """Queue the processing of stored row ``spool_id`` as the ``process`` actor's
    ``send`` does, without declaring the actors: what ``gateway ingest`` needs in
    scale-out, where importing the pipeline would be most of its CPU."""
    broker.declare_queue(PROCESS_QUEUE)
    broker.enqueue(Message(queue_name=PROCESS_QUEUE, actor_name=PROCESS_ACTOR,
                           args=(spool_id,), kwargs={}, options={}))
