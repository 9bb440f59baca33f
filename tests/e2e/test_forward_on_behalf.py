"""Forward on behalf over real SMTP (issue 16): a verified agent who forwards a customer's
mail to support opens the ticket for the customer, who is acknowledged in their language
and in their own thread; the agent's words stay an internal note.  The same forward from an
unverified claim to be the agent, or from a customer, is that sender's own request.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import Participant
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.e2e.test_conversations import (
    AUTHSERV,
    acknowledgement,
    body_text,
    deliver,
    mail_to,
    messages,
    outbox_kinds,
    passed,
    ticket,
)
from tests.mail import make_mail

MAX, KENJI, ANNA = "max@acme.example", "kenji@support.example", "anna@acme.example"
WORDS = "Max called about this, priority please. Internal: he is upset."
ORIGINAL_TEXT = "Since Monday the sync of my files fails with error 42."
FORWARD = (f"{WORDS}\n\n---------- Weitergeleitete Nachricht ---------\n"
           f"Von: Max Member <{MAX}>\nDate: Mo., 30. Nov. 2026 um 09:12 Uhr\n"
           f"Subject: Files: sync fails\nTo: Kenji <{KENJI}>\n\n{ORIGINAL_TEXT}")


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    overrides: dict[str, Any] = {"sender_authentication": "authres", "authserv_id": AUTHSERV}
    return settings_factory(**overrides)


def forwarded(sender: str, *, verified: bool) -> bytes:
    domain = sender.rpartition("@")[2]
    return make_mail(sender=sender, sender_name="Kenji", subject="Fwd: Files: sync fails",
                     body=FORWARD, headers=passed(domain) if verified else {},
                     message_id=make_msgid(domain=domain))


def test_a_verified_agents_forward_opens_the_ticket_for_the_customer(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    row = deliver(settings, gw, forwarded(KENJI, verified=True), mail_from=KENJI)
    number = row.ticket_number
    assert number is not None, row.reason
    opened = ticket(gw, number)
    assert (opened.requester, opened.requester_name, opened.team_id, opened.language,
            opened.subject) == (MAX, "Max Member", "acme", "de", "Files: sync fails")
    assert opened.tier == "enhanced" and opened.product == "files"  # Max's terms, not Kenji's
    first, note = messages(gw, number)
    assert (first.from_address, first.role, first.kind, first.text) == (
        MAX, "requester", "public", ORIGINAL_TEXT)
    assert (note.from_address, note.role, note.kind, note.text) == (
        KENJI, "agent", "note", WORDS)
    with gw.db.reading() as session:
        roles = {p.email: p.role for p in session.scalars(select(Participant).where(
            Participant.ticket_number == number))}
    assert (roles[MAX], roles[KENJI]) == ("requester", "agent")  # (and the team's admin)

    ack = acknowledgement(settings, MAX, number)  # the customer is acknowledged, in German
    assert ack["Subject"] == f"[#{number}] Files: sync fails"
    assert ack["Content-Language"] == "de"
    text = body_text(ack)
    assert "error 42" in text and "upset" not in text and "priority please" not in text
    assert outbox_kinds(gw, MAX) == ["acknowledgement"]
    assert outbox_kinds(gw, KENJI) == []
    assert not any("upset" in body_text(m) for m in mail_to(settings, MAX))


def test_an_attached_original_is_acknowledged_in_its_own_thread(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    original_id = make_msgid(domain="acme.example")
    original = EmailMessage()
    original["From"] = f"Max Member <{MAX}>"
    original["To"] = KENJI
    original["Subject"] = "Files: sync fails"
    original["Message-ID"] = original_id
    original.set_content(ORIGINAL_TEXT)
    mail = EmailMessage()
    for name, value in passed("support.example").items():
        mail[name] = value
    mail["From"] = f"Kenji <{KENJI}>"
    mail["To"] = "support@support.example"
    mail["Subject"] = "FW: Files: sync fails"
    mail["Message-ID"] = make_msgid(domain="support.example")
    mail.set_content(WORDS)
    mail.add_attachment(original)
    row = deliver(settings, gw, mail.as_bytes(), mail_from=KENJI)
    number = row.ticket_number
    assert number is not None, row.reason
    assert ticket(gw, number).requester == MAX
    ack = acknowledgement(settings, MAX, number)
    assert ack["In-Reply-To"] == original_id
    assert [(m.role, m.kind) for m in messages(gw, number)] == [
        ("requester", "public"), ("agent", "note")]

    # Max answers the acknowledgement: his reply joins the ticket as the requester's.
    reply = make_mail(sender=MAX, subject=f"Re: [#{number}] Files: sync fails",
                      body="Still failing.", in_reply_to=str(ack["Message-ID"]),
                      headers=passed("acme.example"))
    assert deliver(settings, gw, reply, mail_from=MAX).ticket_number == number


def test_the_same_forward_from_an_unverified_agent_claim_is_that_senders_own(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    row = deliver(settings, gw, forwarded(KENJI, verified=False), mail_from=KENJI)
    number = row.ticket_number
    assert number is not None, row.reason
    assert ticket(gw, number).requester == KENJI
    [only] = messages(gw, number)
    assert (only.from_address, only.role, only.kind) == (KENJI, "requester", "public")
    assert any(flag.startswith("unverified sender") for flag in only.flags)
    assert outbox_kinds(gw, MAX) == [] and mail_to(settings, MAX) == []


def test_a_customers_forward_is_their_own_request(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    raw = make_mail(sender=ANNA, sender_name="Anna Admin", subject="Fwd: Files: sync fails",
                    body=FORWARD, headers=passed("acme.example"))
    row = deliver(settings, gw, raw, mail_from=ANNA)
    number = row.ticket_number
    assert number is not None, row.reason
    assert ticket(gw, number).requester == ANNA
    assert [(m.from_address, m.role, m.kind) for m in messages(gw, number)] == [
        (ANNA, "requester", "public")]
    assert outbox_kinds(gw, ANNA) == ["acknowledgement"]
    assert outbox_kinds(gw, MAX) == [] and mail_to(settings, MAX) == []
