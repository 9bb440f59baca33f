"""The start-up warm-up runs the CPU-only processing path and leaves no trace."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.models import MessageRecord, OutboxItem, SpoolEntry, Ticket
from gateway.runtime.app import Gateway
from gateway.runtime.warm_up import warm_up


def test_warm_up_touches_neither_the_database_nor_the_outbox(gateway: Gateway) -> None:
    gateway.db.upgrade()
    assert warm_up(gateway.services) >= 0
    with gateway.db.reading() as session:
        for model in (SpoolEntry, Ticket, MessageRecord, OutboxItem):
            assert session.scalar(select(func.count()).select_from(model)) == 0
