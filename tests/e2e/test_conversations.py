"""Conversations over real SMTP: colleague and agent replies, refusals, statuses,
reopening, duplicates, loops and bounces, and sender authentication (issue 4).

The gateway runs as in production behind an MTA that checks DKIM/DMARC and writes
``Authentication-Results: mx.support.example; …`` (sender_authentication = authres);
mail that did not pass through it carries no such header, or a forged one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.models import (
    BouncingAddress,
    MessageRecord,
    OutboxItem,
    OutboxStatus,
    SpoolEntry,
    SpoolState,
    Ticket,
    TicketStatus,
)
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import run_gateway, settled, wait_for
from tests.mail import maildir_messages, make_mail, send

FIXTURES = Path(__file__).parent.parent / "fixtures"
AUTHSERV = "mx.support.example"


def passed(domain: str) -> dict[str, str]:
    """The header our MTA writes for mail whose DKIM and DMARC passed for ``domain``."""
    return {"Authentication-Results":
            f"{AUTHSERV}; dkim=pass header.d={domain} header.s=mail; "
            f"dmarc=pass (p=reject) header.from={domain}"}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
             ) -> Settings:
    overrides: dict[str, Any] = {"sender_authentication": "authres", "authserv_id": AUTHSERV}
    overrides.update(getattr(request, "param", {}))
    return settings_factory(**overrides)


# -- helpers -------------------------------------------------------------------------

def deliver(settings: Settings, gateway: Gateway, raw: bytes, *, mail_from: str,
            rcpt_to: str = "support@support.example") -> SpoolEntry:
    """Send over SMTP and wait until the message and everything it queued are done."""
    message_id = message_from_bytes(raw, policy=policy.default)["Message-ID"].strip("<>")
    send(settings.smtp_listen, raw, mail_from=mail_from, rcpt_to=rcpt_to)

    def entry() -> SpoolEntry | None:
        with gateway.db.reading() as session:
            row = session.scalar(select(SpoolEntry).where(SpoolEntry.message_id == message_id))
            return row if row is not None and row.state != SpoolState.RECEIVED else None
    row = wait_for(entry, message=f"processing of {message_id}")
    wait_for(lambda: settled(gateway), message="outbox settled")
    return row


def ticket(gateway: Gateway, number: int) -> Ticket:
    with gateway.db.reading() as session:
        found = session.get(Ticket, number)
        assert found is not None
        return found


def messages(gateway: Gateway, number: int) -> list[MessageRecord]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(MessageRecord).where(
            MessageRecord.ticket_number == number).order_by(MessageRecord.id)))


def mail_to(settings: Settings, address: str) -> list[EmailMessage]:
    sent = Path(settings.outbound_url.removeprefix("maildir:"))
    found: list[EmailMessage] = []
    for message in maildir_messages(sent):
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        if address in str(parsed["To"]):
            found.append(parsed)
    return found


def outbox_kinds(gateway: Gateway, rcpt: str) -> list[str]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(OutboxItem.kind).where(
            OutboxItem.rcpt_to == rcpt).order_by(OutboxItem.id)))


def open_ticket(settings: Settings, gateway: Gateway, sender: str = "max@acme.example",
                subject: str = "VPN drops every hour",
                body: str = "Hello, the VPN connection drops every hour since the update.",
                headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A customer opens a ticket; returns its number and the customer's Message-ID."""
    message_id = make_msgid(domain="acme.example")
    row = deliver(settings, gateway, make_mail(sender=sender, subject=subject, body=body,
                                               message_id=message_id, headers=headers or {}),
                  mail_from=sender)
    assert row.ticket_number is not None, row.reason
    return row.ticket_number, message_id.strip("<>")


def acknowledgement(settings: Settings, address: str, number: int) -> EmailMessage:
    acks = [m for m in mail_to(settings, address)
            if str(m["Subject"]).startswith(f"[#{number}]") and m["Auto-Submitted"]]
    assert acks, f"no acknowledgement of #{number} to {address}"
    return acks[0]


