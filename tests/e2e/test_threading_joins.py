"""Order-independent threading, case by case over SMTP (issue 14, item 0): a parent that
arrives after its reply, siblings of a missing parent, tickets joined when the missing link
arrives (their tokens and tags lead on), and a stranger who cannot join two customers'
tickets by naming both."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.utils import make_msgid

from sqlalchemy import select

from gateway.config import Settings
from gateway.models import MessageRecord, Participant, SpoolEntry, SpoolState, Ticket
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.tickets import make_reply_token
from tests.conftest import run_gateway, wait_for
from tests.mail import make_mail, send


def deliver(settings: Settings, gateway: Gateway, raw: bytes, sender: str,
            rcpt_to: str = "support@support.example") -> SpoolEntry:
    """Send over SMTP and wait until the message is processed (one at a time: the order
    of each test is the point)."""
    message_id = message_from_bytes(raw, policy=policy.default)["Message-ID"].strip("<>")
    send(settings.smtp_listen, raw, mail_from=sender, rcpt_to=rcpt_to)

    def done() -> SpoolEntry | None:
        with gateway.db.reading() as session:
            row = session.scalar(select(SpoolEntry).where(SpoolEntry.message_id == message_id)
                                 .order_by(SpoolEntry.id.desc()))
            return row if row is not None and row.state != SpoolState.RECEIVED else None
    row: SpoolEntry = wait_for(done, message=f"processing of {message_id}")
    return row


def mail(settings: Settings, gateway: Gateway, sender: str, subject: str, *,
         in_reply_to: str | None = None, references: str | None = None,
         rcpt_to: str = "support@support.example") -> tuple[str, SpoolEntry]:
    message_id = make_msgid(domain=sender.split("@")[1])
    raw = make_mail(sender=sender, subject=subject, body=f"{subject}: a few words of text.",
                    message_id=message_id, in_reply_to=in_reply_to, references=references,
                    to=rcpt_to)
    return message_id, deliver(settings, gateway, raw, sender, rcpt_to)


def ticket_of(gateway: Gateway, message_id: str) -> int:
    with gateway.db.reading() as session:
        number = session.scalar(select(MessageRecord.ticket_number).where(
            MessageRecord.message_id == message_id.strip("<>")))
    assert number is not None, f"{message_id} is on no ticket"
    return int(number)


def ticket_json(settings: Settings, number: int) -> dict[str, object]:
    shown = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr
    view: dict[str, object] = json.loads(shown.stdout)
    return view


def trace_text(row: SpoolEntry) -> str:
    return " | ".join(step["explanation"] for step in row.trace)


def test_a_parent_that_arrives_after_its_reply_joins_and_opens_that_ticket(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    parent_id = make_msgid(domain="customer.example")
    _reply_id, reply = mail(settings, gateway, "bob@customer.example", "Re: Printer on fire",
                            in_reply_to=parent_id, references=parent_id)
    assert reply.reason.startswith("new ticket")
    raw = make_mail(sender="anna@customer.example", subject="Printer on fire",
                    body="The printer in room 4 is on fire.", message_id=parent_id)
    parent = deliver(settings, gateway, raw, "anna@customer.example")
    assert parent.ticket_number == reply.ticket_number
    assert parent.ticket_number is not None
    assert "the parent of the reply that opened ticket" in trace_text(parent)
    view = ticket_json(settings, parent.ticket_number)
    # The ticket now looks as if the conversation had arrived in order.
    assert view["subject"] == "Printer on fire"
    assert view["requester"] == "anna@customer.example"
    assert view["merged_into"] is None
    with gateway.db.reading() as session:
        assert session.scalar(select(Ticket.number).where(Ticket.number != reply.ticket_number)
                              ) is None


def test_replies_to_a_missing_message_share_one_ticket(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    missing = make_msgid(domain="customer.example")
    _first_id, first = mail(settings, gateway, "bob@customer.example", "Re: Outage",
                            in_reply_to=missing, references=missing)
    _second_id, second = mail(settings, gateway, "carl@other.example", "Re: Outage",
                              in_reply_to=missing, references=missing)
    assert second.ticket_number == first.ticket_number
    assert "names the same earlier message" in trace_text(second)


def test_the_missing_link_joins_two_tickets_into_the_older_and_the_joined_one_leads_there(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    root_id, root = mail(settings, gateway, "anna@customer.example", "Sync fails")
    link_id = make_msgid(domain="customer.example")
    # A reply whose client kept only its direct parent (not yet here) opens a second ticket.
    late_id, late = mail(settings, gateway, "bob@customer.example", "Re: Re: Sync fails",
                         in_reply_to=link_id, references=link_id)
    assert late.ticket_number != root.ticket_number
    raw = make_mail(sender="anna@customer.example", subject="Re: Sync fails",
                    body="Also on the laptop.", message_id=link_id, in_reply_to=root_id,
                    references=root_id)
    link = deliver(settings, gateway, raw, "anna@customer.example")
    older, joined = root.ticket_number, late.ticket_number
    assert older is not None and joined is not None and older < joined
    assert link.ticket_number == older
    assert f"ticket #{joined} (1 message(s)) was opened by a reply" in trace_text(link)
    assert ticket_of(gateway, late_id) == older
    assert ticket_json(settings, joined)["merged_into"] == older
    assert ticket_json(settings, joined)["messages"] == []
    # What Bob holds from the joined ticket leads to the surviving one: its reply token,
    with gateway.db.reading() as session:
        bob = session.scalar(select(Participant.id).where(
            Participant.ticket_number == joined, Participant.email == "bob@customer.example"))
    assert bob is not None
    token = make_reply_token(gateway.services.secret, joined, bob)
    _by_token_id, by_token = mail(settings, gateway, "bob@customer.example", "More detail",
                                  rcpt_to=f"support+{token}@support.example")
    assert by_token.ticket_number == older
    assert f"ticket #{joined} was joined into ticket #{older}" in trace_text(by_token)
    # its subject tag,
    _tag_id, by_tag = mail(settings, gateway, "bob@customer.example", f"[#{joined}] and more")
    assert by_tag.ticket_number == older
    # and the Message-IDs of its messages.
    _reply_id, reply = mail(settings, gateway, "bob@customer.example", "Re: Re: Sync fails",
                            in_reply_to=late_id, references=late_id)
    assert reply.ticket_number == older


def test_a_stranger_naming_two_customers_messages_does_not_join_their_tickets(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    anna_id, anna = mail(settings, gateway, "anna@customer.example", "Invoice wrong")
    max_id, maxs = mail(settings, gateway, "max@globex.example", "Password reset")
    _mallory_id, mallory = mail(settings, gateway, "mallory@evil.example", "Re: Invoice wrong",
                                in_reply_to=anna_id, references=f"{max_id} {anna_id}")
    assert mallory.ticket_number == anna.ticket_number  # naming a stored id threads, as before
    assert maxs.ticket_number is not None
    view = ticket_json(settings, maxs.ticket_number)
    assert view["merged_into"] is None and view["requester"] == "max@globex.example"
    assert ticket_of(gateway, max_id) == maxs.ticket_number


def test_a_root_that_arrives_last_joins_the_ticket_its_replys_reply_pulled_in(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    """The order that split a mailing-list thread (issue 14's "any order"): a reply (A)
    joined the ticket of a message naming it, both its parent (R) and a sibling of A were
    missing, the sibling opened a ticket of its own, and R came last. R's conversation is
    both tickets."""
    root_id, other_id = make_msgid(domain="list.example"), make_msgid(domain="list.example")
    a_id = make_msgid(domain="list.example")
    # X opens a ticket naming a message we never get; B names it and A, neither here yet.
    _x_id, x = mail(settings, gateway, "xavier@list.example", "Re: Release plan",
                    in_reply_to=other_id, references=other_id)
    _b_id, b = mail(settings, gateway, "bea@list.example", "Re: Release plan",
                    in_reply_to=a_id, references=f"{other_id} {a_id}")
    assert b.ticket_number == x.ticket_number
    # C, a reply to the root, opens a ticket; then A, a reply to the root that B named.
    _c_id, c = mail(settings, gateway, "carl@list.example", "Re: Release plan",
                    in_reply_to=root_id, references=root_id)
    raw = make_mail(sender="anna@list.example", subject="Re: Release plan",
                    body="A first answer.", message_id=a_id, in_reply_to=root_id,
                    references=root_id)
    a = deliver(settings, gateway, raw, "anna@list.example")
    assert a.ticket_number == x.ticket_number != c.ticket_number
    # When the root arrives last, both tickets are its conversation: one ticket, the older.
    raw = make_mail(sender="rita@list.example", subject="Release plan",
                    body="Here is the plan.", message_id=root_id)
    root = deliver(settings, gateway, raw, "rita@list.example")
    assert x.ticket_number is not None and c.ticket_number is not None
    older = min(x.ticket_number, c.ticket_number)
    assert root.ticket_number == older
    assert {ticket_of(gateway, i) for i in (_x_id, _b_id, _c_id, a_id, root_id)} == {older}
    view = ticket_json(settings, older)
    assert view["subject"] == "Release plan" and view["requester"] == "rita@list.example"


def test_a_stranger_naming_two_customers_missing_messages_does_not_join_their_tickets(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    """Naming ids that two customers' tickets wait for joins the stranger to one of them at
    most; when the named messages arrive, the two tickets stay apart."""
    anna_missing = make_msgid(domain="customer.example")
    max_missing = make_msgid(domain="globex.example")
    _anna_id, anna = mail(settings, gateway, "anna@customer.example", "Re: Invoice wrong",
                          in_reply_to=anna_missing, references=anna_missing)
    _max_id, maxs = mail(settings, gateway, "max@globex.example", "Re: Password reset",
                         in_reply_to=max_missing, references=max_missing)
    _mallory_id, mallory = mail(settings, gateway, "mallory@evil.example", "Re: both",
                                in_reply_to=anna_missing,
                                references=f"{max_missing} {anna_missing}")
    assert mallory.ticket_number in {anna.ticket_number, maxs.ticket_number}
    for sender, missing, subject in (("berta@customer.example", anna_missing, "Invoice wrong"),
                                     ("moritz@globex.example", max_missing, "Password reset")):
        raw = make_mail(sender=sender, subject=subject, body="The first message.",
                        message_id=missing)
        deliver(settings, gateway, raw, sender)
    assert anna.ticket_number is not None and maxs.ticket_number is not None
    assert ticket_json(settings, anna.ticket_number)["merged_into"] is None
    assert ticket_json(settings, maxs.ticket_number)["merged_into"] is None
    assert ticket_of(gateway, anna_missing) == anna.ticket_number
    assert ticket_of(gateway, max_missing) == maxs.ticket_number
