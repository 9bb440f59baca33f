"""End to end: a mail sent over SMTP becomes a ticket and its acknowledgement is delivered;
replies thread back; the subject tag is honoured only for participants and colleagues."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import MessageRecord, OutboxItem, OutboxStatus, SpoolEntry, SpoolState, Ticket
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.mail import maildir_messages, make_mail, send


def _sent_dir(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def _ticket_count(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def _all_settled(gateway: Gateway) -> bool:
    with gateway.db.reading() as session:
        waiting = session.scalar(select(func.count()).select_from(SpoolEntry).where(
            SpoolEntry.state == SpoolState.RECEIVED))
        unsent = session.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
    return waiting == 0 and unsent == 0


def test_new_mail_opens_ticket_and_acknowledgement_lands_in_maildir(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a running gateway; When Anna mails support
    raw = make_mail(subject="Sync fails", body="Hello,\nsync fails since Monday.\nAnna")
    send(settings.smtp_listen, raw)
    # Then a ticket exists and an acknowledgement reaches the maildir
    wait_for(lambda: _ticket_count(gateway) == 1 and _all_settled(gateway), message="ticket")
    messages = wait_for(lambda: maildir_messages(_sent_dir(settings)), message="ack")
    assert len(messages) == 1
    ack = message_from_bytes(messages[0].as_bytes(), policy=policy.default)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket)).one()
        stored = session.scalars(select(MessageRecord)).one()
    assert ticket.requester == "anna@acme.example" and ticket.team_id == "acme"
    assert stored.role == "requester" and stored.threaded_by == "new_ticket"
    assert ack["To"].addresses[0].addr_spec == "anna@acme.example"
    assert ack["Subject"] == f"[#{ticket.number}] Sync fails"
    assert ack["Auto-Submitted"] == "auto-replied"
    original_id = message_from_bytes(raw)["Message-ID"].strip()
    assert ack["In-Reply-To"].strip() == original_id
    assert original_id in ack["References"]
    reply_to = ack["Reply-To"].addresses[0]
    assert reply_to.username.startswith("support+") and reply_to.domain == "support.example"
    assert ack["Content-Language"] == "de"  # Anna's language from the directory


def test_reply_to_acknowledgement_joins_ticket_with_only_new_text(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a ticket whose acknowledgement Anna received
    send(settings.smtp_listen, make_mail(subject="Printer offline", body="It is offline."))
    wait_for(lambda: maildir_messages(_sent_dir(settings)), message="ack")
    ack = message_from_bytes(maildir_messages(_sent_dir(settings))[0].as_bytes(),
                             policy=policy.default)
    # When she answers it the way a mail client does: Reply-To, In-Reply-To/References,
    # quoted history below her new text
    plain = ack.get_body(("plain",))
    assert plain is not None
    quoted = "\n".join("> " + line for line in plain.get_content().splitlines())
    body = f"Still offline after a restart.\n\nOn Mon, 2 Nov 2026, Support wrote:\n{quoted}\n"
    reply = make_mail(subject="Re: " + ack["Subject"], body=body,
                      to=str(ack["Reply-To"]), in_reply_to=ack["Message-ID"],
                      references=f"{ack['References']} {ack['Message-ID']}")
    send(settings.smtp_listen, reply, rcpt_to=ack["Reply-To"].addresses[0].addr_spec)
    # Then the same ticket holds both messages and the stored text is only the new part
    def two_messages() -> list[MessageRecord]:
        with gateway.db.reading() as session:
            return list(session.scalars(select(MessageRecord).order_by(MessageRecord.id)))
    messages = wait_for(lambda: len(two_messages()) == 2 and two_messages(), message="reply")
    assert _ticket_count(gateway) == 1
    assert messages[1].ticket_number == messages[0].ticket_number
    assert messages[1].threaded_by == "reply_token"
    assert messages[1].text == "Still offline after a restart."
    assert "wrote:" not in messages[1].text


def test_reply_by_headers_alone_threads(running: GatewayServer, gateway: Gateway,
                                        settings: Settings) -> None:
    # Given a ticket; When a reply reaches the plain support address with only References
    first = make_mail(subject="Quota", body="My quota is wrong.")
    send(settings.smtp_listen, first)
    wait_for(lambda: _ticket_count(gateway) == 1, message="ticket")
    first_id = message_from_bytes(first)["Message-ID"]
    follow_up = make_mail(subject="Re: Quota", body="Also the graph.", references=first_id)
    send(settings.smtp_listen, follow_up)
    # Then it joins the ticket, threaded by headers
    def records() -> list[MessageRecord]:
        with gateway.db.reading() as session:
            return list(session.scalars(select(MessageRecord).order_by(MessageRecord.id)))
    wait_for(lambda: len(records()) == 2, message="follow-up stored")
    assert _ticket_count(gateway) == 1
    assert records()[1].threaded_by == "headers"


def test_subject_tag_from_unrelated_team_opens_new_ticket(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given Anna's ticket [#N]
    send(settings.smtp_listen, make_mail(subject="Invoice question"))
    wait_for(lambda: _ticket_count(gateway) == 1, message="ticket")
    with gateway.db.reading() as session:
        number = session.scalars(select(Ticket.number)).one()
    # When Giulia of another team writes with [#N] in the subject
    send(settings.smtp_listen, make_mail(sender="giulia@globex.example",
                                         subject=f"Re: [#{number}] Invoice question",
                                         body="Can I see this?"),
         mail_from="giulia@globex.example")
    # Then a new ticket is opened instead, and the trace says why
    wait_for(lambda: _ticket_count(gateway) == 2 and _all_settled(gateway), message="2nd ticket")
    with gateway.db.reading() as session:
        giulia = session.scalars(select(MessageRecord).where(
            MessageRecord.from_address == "giulia@globex.example")).one()
        entry = session.get(SpoolEntry, giulia.spool_id)
        assert entry is not None
        assert giulia.ticket_number != number and giulia.threaded_by == "new_ticket"
        assert any("ignored" in t["explanation"] and f"[#{number}]" in t["explanation"]
                   for t in entry.trace)