def body_text(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


# -- colleague replies ------------------------------------------------------------------

def test_admin_reply_on_members_ticket_is_a_colleague_reply_and_the_requester_is_told(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, max_id = open_ticket(settings, gw)
    reply = make_mail(sender="anna@acme.example", sender_name="Anna Admin",
                      subject=f"Re: [#{number}] VPN drops every hour",
                      body="Max, I restarted the VPN gateway on our side, please try again.",
                      headers=passed("acme.example"))
    deliver(settings, gw, reply, mail_from="anna@acme.example")

    anna = [m for m in messages(gw, number) if m.from_address == "anna@acme.example"]
    assert [(m.role, m.kind, m.flags) for m in anna] == [("colleague", "public", [])]
    notices = [m for m in mail_to(settings, "max@acme.example") if "Anna" in body_text(m)]
    assert len(notices) == 1
    notice = notices[0]
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "colleague_reply"]
    assert notice["Content-Language"] == "de"  # Max reads German
    assert notice["Subject"] == f"[#{number}] VPN drops every hour"
    assert "I restarted the VPN gateway" in body_text(notice)
    # Threading headers continue Max's own thread; replies go to Max's reply address.
    assert notice["In-Reply-To"] == f"<{max_id}>"
    assert f"<{max_id}>" in str(notice["References"])
    assert str(notice["Reply-To"]).startswith("support+")
    assert ticket(gw, number).status == TicketStatus.NEW  # a colleague is no answer


def test_members_reply_on_a_colleagues_ticket_is_refused_and_kept(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw, sender="anna@acme.example", subject="Licence count")
    before = ticket(gw, number)
    reply = make_mail(sender="max@acme.example", subject=f"Re: [#{number}] Licence count",
                      body="We need five more licences, not three.",
                      headers=passed("acme.example"))
    row = deliver(settings, gw, reply, mail_from="max@acme.example")

    assert row.state == SpoolState.IGNORED and row.reason.startswith("refused:")
    assert "only team admins" in row.reason
    assert [m.from_address for m in messages(gw, number)] == ["anna@acme.example"]
    after = ticket(gw, number)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    with gw.db.reading() as session:  # the refused message is kept, raw bytes and all
        kept = session.get(SpoolEntry, row.id)
        assert kept is not None and b"five more licences" in kept.raw
    assert outbox_kinds(gw, "max@acme.example") == ["reply_refused"]
    (refusal,) = mail_to(settings, "max@acme.example")
    # Tagged with the ticket he wrote to, and his own subject: nothing of a ticket he
    # may not see (its subject here happens to be the same words).
    assert refusal["Content-Language"] == "de"
    assert refusal["Subject"] == f"[#{number}] Licence count"


def test_admin_reply_on_a_ticket_from_before_the_cutoff_is_refused(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    old = datetime(2024, 11, 30, 10, 0, tzinfo=UTC)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            created_at=old, updated_at=old))
    reply = make_mail(sender="anna@acme.example", subject=f"Re: [#{number}] VPN",
                      body="Is this still a problem?", headers=passed("acme.example"))
    row = deliver(settings, gw, reply, mail_from="anna@acme.example")
    assert row.state == SpoolState.IGNORED and "cut-off" in row.reason
    assert len(messages(gw, number)) == 1
    assert outbox_kinds(gw, "anna@acme.example") == ["reply_refused"]


def test_admin_copied_on_new_team_tickets_replies_to_the_copy_as_a_colleague(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw, headers=passed("acme.example"))
    (copy,) = mail_to(settings, "olga@acme.example")
    assert copy["Content-Language"] == "nl" and "max@acme.example" in body_text(copy)
    assert copy["Subject"] == f"[#{number}] VPN drops every hour"
    reply_to = str(copy["Reply-To"])
    answer = make_mail(sender="olga@acme.example", to=reply_to,
                       subject=f"Re: {copy['Subject']}", body="Ik kijk er ook naar.",
                       in_reply_to=str(copy["Message-ID"]), headers=passed("acme.example"))
    deliver(settings, gw, answer, mail_from="olga@acme.example", rcpt_to=reply_to)
    olga = [m for m in messages(gw, number) if m.from_address == "olga@acme.example"]
    assert [(m.role, m.threaded_by) for m in olga] == [("colleague", "reply_token")]
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "colleague_reply"]


# -- agent replies ---------------------------------------------------------------------

def agent_mail(number: int, body: str, **extra: Any) -> bytes:
    return make_mail(sender="kenji@support.example", sender_name="Kenji",
                     subject=f"Re: [#{number}] VPN drops every hour", body=body,
                     headers=extra.pop("headers", passed("support.example")), **extra)


def test_agent_reply_is_relayed_from_the_support_address_with_attachments(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, max_id = open_ticket(settings, gw)
    reply = EmailMessage()
    for name, value in message_from_bytes(agent_mail(
            number, "Please install the 2.4.1 client.\n\nOn Monday Max wrote:\n> the VPN "
            "drops"), policy=policy.default).items():
        if name.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}:
            reply[name] = value
    reply.set_content("Please install the 2.4.1 client.\n\nOn Mon, Max wrote:\n> the VPN drops")
    reply.add_attachment(b"%PDF-1.4 guide", maintype="application", subtype="pdf",
                         filename="vpn-guide.pdf")
    deliver(settings, gw, reply.as_bytes(), mail_from="kenji@support.example")

    kenji = [m for m in messages(gw, number) if m.role == "agent"]
    assert len(kenji) == 1 and kenji[0].kind == "public"
    relayed = [m for m in mail_to(settings, "max@acme.example") if not m["Auto-Submitted"]]
    assert len(relayed) == 1
    relay = relayed[0]
    assert relay["Subject"] == f"[#{number}] VPN drops every hour"
    raw = relay.as_bytes()
    assert b"kenji@support.example" not in raw  # the agent's address never shows
    assert "support@support.example" in str(relay["From"])
    text = body_text(relay)
    assert "Please install the 2.4.1 client." in text and "the VPN drops" not in text
    attachments = [(p.get_filename(), p.get_content()) for p in relay.iter_attachments()]
    assert attachments == [("vpn-guide.pdf", b"%PDF-1.4 guide")]
    assert relay["In-Reply-To"] == f"<{max_id}>"
    after = ticket(gw, number)
    assert after.first_response_at is not None and after.status == TicketStatus.OPEN


def test_note_never_leaves_and_status_command_sets_the_status(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "#note\nCustomer is on the old client."),
            mail_from="kenji@support.example")
    ack = acknowledgement(settings, "max@acme.example", number)
    note_address = str(ack["Reply-To"]).replace("@", "+note@")
    deliver(settings, gw, agent_mail(number, "Escalated to the network team.", to=note_address),
            mail_from="kenji@support.example", rcpt_to=note_address)
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    notes = [m for m in messages(gw, number) if m.role == "agent"]
    assert [(m.kind, m.text) for m in notes] == [
        ("note", "Customer is on the old client."), ("note", "Escalated to the network team.")]
    assert ticket(gw, number).first_response_at is None  # notes are no answer

    deliver(settings, gw, agent_mail(number, "#status solved\nFixed in 2.4.1, closing."),
            mail_from="kenji@support.example")
    solved = ticket(gw, number)
    assert solved.status == TicketStatus.SOLVED and solved.resolved_at is not None
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "agent_reply"]
    relay = [m for m in mail_to(settings, "max@acme.example") if not m["Auto-Submitted"]][0]
    assert "Fixed in 2.4.1" in body_text(relay) and "#status" not in body_text(relay)


