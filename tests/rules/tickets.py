"""Tickets created through the real pipeline at a chosen arrival time (rules tests)."""

from __future__ import annotations

import email
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from sqlalchemy import select, update

from gateway.models import OutboxItem, SpoolEntry, Ticket
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.spool import store_message
from outbound.recipe import bytes_to_send
from tests.mail import make_mail

RULES_DIRECTORY = Path(__file__).parent.parent / "fixtures" / "rules_directory.toml"
AUTHSERV = "mx.support.example"


def passed(sender: str) -> dict[str, str]:
    """The header our MTA (``tests/rules/conftest.py``) writes when DMARC passed for the
    sender's domain: these helpers send as the genuine directory people they name."""
    domain = sender.rpartition("@")[2]
    return {"Authentication-Results": f"{AUTHSERV}; dmarc=pass header.from={domain}"}


def ticket_at(gateway: Gateway, when: str, *, sender: str, to: str = "support@support.example",
              body: str = "Hello, sync fails since Monday.", subject: str = "Sync fails",
              history: bool = False) -> Ticket:
    """A ticket from a mail that arrived at ``when`` (the spool's arrival time)."""
    stored = store_message(gateway.db, make_mail(sender=sender, to=to, body=body,
                                                 subject=subject, headers=passed(sender)),
                           source="smtp", rcpt_tos=[to], mail_from=sender)
    with gateway.db.transaction() as session:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id).values(
            received_at=datetime.fromisoformat(when),
            options={"history": True} if history else {}))
    outcome = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    assert outcome.state == "processed", outcome.reason
    with gateway.db.transaction() as session:
        ticket = session.scalars(select(Ticket).order_by(Ticket.number.desc())).first()
        assert ticket is not None
        ticket.created_at = datetime.fromisoformat(when)  # the clock starts at arrival
        session.flush()
        session.expunge(ticket)
        return ticket


def reply_at(gateway: Gateway, ticket: Ticket, when: str, *, sender: str,
             body: str = "It fails again.") -> None:
    """A reply to ``ticket`` (threaded by In-Reply-To) that arrived at ``when``."""
    raw = make_mail(sender=sender, subject=f"Re: [#{ticket.number}] {ticket.subject}",
                    body=body, in_reply_to=ticket.origin_message_id, headers=passed(sender))
    stored = store_message(gateway.db, raw, source="smtp", rcpt_tos=["support@support.example"],
                           mail_from=sender)
    with gateway.db.transaction() as session:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id).values(
            received_at=datetime.fromisoformat(when)))
    outcome = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    assert outcome.state == "processed" and outcome.ticket_number == ticket.number, \
        outcome.reason


def outbox_mail(gateway: Gateway, ticket: Ticket, kind: str) -> list[EmailMessage]:
    with gateway.db.reading() as session:
        items = session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_number == ticket.number, OutboxItem.kind == kind)
            .order_by(OutboxItem.id)).all()
        messages = [email.message_from_bytes(
            bytes_to_send(gateway.services.renderer, gateway.services.secret, i),
            policy=default_policy) for i in items]
    assert all(isinstance(m, EmailMessage) for m in messages)
    return messages


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    # Whitespace-normalised: a long promise may be wrapped in the text part.
    return " ".join(str(body.get_content()).split())
