"""Intake before processing: open SMTP transactions hold in-process jobs back, never for long."""

from __future__ import annotations

import smtplib
import time

from gateway.config import Settings
from gateway.intake_priority import IntakePriority
from gateway.server import GatewayServer


def _client(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_listen.rsplit(":", 1)
    client = smtplib.SMTP(host, int(port), timeout=30)
    client.ehlo("client.example")
    return client


def _quiet_soon(priority: IntakePriority, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while priority.busy():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_job_waits_while_intake_is_busy_but_at_most_max_wait() -> None:
    priority = IntakePriority(quiet=0.005, max_wait=0.3)
    started = time.monotonic()
    priority.wait_turn()
    assert time.monotonic() - started < 0.05  # idle intake: no wait

    priority.begin()
    started = time.monotonic()
    priority.wait_turn()
    waited = time.monotonic() - started
    assert 0.25 <= waited < 2.0  # busy all the time: the job still runs after max_wait

    time.sleep(1.1)  # a transaction open but nothing happening for a second: stalled
    assert not priority.busy()

    priority.end()
    time.sleep(0.02)
    started = time.monotonic()
    priority.wait_turn()
    assert time.monotonic() - started < 0.05


def test_smtp_transactions_mark_intake_busy_until_answered_reset_or_gone(
    running: GatewayServer, settings: Settings
) -> None:
    priority = running.intake_priority
    assert _quiet_soon(priority)
    with _client(settings) as client:
        assert not priority.busy()  # a connected, idle client is not intake work
        client.mail("anna@acme.example")
        assert priority.busy()
        client.rset()
        assert _quiet_soon(priority)
        client.mail("anna@acme.example")
        client.rcpt("support@support.example")
        assert priority.busy()
        client.data(b"From: anna@acme.example\r\nSubject: hi\r\n\r\nhello\r\n")
        assert _quiet_soon(priority)
        client.mail("anna@acme.example")
        assert priority.busy()
    assert _quiet_soon(priority)  # the client left in the middle of a transaction