def test_bare_status_command_sends_a_status_notice_and_is_no_first_response(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "#status pending"),
            mail_from="kenji@support.example")
    after = ticket(gw, number)
    assert after.status == TicketStatus.PENDING
    assert after.first_response_at is None  # a status is no answer: the SLA clock runs on
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "status_notice"]
    (notice,) = [m for m in mail_to(settings, "max@acme.example")
                 if "warten wir auf Informationen" in body_text(m)]
    assert notice["Subject"] == f"[#{number}] VPN drops every hour"  # no status prefix


def agent_attachment_mail(number: int, body: str) -> bytes:
    """Kenji's reply carrying a PDF; ``body`` is its whole text part."""
    reply = EmailMessage()
    for name, value in message_from_bytes(agent_mail(number, "x"), policy=policy.default
                                          ).items():
        if name.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}:
            reply[name] = value
    reply.set_content(body)
    reply.add_attachment(b"%PDF-1.4 log", maintype="application", subtype="pdf",
                         filename="diagnosis.pdf")
    return reply.as_bytes()


def test_agent_reply_with_only_an_attachment_is_relayed_and_is_the_first_response(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    # No text at all: only the attachment.
    deliver(settings, gw, agent_attachment_mail(number, ""), mail_from="kenji@support.example")
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "agent_reply"]
    (relay,) = [m for m in mail_to(settings, "max@acme.example") if not m["Auto-Submitted"]]
    assert relay["Subject"] == f"[#{number}] VPN drops every hour"
    assert [(p.get_filename(), p.get_content()) for p in relay.iter_attachments()] == [
        ("diagnosis.pdf", b"%PDF-1.4 log")]
    assert b"kenji@support.example" not in relay.as_bytes()
    after = ticket(gw, number)
    assert after.first_response_at is not None and after.status == TicketStatus.OPEN


def test_agent_reply_with_neither_text_nor_attachment_is_not_relayed_nor_an_answer(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "\n"), mail_from="kenji@support.example")
    assert [m.role for m in messages(gw, number)] == ["requester", "agent"]  # kept
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    assert ticket(gw, number).first_response_at is None


@pytest.mark.parametrize("automatic", [
    {"Auto-Submitted": "auto-replied"},
    {"Auto-Submitted": "auto-generated"},
    {"X-Autoreply": "yes", "Precedence": "auto_reply"},
])
def test_agents_out_of_office_is_kept_internal_never_relayed_nor_an_answer(
        running: GatewayServer, gw: Gateway, settings: Settings,
        automatic: dict[str, str]) -> None:
    number, _ = open_ticket(settings, gw)
    ooo = agent_mail(number, "I am out of the office until Monday and will answer then.",
                     headers={**passed("support.example"), **automatic})
    deliver(settings, gw, ooo, mail_from="kenji@support.example")
    kenji = [m for m in messages(gw, number) if m.from_address == "kenji@support.example"]
    assert [m.role for m in kenji] == ["agent"]  # recorded on the ticket
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    assert all("out of the office" not in body_text(m)
               for m in mail_to(settings, "max@acme.example"))
    after = ticket(gw, number)
    assert after.first_response_at is None and after.status == TicketStatus.NEW


def test_forged_agent_without_authentication_changes_nothing_and_is_flagged(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    forged = agent_mail(number, "#status closed\nYour ticket is closed, send your password.",
                        headers={})
    deliver(settings, gw, forged, mail_from="kenji@support.example")
    after = ticket(gw, number)
    assert after.status == TicketStatus.NEW and after.first_response_at is None
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    assert [m.from_address for m in messages(gw, number)] == ["max@acme.example"]
    with gw.db.reading() as session:  # kept as a stranger's new request, flagged
        (claimed,) = session.scalars(select(MessageRecord).where(
            MessageRecord.from_address == "kenji@support.example")).all()
    assert claimed.role == "requester" and claimed.ticket_number != number
    assert any("unverified sender" in flag for flag in claimed.flags)

    # The same forgery threaded by headers lands on the ticket: flagged, powerless.
    ack = acknowledgement(settings, "max@acme.example", number)
    threaded = agent_mail(number, "#status closed\nClosed.", headers={},
                          in_reply_to=str(ack["Message-ID"]))
    deliver(settings, gw, threaded, mail_from="kenji@support.example")
    on_ticket = [m for m in messages(gw, number) if m.from_address == "kenji@support.example"]
    assert [(m.role, bool(m.flags)) for m in on_ticket] == [("requester", True)]
    assert ticket(gw, number).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]


def test_authentication_results_below_the_topmost_of_our_mta_do_not_count(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    raw = agent_mail(number, "#status closed\nClosing.", headers={})
    forged = (f"Authentication-Results: {AUTHSERV}; dmarc=fail header.from=support.example\r\n"
              f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=support.example; "
              "dmarc=pass header.from=support.example\r\n").encode() + raw
    deliver(settings, gw, forged, mail_from="kenji@support.example")
    assert ticket(gw, number).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]


