"""Delivery through an SMTP smarthost: temporary refusals are retried with backoff and the
mail arrives once; a permanent refusal ends the outbox row dead with the server's answer.

The smarthost is a real aiosmtpd server on loopback whose answers are scripted: a
refusing remote server is a fault we cannot cause for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import Settings
from gateway.models import OutboxItem
from gateway.server import GatewayServer
from tests.conftest import free_port, wait_for
from tests.mail import make_mail, send


class ScriptedSmarthost:
    """Answers RCPT from a script (``None`` = accept), then accepts and keeps the mail."""

    def __init__(self) -> None:
        self.script: list[str | None] = []
        self.received: list[bytes] = []
        self.rcpt_answers: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        with self._lock:
            answer = self.script.pop(0) if self.script else None
            self.rcpt_answers.append(answer or "250 OK")
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append(envelope.original_content)
        return "250 2.0.0 queued"


@pytest.fixture
def smarthost() -> Iterator[tuple[ScriptedSmarthost, int]]:
    handler = ScriptedSmarthost()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def settings(settings_factory: Any, smarthost: tuple[ScriptedSmarthost, int]) -> Settings:
    return settings_factory(outbound_url=f"smtp://127.0.0.1:{smarthost[1]}",
                            delivery_min_backoff=0.3, delivery_max_backoff=1.0,
                            delivery_max_attempts=5)


def _outbox(gateway: Gateway) -> list[OutboxItem]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(OutboxItem)))


def test_temporary_refusals_then_acceptance_deliver_once(
        smarthost: tuple[ScriptedSmarthost, int], running: GatewayServer, gateway: Gateway,
        settings: Settings) -> None:
    host, _port = smarthost
    host.script = ["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"]
    send(settings.smtp_listen, make_mail(subject="Greylisted ack"))
    item = wait_for(lambda: [o for o in _outbox(gateway) if o.status.value == "sent"],
                    timeout=60, message="acknowledgement delivered")[0]
    assert len(host.received) == 1
    assert b"Greylisted ack" in host.received[0]
    assert item.attempts == 3
    assert host.rcpt_answers[:2] == ["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"]


def test_permanent_refusal_ends_dead_with_the_answer(
        smarthost: tuple[ScriptedSmarthost, int], running: GatewayServer, gateway: Gateway,
        settings: Settings) -> None:
    host, _port = smarthost
    host.script = ["550 5.1.1 <anna@acme.example>: Recipient address rejected"]
    send(settings.smtp_listen, make_mail(subject="Doomed ack"))
    item = wait_for(lambda: [o for o in _outbox(gateway) if o.status.value == "dead"],
                    timeout=60, message="outbox row dead")[0]
    assert "550" in item.last_error and "Recipient address rejected" in item.last_error
    assert item.attempts == 1 and host.received == []
    # No retry follows a permanent refusal.
    time.sleep(1.5)
    assert len(host.rcpt_answers) == 1
    assert _outbox(gateway)[0].attempts == 1
