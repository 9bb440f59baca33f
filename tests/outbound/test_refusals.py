"""A smarthost's permanent refusal (5xx at MAIL FROM, RCPT TO or end of DATA) ends the
outbox row dead after one attempt; the agents are told by mail and the ticket's history
records it.  A temporary refusal (4xx) is retried as before.

The smarthost is a real aiosmtpd server on loopback whose answers are scripted (a refusing
remote server is a fault we cannot cause for real); the gateway runs ``serve`` with its
worker, mail comes in over SMTP and the ticket is read with ``gateway tickets show --json``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import MessageRecord, OutboxItem, OutboxStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.delivery import deliver_outbox_item
from tests.conftest import free_port, run_gateway
from tests.e2e.test_conversations import AUTHSERV, deliver, open_ticket, passed
from tests.mail import make_mail

AGENTS = "agents@support.example"
MAX = "max@acme.example"


class RefusingSmarthost:
    """Accepts mail and keeps it, except where scripted to refuse.

    ``max_size``: MAIL FROM with a larger ``SIZE=`` gets ``552 5.3.4`` (Postfix's
    ``message_size_limit``).  ``at_rcpt`` / ``at_data``: answers per recipient, used in
    turn (the last one repeats); ``""`` or no entry accepts."""

    def __init__(self) -> None:
        self.port = 0
        self.max_size = 0
        self.at_rcpt: dict[str, list[str]] = {}
        self.at_data: dict[str, list[str]] = {}
        self.received: list[tuple[list[str], bytes]] = []
        self.answers: list[str] = []
        self._lock = threading.Lock()

    def _next(self, script: dict[str, list[str]], address: str) -> str | None:
        with self._lock:
            answers = script.get(address) or []
            answer = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers else ""
            if answer:
                self.answers.append(f"{address}: {answer}")
            return answer or None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        size = next((int(o.split("=", 1)[1]) for o in mail_options
                     if o.upper().startswith("SIZE=")), 0)
        if self.max_size and size > self.max_size:
            with self._lock:
                self.answers.append(f"MAIL FROM SIZE={size}: 552")
            return "552 5.3.4 Message size exceeds fixed limit"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        answer = self._next(self.at_rcpt, address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            answer = self._next(self.at_data, rcpt)
            if answer is not None:
                return answer
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"

    def mail_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            raws = [raw for rcpts, raw in self.received if address in rcpts]
        parsed = [message_from_bytes(raw, policy=policy.default) for raw in raws]
        return [m for m in parsed if isinstance(m, EmailMessage)]


@pytest.fixture
def smarthost() -> Iterator[RefusingSmarthost]:
    handler = RefusingSmarthost()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], smarthost: RefusingSmarthost,
             request: pytest.FixtureRequest) -> Settings:
    overrides: dict[str, Any] = {
        "outbound_url": f"smtp://127.0.0.1:{smarthost.port}",
        "sender_authentication": "authres", "authserv_id": AUTHSERV,
        "agents_address": AGENTS, "delivery_max_attempts": 5}
    overrides.update(getattr(request, "param", {}))
    return settings_factory(**overrides)


def rows(gateway: Gateway, **where: Any) -> list[OutboxItem]:
    with gateway.db.reading() as session:
        query = select(OutboxItem).order_by(OutboxItem.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxItem, name) == value)
        return list(session.scalars(query))


def ticket_json(settings: Settings, number: int) -> dict[str, Any]:
    shown = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def system_events(settings: Settings, number: int) -> list[dict[str, Any]]:
    """The delivery-failure notes (the gateway's own mail is listed as system messages
    too, with the kinds auto_reply and notice)."""
    return [m for m in ticket_json(settings, number)["messages"]
            if m["role"] == "system" and m["kind"] == "note"]


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def assert_refusal_reported(settings: Settings, gw: Gateway, smarthost: RefusingSmarthost,
                            number: int, dead: OutboxItem, answer: str) -> None:
    """The row is dead after one attempt with the answer; agents told; ticket records it;
    delivering the row again changes nothing."""
    assert dead.status == OutboxStatus.DEAD and dead.attempts == 1
    assert answer in dead.last_error
    (notice,) = rows(gw, kind="delivery_failed")
    assert notice.rcpt_to == AGENTS and notice.status == OutboxStatus.SENT
    assert notice.ticket_number == number
    (mail,) = [m for m in smarthost.mail_to(AGENTS)
               if "Delivery failed" in str(m["Subject"])]
    assert str(mail["Subject"]).startswith(f"[#{number}] Delivery failed")
    assert mail["Auto-Submitted"] == "auto-generated"
    text = body_text(mail)
    assert dead.rcpt_to in text and answer in text and f"outbox {dead.id}" in text
    (event,) = system_events(settings, number)
    assert event["kind"] == "note"
    assert dead.rcpt_to in event["text"] and answer in event["text"]

    # A second run of delivery (a redelivered job, the sweep) changes nothing.
    before = (len(smarthost.answers), len(smarthost.received), len(rows(gw)))
    assert deliver_outbox_item(gw.db, gw.transport, settings, dead.id) == "skipped"
    (again,) = rows(gw, id=dead.id)
    assert (again.status, again.attempts, again.last_error) == (
        OutboxStatus.DEAD, 1, dead.last_error)
    assert (len(smarthost.answers), len(smarthost.received), len(rows(gw))) == before
    assert len(system_events(settings, number)) == 1


def test_552_at_mail_from_for_a_too_large_reply_is_dead_at_once_and_reported(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    # Given a smarthost with a size limit, and a ticket whose mail so far passed it
    smarthost.max_size = 100_000
    number, _ = open_ticket(settings, gw, sender=MAX)
    assert [r.status for r in rows(gw)] == [OutboxStatus.SENT] * len(rows(gw))
    # When an agent answers with a file larger than the smarthost takes
    reply = EmailMessage()
    for name, value in message_from_bytes(make_mail(
            sender="kenji@support.example", sender_name="Kenji",
            subject=f"Re: [#{number}] VPN drops every hour", body="x",
            headers=passed("support.example")), policy=policy.default).items():
        if name.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}:
            reply[name] = value
    reply.set_content("Here is the full diagnostic bundle.")
    reply.add_attachment(b"\x00" * 200_000, maintype="application", subtype="octet-stream",
                         filename="bundle.bin")
    deliver(settings, gw, reply.as_bytes(policy=policy.SMTP), mail_from="kenji@support.example")
    # Then the relay is dead after one attempt with the server's answer, and reported
    (dead,) = rows(gw, kind="agent_reply")
    assert "MAIL FROM" in dead.last_error
    assert_refusal_reported(settings, gw, smarthost, number, dead,
                            "552 5.3.4 Message size exceeds fixed limit")
    assert smarthost.mail_to(MAX) and not [m for m in smarthost.mail_to(MAX)
                                           if "bundle.bin" in str(m.as_bytes())]
    time.sleep(1.5)  # the sweep runs every second in tests: no retry follows
    assert len([a for a in smarthost.answers if a.startswith("MAIL FROM")]) == 1


def test_550_at_rcpt_to_is_dead_at_once_and_reported(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_rcpt[MAX] = ["550 5.1.1 <max@acme.example>: Recipient address rejected"]
    number, _ = open_ticket(settings, gw, sender=MAX)
    (dead,) = rows(gw, kind="acknowledgement")
    assert "RCPT TO" in dead.last_error
    assert_refusal_reported(settings, gw, smarthost, number, dead,
                            "550 5.1.1 <max@acme.example>: Recipient address rejected")
    # The agents' own notice of the request went through as usual.
    assert [r.status for r in rows(gw, kind="agents_notice")] == [OutboxStatus.SENT]


def test_554_at_end_of_data_is_dead_at_once_and_reported(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_data[MAX] = ["554 5.7.1 Message rejected as spam"]
    number, _ = open_ticket(settings, gw, sender=MAX)
    (dead,) = rows(gw, kind="acknowledgement")
    assert "DATA" in dead.last_error
    assert_refusal_reported(settings, gw, smarthost, number, dead,
                            "554 5.7.1 Message rejected as spam")


def test_451_stays_pending_and_is_retried_without_a_report(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_data[MAX] = ["451 4.3.0 Try again later", ""]  # then accepted
    number, _ = open_ticket(settings, gw, sender=MAX)
    # open_ticket waits until nothing is pending: the ack was retried and delivered
    (ack,) = rows(gw, kind="acknowledgement")
    assert ack.status == OutboxStatus.SENT and ack.attempts == 2
    assert smarthost.answers.count(f"{MAX}: 451 4.3.0 Try again later") == 1
    assert len(smarthost.mail_to(MAX)) == 1
    assert rows(gw, kind="delivery_failed") == []
    assert system_events(settings, number) == []


@pytest.mark.parametrize("settings", [{"delivery_max_attempts": 2}], indirect=True)
def test_temporary_refusals_past_the_attempt_limit_are_reported_too(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_rcpt[MAX] = ["450 4.2.0 Mailbox busy"]
    number, _ = open_ticket(settings, gw, sender=MAX)
    (dead,) = rows(gw, kind="acknowledgement")
    assert dead.status == OutboxStatus.DEAD and dead.attempts == 2
    assert "450 4.2.0 Mailbox busy" in dead.last_error
    assert [r.rcpt_to for r in rows(gw, kind="delivery_failed")] == [AGENTS]
    (event,) = system_events(settings, number)
    assert "450 4.2.0 Mailbox busy" in event["text"]


def test_a_refused_notice_to_the_agents_is_recorded_but_never_reported_to_them(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_rcpt[AGENTS] = ["550 5.2.2 Mailbox full"]
    number, _ = open_ticket(settings, gw, sender=MAX)
    (dead,) = rows(gw, kind="agents_notice")
    assert dead.status == OutboxStatus.DEAD and dead.attempts == 1
    assert rows(gw, kind="delivery_failed") == []  # no notice about a notice: no loop
    (event,) = system_events(settings, number)
    assert AGENTS in event["text"] and "550 5.2.2 Mailbox full" in event["text"]
    assert [r.status for r in rows(gw, kind="acknowledgement")] == [OutboxStatus.SENT]


@pytest.mark.parametrize("settings", [{"agents_address": ""}], indirect=True)
def test_without_agents_address_the_refusal_is_recorded_on_the_ticket_only(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    smarthost.at_rcpt[MAX] = ["550 5.1.1 No such user"]
    number, _ = open_ticket(settings, gw, sender=MAX)
    (dead,) = rows(gw, kind="acknowledgement")
    assert dead.status == OutboxStatus.DEAD
    assert rows(gw, kind="delivery_failed") == []
    (event,) = system_events(settings, number)
    assert "550 5.1.1 No such user" in event["text"]
    with gw.db.reading() as session:  # the event is internal: a note, never sent
        stored = session.scalars(select(MessageRecord).where(
            MessageRecord.role == "system")).one()
        assert stored.kind == "note" and stored.ticket_number == number


def test_a_mail_reported_bounced_is_never_sent_again(
        smarthost: RefusingSmarthost, running: GatewayServer, gw: Gateway,
        settings: Settings) -> None:
    # Given an acknowledgement the smarthost took, which a delivery report later said
    # failed (the guard-bounce step marks the row bounced)
    open_ticket(settings, gw, sender=MAX)
    (ack,) = rows(gw, kind="acknowledgement")
    assert ack.status == OutboxStatus.SENT
    with gw.db.transaction() as session:
        item = session.get(OutboxItem, ack.id)
        assert item is not None
        item.status = OutboxStatus.BOUNCED
    received = len(smarthost.mail_to(MAX))
    # When its delivery job runs again (a redelivered job)
    outcome = deliver_outbox_item(gw.db, gw.transport, settings, ack.id)
    # Then nothing is sent and the row stays bounced after the same one attempt
    assert outcome == "skipped"
    (again,) = rows(gw, id=ack.id)
    assert (again.status, again.attempts) == (OutboxStatus.BOUNCED, ack.attempts)
    assert len(smarthost.mail_to(MAX)) == received