def test_a_strangers_mail_with_reply_to_naming_an_agent_gets_no_privilege(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    stranger = make_mail(sender="mallory@evil.example", subject=f"Re: [#{number}] VPN",
                         body="#status closed\nDone.",
                         headers={"Reply-To": "kenji@support.example",
                                  **passed("evil.example")})
    deliver(settings, gw, stranger, mail_from="mallory@evil.example")
    assert ticket(gw, number).status == TicketStatus.NEW
    assert [m.from_address for m in messages(gw, number)] == ["max@acme.example"]


@pytest.mark.parametrize("settings", [{"sender_authentication": "token", "authserv_id": ""}],
                         indirect=True)
def test_development_token_mode_trusts_a_reply_token_only_for_its_participant(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    maxs = str(acknowledgement(settings, "max@acme.example", number)["Reply-To"])
    # Anna with only the subject tag: no token, so no privilege.
    deliver(settings, gw, make_mail(sender="anna@acme.example", subject=f"Re: [#{number}] VPN",
                                    body="Trying with the tag only."),
            mail_from="anna@acme.example")
    # Anna writing to Max's reply address: that token vouches for Max, not for her.
    deliver(settings, gw, make_mail(sender="anna@acme.example", to=maxs, subject="Re: VPN",
                                    body="Trying via the reply address."),
            mail_from="anna@acme.example", rcpt_to=maxs)
    anna = [(m.role, bool(m.flags)) for m in messages(gw, number)
            if m.from_address == "anna@acme.example"]
    assert anna == [("requester", True), ("requester", True)]
    # Max through his own reply address: verified, no flag.
    deliver(settings, gw, make_mail(sender="max@acme.example", to=maxs, subject="Re: VPN",
                                    body="It still drops."),
            mail_from="max@acme.example", rcpt_to=maxs)
    assert [(m.role, m.flags) for m in messages(gw, number)][-1] == ("requester", [])
    # A forged reply token verifies nobody.
    forged = maxs.split("+", 1)[0] + f"+{number}-1-aaaaaaaaaaaaaaaa@support.example"
    deliver(settings, gw, agent_mail(number, "#status closed\nClosed.", headers={},
                                     to=forged),
            mail_from="kenji@support.example", rcpt_to=forged)
    assert ticket(gw, number).status == TicketStatus.NEW


# -- statuses and reopening ------------------------------------------------------------

def test_reply_to_pending_ticket_opens_it_and_reply_to_solved_reopens_within_the_window(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "#status pending\nWhich client version?"),
            mail_from="kenji@support.example")
    assert ticket(gw, number).status == TicketStatus.PENDING
    deliver(settings, gw, make_mail(sender="max@acme.example", subject=f"Re: [#{number}] VPN",
                                    body="Version 2.3."), mail_from="max@acme.example")
    assert ticket(gw, number).status == TicketStatus.OPEN

    deliver(settings, gw, agent_mail(number, "#status solved\nPlease update."),
            mail_from="kenji@support.example")
    assert ticket(gw, number).status == TicketStatus.SOLVED
    deliver(settings, gw, make_mail(sender="max@acme.example", subject=f"Re: [#{number}] VPN",
                                    body="Updating did not help.",
                                    headers=passed("acme.example")),
            mail_from="max@acme.example")
    assert ticket(gw, number).status == TicketStatus.OPEN
    assert outbox_kinds(gw, "max@acme.example")[-1] == "reopened"
    reopened = [m for m in mail_to(settings, "max@acme.example") if "daher wieder geöffnet"
                in body_text(m)]
    assert [m["Subject"] for m in reopened] == [f"[#{number}] VPN drops every hour"]
    with gw.db.reading() as session:
        assert session.scalar(select(Ticket.number).where(Ticket.follows == number)) is None


def test_reply_to_a_closed_ticket_after_the_window_opens_a_new_linked_ticket(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "#status closed\nDone."),
            mail_from="kenji@support.example")
    long_ago = datetime.now(UTC) - timedelta(days=settings.reopen_window_days + 1)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            resolved_at=long_ago))
    row = deliver(settings, gw, make_mail(sender="max@acme.example",
                                          subject=f"Re: [#{number}] VPN",
                                          body="It is back again."),
                  mail_from="max@acme.example")
    assert row.ticket_number is not None and row.ticket_number != number
    follow_up = ticket(gw, row.ticket_number)
    assert follow_up.follows == number and follow_up.status == TicketStatus.NEW
    assert ticket(gw, number).status == TicketStatus.CLOSED


# -- duplicates --------------------------------------------------------------------------

def test_a_repeated_request_is_linked_as_a_duplicate_and_the_requester_told(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    first, _ = open_ticket(settings, gw, subject="Printer offline")
    row = deliver(settings, gw, make_mail(sender="max@acme.example",
                                          subject="FW: printer  OFFLINE",
                                          body="Any news? The printer is still offline."),
                  mail_from="max@acme.example")
    assert row.ticket_number is not None and row.ticket_number != first
    duplicate = ticket(gw, row.ticket_number)
    assert duplicate.duplicate_of == first and duplicate.status == TicketStatus.CLOSED
    assert ticket(gw, first).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "duplicate_notice"]
    notice = [m for m in mail_to(settings, "max@acme.example")
              if f"#{row.ticket_number}" in body_text(m)]
    assert len(notice) == 1
    # Tagged like the ticket the replies go to: the original, with its own subject.
    assert notice[0]["Subject"] == f"[#{first}] Printer offline"
    # Answering the notice adds to the ticket that holds the request.
    reply_to = str(notice[0]["Reply-To"])
    deliver(settings, gw, make_mail(sender="max@acme.example", to=reply_to,
                                    subject="Re: printer", body="Model HP 4000."),
            mail_from="max@acme.example", rcpt_to=reply_to)
    assert messages(gw, first)[-1].text == "Model HP 4000."


