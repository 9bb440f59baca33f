"""Fixtures of the call-back tests: a gateway whose agents' mailbox is set, a fixed clock
(Monday 2026-12-07 10:00 UTC), and a helper that books through the domain function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from gateway.callbacks import Window, book_callback
from gateway.config import Settings
from gateway.models import Callback, OutboxItem
from gateway.runtime.app import Gateway
from outbound.sealing import live_bytes

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
TUESDAY = date(2026, 12, 8)
AGENTS = "agents@support.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(agents_address=AGENTS)


@pytest.fixture
def clocked(gateway: Gateway) -> Gateway:
    """The test gateway with its clock at :data:`NOW`."""
    gateway.services.now = lambda: NOW
    return gateway


def book(gateway: Gateway, email: str = "anna@acme.example", *, topic: str = "Sync conflicts",
         phone: str = "+49 (0)221 123-4567", day: date = TUESDAY, hours: tuple[int, int] = (14, 16),
         timezone: str = "Europe/Berlin") -> tuple[int, list[int]]:
    """Book in one transaction; (the booking's id, the outbox ids of the agents' mail)."""
    with gateway.db.transaction() as session:
        booking, outbox_ids = book_callback(
            session, gateway.services, email=email, topic=topic, phone=phone,
            window=Window(day, hours[0], hours[1], timezone))
        return booking.id, outbox_ids


def outbox_mail(gateway: Gateway, outbox_id: int) -> tuple[OutboxItem, EmailMessage]:
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_id)
        assert item is not None
        raw = live_bytes(gateway.services.secret, item)
        session.expunge(item)
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return item, message


def stored(gateway: Gateway) -> list[Callback]:
    with gateway.db.reading() as session:
        rows = list(session.scalars(select(Callback).order_by(Callback.id)))
        session.expunge_all()
    return rows
