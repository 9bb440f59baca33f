"""Silence and backscatter from a forged sender, replayed over real SMTP (issue 12, 4 and 5).

A forged delivery report must not silence a customer; a verified message lifts a genuine
mark and marks expire; plus/case variants of one mailbox and many mailboxes of one domain
get at most their hourly caps of automatic answers; a sender whose DMARC failed gets no
answer at all, while the message is still stored on its ticket.

The gateway runs behind an MTA that writes ``Authentication-Results: mx.support.example``
(``sender_authentication = authres``), as in ``test_conversations.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import Message
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.models import BouncingAddress, OutboxItem, OutboxStatus, SpoolState, Ticket, utcnow
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.e2e.test_conversations import (
    AUTHSERV,
    acknowledgement,
    deliver,
    dsn_for,
    mail_to,
    open_ticket,
    outbox_kinds,
    passed,
)
from tests.mail import make_mail

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
             ) -> Settings:
    overrides: dict[str, Any] = {"sender_authentication": "authres", "authserv_id": AUTHSERV}
    overrides.update(getattr(request, "param", {}))
    return settings_factory(**overrides)


def request_from(settings: Settings, gw: Gateway, sender: str, subject: str, *,
                 headers: dict[str, str] | None = None) -> int:
    """A new request from ``sender`` (text unique per subject); returns its ticket number."""
    row = deliver(settings, gw, make_mail(
        sender=sender, subject=subject, headers=headers,
        body=f"Question about {subject}: it has not worked since {subject[::-1]}."),
        mail_from=sender)
    assert row.state == SpoolState.PROCESSED and row.ticket_number is not None, row.reason
    return row.ticket_number


def acked(settings: Settings, address: str, number: int) -> bool:
    return any(str(m["Subject"]).startswith(f"[#{number}]") and m["Auto-Submitted"]
               for m in mail_to(settings, address))


def mark_of(gw: Gateway, address: str) -> BouncingAddress | None:
    with gw.db.reading() as session:
        return session.get(BouncingAddress, address)


def stranger_dsn(recipient: str, *, message_id: str | None = None) -> bytes:
    """A well-formed RFC 3464 report, written by a stranger, about mail we never sent."""
    original: Message = Message()
    original["From"] = "Example Support <support@support.example>"
    original["To"] = recipient
    original["Subject"] = "[#1] Your request"
    original["Message-ID"] = message_id or make_msgid(domain="support.example")
    return dsn_for(original, recipient)


# -- bounce marks ---------------------------------------------------------------------------

def test_a_strangers_dsn_naming_a_customer_marks_nothing(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Given a stranger mails us a delivery report that lists Max's address
    row = deliver(settings, gw, stranger_dsn("max@acme.example"), mail_from="")
    # Then it is ignored with the reason, opens no ticket and marks nothing
    assert row.state == SpoolState.IGNORED and row.ticket_number is None
    assert "not about mail we sent" in row.reason and "nothing marked" in row.reason
    assert mark_of(gw, "max@acme.example") is None
    # And Max's next request is acknowledged as usual
    number = request_from(settings, gw, "max@acme.example", "VPN drops",
                          headers=passed("acme.example"))
    assert acked(settings, "max@acme.example", number)


def test_a_report_of_our_mail_to_someone_else_does_not_mark_the_named_address(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Given the stranger got one of our acknowledgements (his own request)
    number = request_from(settings, gw, "mallory@evil.example", "Printer")
    ours = acknowledgement(settings, "mallory@evil.example", number)
    # When he returns it as a "bounce" naming Max instead of himself
    row = deliver(settings, gw, dsn_for(ours, "max@acme.example"), mail_from="")
    # Then nothing is marked, and our outbox row is not called bounced
    assert row.state == SpoolState.IGNORED and "nothing marked" in row.reason
    assert mark_of(gw, "max@acme.example") is None
    with gw.db.reading() as session:
        statuses = set(session.scalars(select(OutboxItem.status).where(
            OutboxItem.rcpt_to == "mallory@evil.example")))
    assert statuses == {OutboxStatus.SENT}


def test_a_genuine_bounce_marks_the_address_until_the_mark_expires(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Given our acknowledgement to ghost@ bounced (a real report about our own mail)
    number, _ = open_ticket(settings, gw, sender="ghost@acme.example")
    ack = acknowledgement(settings, "ghost@acme.example", number)
    row = deliver(settings, gw, dsn_for(ack, "ghost@acme.example"), mail_from="")
    assert "bouncing: ghost@acme.example" in row.reason
    mark = mark_of(gw, "ghost@acme.example")
    assert mark is not None and mark.hard
    # Then ghost's next request gets no acknowledgement, and the trace says why
    second = request_from(settings, gw, "ghost@acme.example", "Invoices")
    assert not acked(settings, "ghost@acme.example", second)
    # When the mark is older than bounce_mark_days
    with gw.db.transaction() as session:
        session.execute(update(BouncingAddress).values(
            last_at=utcnow() - timedelta(days=settings.bounce_mark_days, minutes=1)))
    # Then the next request is acknowledged again
    third = request_from(settings, gw, "ghost@acme.example", "Archive export")
    assert acked(settings, "ghost@acme.example", third)


def test_a_verified_message_clears_the_mark_and_an_unverified_one_does_not(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number = request_from(settings, gw, "max@acme.example", "VPN drops",
                          headers=passed("acme.example"))
    ack = acknowledgement(settings, "max@acme.example", number)
    deliver(settings, gw, dsn_for(ack, "max@acme.example"), mail_from="")
    assert mark_of(gw, "max@acme.example") is not None
    # An unverified mail "from Max" (no pass from our MTA) neither clears nor is answered
    unverified = request_from(settings, gw, "max@acme.example", "Calendar")
    assert not acked(settings, "max@acme.example", unverified)
    assert mark_of(gw, "max@acme.example") is not None
    # Max's verified request clears the mark and is acknowledged
    verified = request_from(settings, gw, "max@acme.example", "Contacts",
                            headers=passed("acme.example"))
    assert mark_of(gw, "max@acme.example") is None
    assert acked(settings, "max@acme.example", verified)


# -- acknowledgement limits -----------------------------------------------------------------

def test_plus_and_case_variants_of_one_mailbox_share_the_hourly_cap(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    variants = ["victim@target.example", "Victim@target.example", "victim+1@target.example",
                "VICTIM+x@target.example", "victim+2@Target.Example", "ViCtIm+shop@target.example"]
    numbers = [request_from(settings, gw, address, f"Order {index * 7919}")
               for index, address in enumerate(variants)]
    # Every message is stored on its own ticket ...
    with gw.db.reading() as session:
        assert len(set(session.scalars(select(Ticket.number).where(
            Ticket.number.in_(numbers))))) == len(variants)
    # ... but the mailbox got at most ack_limit_per_hour acknowledgements in all
    got = [m for m in mail_to(settings, "@") if "victim" in str(m["To"]).lower()]
    assert len(got) == settings.ack_limit_per_hour
    with gw.db.reading() as session:
        assert session.scalar(select(OutboxItem.rcpt_mailbox).where(
            OutboxItem.rcpt_to == "victim+1@target.example")) in (None, "victim@target.example")


@pytest.mark.parametrize("settings", [{"ack_limit_per_domain_per_hour": 3}], indirect=True)
def test_many_mailboxes_of_one_domain_get_at_most_the_domain_cap(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    numbers = [request_from(settings, gw, f"user{index}@target.example", f"Case {index * 31}")
               for index in range(5)]
    answered = [n for i, n in enumerate(numbers)
                if acked(settings, f"user{i}@target.example", n)]
    assert len(answered) == 3 and answered == numbers[:3]


@pytest.mark.parametrize("settings", [{"ack_limit_per_domain_per_hour": 1}], indirect=True)
def test_verified_senders_of_a_team_are_not_held_by_the_domain_cap(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # A team writing in numbers (an outage) is answered: a verified sender is no forgery
    anna = request_from(settings, gw, "anna@acme.example", "Outage",
                        headers=passed("acme.example"))
    max_ = request_from(settings, gw, "max@acme.example", "Outage too",
                        headers=passed("acme.example"))
    assert acked(settings, "anna@acme.example", anna)
    assert acked(settings, "max@acme.example", max_)


# -- DMARC failure --------------------------------------------------------------------------

def test_a_dmarc_failed_sender_gets_no_acknowledgement_but_the_ticket_exists(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    failed = {"Authentication-Results":
              f"{AUTHSERV}; spf=fail smtp.mailfrom=bank.example; "
              "dmarc=fail (p=none) header.from=bank.example"}
    row = deliver(settings, gw, make_mail(
        sender="ceo@bank.example", subject="Urgent: call me",
        body="Please phone this number about your account.", headers=failed),
        mail_from="ceo@bank.example")
    # The message is stored on a new ticket ...
    assert row.state == SpoolState.PROCESSED and row.ticket_number is not None
    with gw.db.reading() as session:
        ticket = session.get(Ticket, row.ticket_number)
        assert ticket is not None and ticket.requester == "ceo@bank.example"
    # ... but nobody at bank.example is mailed, and the trace says why
    assert outbox_kinds(gw, "ceo@bank.example") == []
    assert any("DMARC failed" in step["explanation"] for step in row.trace)


def test_only_the_topmost_header_of_our_mta_speaks_about_dmarc(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # A forged "dmarc=fail" below our MTA's header (added by the sender) changes nothing
    forged_below = (
        f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=globex.example\n"
        f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=globex.example\n"
    ).encode() + make_mail(sender="giulia@globex.example", subject="Billing address",
                           body="Please update our billing address to the new office.")
    row = deliver(settings, gw, forged_below, mail_from="giulia@globex.example")
    assert row.ticket_number is not None
    assert acked(settings, "giulia@globex.example", row.ticket_number)