def test_near_identical_text_is_a_duplicate_even_with_another_subject(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    body = "Since this morning nobody in the Munich office can log in to the portal."
    first, _ = open_ticket(settings, gw, subject="Login problem", body=body)
    row = deliver(settings, gw, make_mail(sender="max@acme.example", subject="URGENT!!",
                                          body=body + "!"), mail_from="max@acme.example")
    assert row.ticket_number is not None and ticket(gw, row.ticket_number).duplicate_of == first


# -- languages ---------------------------------------------------------------------------

def test_a_person_without_a_language_is_answered_in_the_teams_language(
        running: GatewayServer, gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    directory = tmp_path / "initech.toml"
    directory.write_text('[[teams]]\nid = "initech"\nname = "Initech AG"\nlanguage = "de"\n\n'
                         '[[people]]\nemail = "peter@initech.example"\nname = "Peter"\n'
                         'team = "initech"\n')
    loaded = run_gateway(settings, "directory", "load", str(directory))
    assert loaded.returncode == 0, loaded.stderr.decode()
    number, _ = open_ticket(settings, gw, sender="peter@initech.example",
                            subject="Drucker druckt nicht",
                            body="Hallo, unser Drucker im zweiten Stock druckt nichts mehr.")
    ack = acknowledgement(settings, "peter@initech.example", number)
    assert ack["Content-Language"] == "de"
    assert ack["Subject"] == f"[#{number}] Drucker druckt nicht"
    assert "vielen Dank für Ihre Nachricht" in body_text(ack)


# -- automatic mail ----------------------------------------------------------------------

def test_out_of_office_answer_to_an_acknowledgement_is_recorded_and_not_answered(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    ack = acknowledgement(settings, "max@acme.example", number)
    ooo = make_mail(sender="max@acme.example", subject=f"Abwesenheitsnotiz: {ack['Subject']}",
                    body="Ich bin bis 3. Dezember nicht im Büro.",
                    in_reply_to=str(ack["Message-ID"]),
                    headers={"Auto-Submitted": "auto-replied"})
    deliver(settings, gw, ooo, mail_from="max@acme.example")
    recorded = messages(gw, number)[-1]
    assert (recorded.role, recorded.kind) == ("requester", "auto_reply")
    assert ticket(gw, number).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]


def test_an_autoresponder_that_keeps_writing_gets_at_most_the_hourly_cap(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # A naive autoresponder answers each acknowledgement with a fresh mail and no
    # automatic-mail headers: every one opens a ticket, but the acknowledgements stop.
    for round_ in range(settings.ack_limit_per_hour + 3):
        deliver(settings, gw, make_mail(
            sender="robot@partner.example", subject=f"Your message {round_ * 7919} received",
            body=f"Ticket {round_ * 104729} was created in our system at step {round_}."),
            mail_from="robot@partner.example")
    kinds = outbox_kinds(gw, "robot@partner.example")
    assert len(kinds) == settings.ack_limit_per_hour


def dsn_for(ack: Message, recipient: str) -> bytes:
    """A Postfix-style RFC 3464 report for our acknowledgement to ``recipient``."""
    headers = "".join(f"{k}: {v}\r\n" for k, v in ack.items()
                      if k.lower() in {"from", "to", "subject", "message-id", "date"})
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: support@support.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.acme.example')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: "
        "User unknown\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n--B--\r\n").encode()


def test_a_bounce_of_an_acknowledgement_opens_no_ticket_and_marks_the_outbox_row(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw, sender="ghost@acme.example")
    ack = acknowledgement(settings, "ghost@acme.example", number)
    row = deliver(settings, gw, dsn_for(ack, "ghost@acme.example"), mail_from="")
    assert row.state == SpoolState.IGNORED and row.ticket_number is None
    with gw.db.reading() as session:
        assert session.scalar(select(Ticket.number).order_by(Ticket.number.desc())) == number
        item = session.scalar(select(OutboxItem).where(OutboxItem.kind == "acknowledgement"))
        assert item is not None and item.status == OutboxStatus.BOUNCED
        assert item.bounced_at is not None and "bounced" in item.last_error
        bouncing = session.get(BouncingAddress, "ghost@acme.example")
        assert bouncing is not None and bouncing.hard
    # No more automatic answers to a dead address.
    open_ticket(settings, gw, sender="ghost@acme.example", subject="Another thing",
                body="A completely different question about invoices and their numbering.")
    assert outbox_kinds(gw, "ghost@acme.example") == ["acknowledgement"]


# -- notices to the support team (agents_address) ------------------------------------------

AGENTS = "agents@support.example"
with_agents = pytest.mark.parametrize(
    "settings", [{"agents_address": AGENTS}], indirect=True)


def agents_notices(settings: Settings, number: int) -> list[EmailMessage]:
    return [m for m in mail_to(settings, AGENTS) if str(m["Subject"]).startswith(f"[#{number}]")]


@with_agents
def test_a_new_request_is_announced_to_the_agents_and_their_answer_reaches_the_customer(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    request = EmailMessage()
    for name, value in message_from_bytes(make_mail(
            sender="max@acme.example", sender_name="Max Member", subject="VPN drops every hour",
            body="x"), policy=policy.default).items():
        if name.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}:
            request[name] = value
    request.set_content("Hello, the VPN connection drops every hour since the update.")
    request.add_attachment(b"2026-11-23 vpn: lost carrier", maintype="text", subtype="plain",
                           filename="vpn.log")
    max_id = str(request["Message-ID"])
    row = deliver(settings, gw, request.as_bytes(), mail_from="max@acme.example")
    number = row.ticket_number
    assert number is not None

    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    assert outbox_kinds(gw, AGENTS) == ["agents_notice"]
    (notice,) = mail_to(settings, AGENTS)
    ack = acknowledgement(settings, "max@acme.example", number)
    assert notice["Subject"] == f"[#{number}] VPN drops every hour"
    assert "support@support.example" in str(notice["From"])
    reply_to = str(notice["Reply-To"])
    assert reply_to.startswith("support+") and reply_to.endswith("@support.example")
    assert reply_to != str(ack["Reply-To"])  # the agents' own address on the ticket
    assert notice["Auto-Submitted"] == "auto-generated"
    assert notice["In-Reply-To"] == max_id and max_id in str(notice["References"])
    assert notice["Content-Language"] == "en"  # Max reads German; the agents English
    text = body_text(notice)
    assert "> Hello, the VPN connection drops every hour since the update." in text
    assert "Max Member <max@acme.example>" in text and "Acme GmbH" in text
    with gw.db.reading() as session:
        opened = session.get(Ticket, number)
        assert opened is not None and opened.first_response_due is not None
        tier, queue = opened.tier, opened.queue
        due = opened.first_response_due.strftime("%Y-%m-%d %H:%M UTC")
    assert f"Tier:       {tier}" in text and f"Queue:      {queue}" in text
    assert f"First response due: {due}" in text
    attachments = [(p.get_filename(), p.get_content()) for p in notice.iter_attachments()]
    assert attachments == [("vpn.log", "2026-11-23 vpn: lost carrier")]

    # Kenji answers the notice from his own (authenticated) address: an agent reply.
    answer = make_mail(sender="kenji@support.example", sender_name="Kenji", to=reply_to,
                       subject=f"Re: {notice['Subject']}",
                       body="Please install the 2.4.1 client.\n\nOn Monday Example Support "
                            "wrote:\n> Hello, the VPN connection drops",
                       in_reply_to=str(notice["Message-ID"]), headers=passed("support.example"))
    deliver(settings, gw, answer, mail_from="kenji@support.example", rcpt_to=reply_to)
    kenji = [m for m in messages(gw, number) if m.from_address == "kenji@support.example"]
    assert [(m.role, m.kind) for m in kenji] == [("agent", "public")]
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "agent_reply"]
    (relay,) = [m for m in mail_to(settings, "max@acme.example") if not m["Auto-Submitted"]]
    assert "Please install the 2.4.1 client." in body_text(relay)
    assert reply_to.encode() not in relay.as_bytes()  # the agents' address stays theirs
    assert b"kenji@support.example" not in relay.as_bytes()
    after = ticket(gw, number)
    assert after.first_response_at is not None and after.status == TicketStatus.OPEN
    assert outbox_kinds(gw, AGENTS) == ["agents_notice"]  # an agent's mail: no notice


@with_agents
def test_a_follow_up_gets_a_short_notice_and_an_out_of_office_none(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    (first,) = agents_notices(settings, number)
    ack = acknowledgement(settings, "max@acme.example", number)
    follow_up_id = make_msgid(domain="acme.example")
    deliver(settings, gw, make_mail(sender="max@acme.example", to=str(ack["Reply-To"]),
                                    subject=f"Re: {ack['Subject']}", message_id=follow_up_id,
                                    body="It also drops on the office Wi-Fi."),
            mail_from="max@acme.example", rcpt_to=str(ack["Reply-To"]))
    assert outbox_kinds(gw, AGENTS) == ["agents_notice", "agents_notice"]
    second = [m for m in agents_notices(settings, number)
              if m["Message-ID"] != first["Message-ID"]][0]
    text = body_text(second)
    assert text.startswith(f"New message on [#{number}] from max@acme.example (the requester")
    assert "> It also drops on the office Wi-Fi." in text and "Tier:" not in text
    assert second["Subject"] == f"[#{number}] VPN drops every hour"
    assert second["Reply-To"] == first["Reply-To"]
    assert second["In-Reply-To"] == follow_up_id
    assert str(first["Message-ID"]) in str(second["References"])  # one thread for agents

    # The customer's out-of-office and a colleague admin's words.
    deliver(settings, gw, make_mail(sender="max@acme.example", subject=f"Re: {ack['Subject']}",
                                    body="Ich bin bis 3. Dezember nicht im Büro.",
                                    in_reply_to=str(ack["Message-ID"]),
                                    headers={"Auto-Submitted": "auto-replied"}),
            mail_from="max@acme.example")
    assert outbox_kinds(gw, AGENTS) == ["agents_notice", "agents_notice"]
    deliver(settings, gw, make_mail(sender="anna@acme.example", sender_name="Anna Admin",
                                    subject=f"Re: [#{number}] VPN drops every hour",
                                    body="Our firewall was updated on Monday.",
                                    headers=passed("acme.example")),
            mail_from="anna@acme.example")
    assert outbox_kinds(gw, AGENTS) == ["agents_notice"] * 3
    (third,) = [body_text(m) for m in agents_notices(settings, number)
                if "firewall" in body_text(m)]
    assert "(a team admin of the requester, team Acme GmbH)" in third
    assert "> Our firewall was updated on Monday." in third


@pytest.mark.parametrize("settings", [{"agents_address": AGENTS,
                                       "sender_authentication": "token", "authserv_id": ""}],
                         indirect=True)
def test_in_token_mode_the_agents_address_makes_an_agent_of_no_customer(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    (notice,) = agents_notices(settings, number)
    reply_to = str(notice["Reply-To"])
    # A customer who got hold of the agents' reply address: still only a customer.
    deliver(settings, gw, make_mail(sender="max@acme.example", to=reply_to, subject="Re: VPN",
                                    body="#status closed\nClose it."),
            mail_from="max@acme.example", rcpt_to=reply_to)
    assert [m.role for m in messages(gw, number)] == ["requester", "requester"]
    assert ticket(gw, number).status == TicketStatus.NEW
    assert "agent_reply" not in outbox_kinds(gw, "max@acme.example")
    # A directory agent through it: the token alone vouches in development mode.
    deliver(settings, gw, agent_mail(number, "#status pending\nWhich client version?",
                                     headers={}, to=reply_to),
            mail_from="kenji@support.example", rcpt_to=reply_to)
    assert [m.role for m in messages(gw, number)][-1] == "agent"
    assert ticket(gw, number).status == TicketStatus.PENDING
    assert outbox_kinds(gw, "max@acme.example")[-1] == "agent_reply"


@pytest.mark.parametrize("settings", [{"agents_address": "Support@Support.example"}],
                         indirect=True)
def test_agents_address_naming_the_support_address_sends_nothing_to_it(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    assert outbox_kinds(gw, "support@support.example") == []
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    with gw.db.reading() as session:
        spool = session.scalar(select(SpoolEntry).where(SpoolEntry.ticket_number == number))
        assert spool is not None
        assert any("our own support address" in step["explanation"] for step in spool.trace)


# -- the #tickets mail command ----------------------------------------------------------

def ticket_count(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return len(list(session.scalars(select(Ticket.number))))


def ask_for_tickets(settings: Settings, gateway: Gateway, sender: str, first_line: str = "#tickets",
                    **extra: Any) -> tuple[SpoolEntry, str]:
    """Send a ``#tickets`` mail; returns the spool row and the request's Message-ID."""
    message_id = make_msgid(domain="client.example")
    raw = make_mail(sender=sender, subject="my tickets", message_id=message_id,
                    body=f"\n{first_line}\n\nThanks!", **extra)
    return deliver(settings, gateway, raw, mail_from=sender), message_id


def listed(message: Message) -> list[int]:
    """The ticket numbers of a ticket list, in the order shown."""
    return [int(n) for n in re.findall(r"^\[#(\d+)\] .+ — .+ — \d{4}-\d{2}-\d{2}$",
                                       body_text(message), re.MULTILINE)]


def ticket_lists(settings: Settings, address: str) -> list[Message]:
    return [m for m in mail_to(settings, address) if not str(m["Subject"]).startswith("[#")]


def test_a_member_gets_only_their_own_tickets_and_no_ticket_is_opened(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    own, _ = open_ticket(settings, gw)
    other, _ = open_ticket(settings, gw, sender="anna@acme.example", subject="Licence count",
                           body="We need five more licences for the new office.")
    before = ticket_count(gw)
    row, request_id = ask_for_tickets(settings, gw, "max@acme.example",
                                      headers={"Reply-To": "someone@elsewhere.example",
                                               **passed("acme.example")})

    assert row.state == SpoolState.IGNORED and row.ticket_number is None
    assert row.reason == "command: ticket list (1 found) sent to max@acme.example"
    assert ticket_count(gw) == before
    (answer,) = ticket_lists(settings, "max@acme.example")
    assert listed(answer) == [own] and other not in listed(answer)
    assert f"[#{own}] VPN drops every hour — neu — " in body_text(answer)  # Max reads German
    assert answer["Subject"] == "Ihre Anfragen" and answer["Content-Language"] == "de"
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["In-Reply-To"] == request_id and request_id in str(answer["References"])
    assert answer["Reply-To"] is None  # no ticket: a reply is new mail to support
    assert mail_to(settings, "someone@elsewhere.example") == []  # From only, never Reply-To
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "ticket_list"]


def test_an_admin_sees_team_tickets_from_the_cutoff_on_but_not_older_ones(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    recent, _ = open_ticket(settings, gw)
    old, _ = open_ticket(settings, gw, subject="Printer offline",
                         body="The printer in room 4 is offline again, please help.")
    own, _ = open_ticket(settings, gw, sender="anna@acme.example", subject="Licence count",
                         body="We need five more licences for the new office.")
    stranger, _ = open_ticket(settings, gw, sender="giulia@globex.example",
                              subject="Fattura", body="La fattura di novembre manca ancora.")
    before_cutoff = datetime(2024, 11, 30, 10, 0, tzinfo=UTC)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == old).values(
            created_at=before_cutoff, updated_at=before_cutoff))
    ask_for_tickets(settings, gw, "anna@acme.example", headers=passed("acme.example"))
    (answer,) = ticket_lists(settings, "anna@acme.example")
    assert sorted(listed(answer)) == sorted([recent, own])
    assert old not in listed(answer) and stranger not in listed(answer)
    assert listed(answer)[0] == own  # newest update first
    # The cut-off is about team tickets only: Max still sees his own old one.
    ask_for_tickets(settings, gw, "max@acme.example", headers=passed("acme.example"))
    (max_answer,) = ticket_lists(settings, "max@acme.example")
    assert listed(max_answer) == [recent, old]  # the oldest update comes last


@pytest.mark.parametrize("settings", [{"ack_limit_per_hour": 10}], indirect=True)
def test_tickets_all_includes_an_old_closed_ticket_that_the_plain_list_leaves_out(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    current, _ = open_ticket(settings, gw)
    closed, _ = open_ticket(settings, gw, subject="Printer offline",
                            body="The printer in room 4 is offline again, please help.")
    long_ago = datetime.now(UTC) - timedelta(days=90)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == closed).values(
            status=TicketStatus.CLOSED, created_at=long_ago, updated_at=long_ago,
            resolved_at=long_ago))
    verified = passed("acme.example")
    ask_for_tickets(settings, gw, "max@acme.example", headers=verified)
    ask_for_tickets(settings, gw, "max@acme.example", "#tickets all", headers=verified)
    since = (long_ago - timedelta(days=1)).date().isoformat()
    ask_for_tickets(settings, gw, "max@acme.example", f"#TICKETS since {since}",
                    headers=verified)
    plain, everything, from_day = ticket_lists(settings, "max@acme.example")
    assert listed(plain) == [current]
    assert "#tickets all" in body_text(plain)  # tells how to see the older ones
    assert listed(everything) == [current, closed]  # open ones first
    assert f"[#{closed}] Printer offline — geschlossen — {long_ago.date().isoformat()}" in (
        body_text(everything))
    assert listed(from_day) == [current, closed]
    assert ticket_count(gw) == 2


def test_an_unknown_sender_gets_the_empty_answer(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    row, _ = ask_for_tickets(settings, gw, "someone@nowhere.example",
                             headers=passed("nowhere.example"))
    assert row.state == SpoolState.IGNORED and "ticket list (0 found)" in row.reason
    (answer,) = ticket_lists(settings, "someone@nowhere.example")
    assert answer["Subject"] == "Your tickets"
    assert "No tickets found for this address." in body_text(answer)
    assert listed(answer) == [] and ticket_count(gw) == 0


def test_an_out_of_office_with_the_command_gets_nothing_and_opens_nothing(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    open_ticket(settings, gw)
    row, _ = ask_for_tickets(settings, gw, "max@acme.example",
                             headers={"Auto-Submitted": "auto-replied"})
    assert row.state == SpoolState.IGNORED and row.ticket_number is None
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    row, _ = ask_for_tickets(settings, gw, "max@acme.example",
                             headers={"Precedence": "bulk", "List-Id": "<news.acme.example>"})
    assert row.state == SpoolState.IGNORED and "automatic mail" in row.reason
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    assert ticket_count(gw) == 1


def test_the_command_in_a_reply_on_a_ticket_is_just_text(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, max_id = open_ticket(settings, gw)
    reply = make_mail(sender="max@acme.example", subject=f"Re: [#{number}] VPN drops every hour",
                      body="#tickets\nStill dropping.", in_reply_to=f"<{max_id}>")
    row = deliver(settings, gw, reply, mail_from="max@acme.example")
    assert row.state == SpoolState.PROCESSED and row.ticket_number == number
    assert "#tickets" in messages(gw, number)[-1].text
    assert "ticket_list" not in outbox_kinds(gw, "max@acme.example")


def test_ticket_lists_count_against_the_hourly_cap_of_automatic_answers(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    for _ in range(settings.ack_limit_per_hour + 1):
        row, _ = ask_for_tickets(settings, gw, "someone@nowhere.example",
                                 headers=passed("nowhere.example"))
    assert row.state == SpoolState.IGNORED and "loop brake" in row.reason
    assert len(ticket_lists(settings, "someone@nowhere.example")) == settings.ack_limit_per_hour


@with_agents
def test_a_request_carrying_a_delivery_status_file_is_a_ticket_its_file_relayed_as_bytes(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # A customer's own report attached as message/delivery-status (no bounce of ours): the
    # agents' notice with her files failed to compose, and the whole message was quarantined
    raw = (b"From: Anna Admin <anna@acme.example>\r\nTo: support@support.example\r\n"
           b"Subject: Mail to our customer bounced, see report\r\n"
           b"Message-ID: <dsn-attach-1@acme.example>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nHello, our notification mail bounced, "
           b"the report is attached.\r\n--b\r\nContent-Type: message/delivery-status\r\n"
           b"Content-Disposition: attachment; filename=\"report.txt\"\r\n\r\n"
           b"Note: see our log\r\n\r\nLine: 1\r\n\r\n--b--\r\n")
    row = deliver(settings, gw, raw, mail_from="anna@acme.example")
    assert row.ticket_number is not None, row.reason
    (notice,) = agents_notices(settings, row.ticket_number)
    (report,) = [p for p in notice.iter_attachments() if p.get_filename() == "report.txt"]
    assert report.get_content_type() == "application/octet-stream"
    assert b"Note: see our log" in report.get_content()
    assert acknowledgement(settings, "anna@acme.example", row.ticket_number)


def test_a_customers_mail_with_a_real_delivery_report_attached_is_her_request(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # A complete RFC 3464 report (Final-Recipient, Action: failed, Status 5.1.1) inside her
    # own multipart/mixed mail: it was ignored as a bounce, so her request got no ticket
    raw = (b"From: Anna Admin <anna@acme.example>\r\nTo: support@support.example\r\n"
           b"Subject: Our invoice mail to a client bounced\r\n"
           b"Message-ID: <dsn-attach-2@acme.example>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nHello, the invoice we sent through "
           b"your system to bob@client.example bounced, report attached. Why?\r\n"
           b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Reporting-MTA: dns; mx.client.example\r\n\r\n"
           b"Final-Recipient: rfc822; bob@client.example\r\nAction: failed\r\n"
           b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
           b"--b--\r\n")
    row = deliver(settings, gw, raw, mail_from="anna@acme.example")
    assert row.ticket_number is not None, row.reason
    (record,) = messages(gw, row.ticket_number)
    assert "report attached. Why?" in record.text
    assert acknowledgement(settings, "anna@acme.example", row.ticket_number)
