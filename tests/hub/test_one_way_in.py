"""One way in: what people write in the hub goes through the pipeline exactly as mail does.

A reply lands on its ticket as the person's message (an admin's on a colleague's ticket as
a colleague reply, and the requester is told); a new request gets the acknowledgement an
emailed one gets.  The trust behind it is the hub's alone: mail claiming to come from the
hub gets no privilege."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem, SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from inbound.spool import HUB_SOURCE, SpoolWriter, store_message
from tests.conftest import wait_for
from tests.e2e.test_conversations import (
    acknowledgement,
    body_text,
    deliver,
    mail_to,
    messages,
    open_ticket,
    passed,
    ticket,
)
from tests.hub.conftest import ANNA, MAX, hub_rows_done, signed_in
from tests.mail import make_mail, send


def test_a_members_reply_lands_on_the_ticket_as_theirs(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    # Given Max's ticket, opened by mail
    number, first_id = open_ticket(settings, gateway, sender=MAX,
                                   headers=passed("acme.example"))
    browser = signed_in(settings, hub, MAX)
    page = browser.get(f"{hub}/tickets/{number}")
    assert page.status == 200 and 'id="send-reply"' in page.body
    # When Max replies in the hub
    sent = browser.post(f"{hub}/tickets/{number}/reply",
                        {"csrf": page.csrf(), "text": "It drops at 10:15 again.\nLog below."})
    assert sent.status == 303
    assert sent.location == f"{hub}/tickets/{number}?notice=reply_received"
    (row,) = hub_rows_done(gateway, 1)
    # Then it is on the ticket, as Max's own message, threaded by the headers
    assert row.ticket_number == number
    last = messages(gateway, number)[-1]
    assert (last.from_address, last.role, last.kind) == (MAX, "requester", "public")
    assert last.text.startswith("It drops at 10:15 again.")
    assert last.threaded_by != "new_ticket"
    raw = message_from_bytes(row.raw, policy=policy.default)
    assert first_id in str(raw["References"])
    assert str(raw["From"]).endswith(f"<{MAX}>") and "10:15" not in str(raw["Subject"])
    assert any("verified (hub)" in str(step) for step in row.trace)
    # And the page shows it
    assert "It drops at 10:15 again." in browser.get(f"{hub}/tickets/{number}").body


def test_a_control_character_in_a_message_id_does_not_break_replies_on_the_ticket(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    # A Message-ID with a control character (an attacker's, or a broken client's) is no id:
    # kept, every header built from it would fail, and the hub's replies with it.
    raw = make_mail(sender=MAX, subject="Printer offline", body="The printer is offline.",
                    headers=passed("acme.example"))
    raw = raw.replace(b"Message-ID: <", b"Message-ID: <evil\x1cid", 1)
    send(settings.smtp_listen, raw, mail_from=MAX, rcpt_to="support@support.example")

    def opened() -> int | None:
        with gateway.db.reading() as session:
            return session.scalar(select(SpoolEntry.ticket_number).where(
                SpoolEntry.mail_from == MAX, SpoolEntry.ticket_number.is_not(None)))
    number = wait_for(opened, message="the ticket of the mail with a control character")
    browser = signed_in(settings, hub, MAX)
    page = browser.get(f"{hub}/tickets/{number}")
    sent = browser.post(f"{hub}/tickets/{number}/reply",
                        {"csrf": page.csrf(), "text": "It is still offline."})
    assert sent.status == 303
    (reply,) = hub_rows_done(gateway, 1)
    assert reply.ticket_number == number
    assert messages(gateway, number)[-1].text.startswith("It is still offline.")


def test_an_admins_reply_on_a_team_ticket_is_a_colleague_reply(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    before = len(mail_to(settings, MAX))
    browser = signed_in(settings, hub, ANNA)
    page = browser.get(f"{hub}/tickets/{number}")
    assert page.status == 200 and 'id="colleague-hint"' in page.body
    browser.post(f"{hub}/tickets/{number}/reply",
                 {"csrf": page.csrf(), "text": "Max, I restarted the VPN gateway."})
    hub_rows_done(gateway, 1)
    last = messages(gateway, number)[-1]
    assert (last.from_address, last.role) == (ANNA, "colleague")
    # The requester is told, as for a colleague's mail
    told = mail_to(settings, MAX)[before:]
    assert any("I restarted the VPN gateway" in body_text(m) for m in told), \
        [body_text(m) for m in told]


def test_a_hub_request_gets_the_acknowledgement_of_a_mailed_one(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    form = browser.get(f"{hub}/new")
    assert form.status == 200 and 'id="product"' not in form.body  # acme has one product
    sent = browser.post(f"{hub}/new", {
        "csrf": form.csrf(), "subject": "Invoice\r\nBcc: victim@evil.example",
        "text": "Our invoice for November lists 30 licences; we have 25.",
        "category": "administrative"})
    assert sent.status == 303 and sent.location.endswith("/hub/tickets?notice=request_received")
    (row,) = hub_rows_done(gateway, 1)
    assert row.ticket_number is not None
    created = ticket(gateway, row.ticket_number)
    assert created.requester == MAX and created.category == "administrative"
    assert created.subject == "Invoice Bcc: victim@evil.example"  # one line, no header
    assert mail_to(settings, "victim@evil.example") == []
    ack = acknowledgement(settings, MAX, row.ticket_number)
    # The same acknowledgement an emailed request gets: compare with one (about another
    # invoice: the same words would be a duplicate, by mail and by hub alike)
    emailed_row = deliver(settings, gateway, make_mail(
        sender=MAX, sender_name="Max Member", subject="Invoice",
        body="The invoice for December names the wrong VAT number.",
        headers=passed("acme.example")), mail_from=MAX)
    number = emailed_row.ticket_number or 0
    emailed = acknowledgement(settings, MAX, number)
    assert ack["Auto-Submitted"] == emailed["Auto-Submitted"] == "auto-replied"
    assert str(ack["Subject"]) == f"[#{row.ticket_number}] Invoice Bcc: victim@evil.example"
    assert body_text(ack).replace(f"#{row.ticket_number}", "#N").splitlines()[:4] == \
        body_text(emailed).replace(f"#{number}", "#N").splitlines()[:4]
    assert outbox_kinds_of(gateway, row.ticket_number) == outbox_kinds_of(gateway, number)
    assert created.tier == ticket(gateway, number).tier == "enhanced"
    assert f"#{row.ticket_number}" in browser.get(f"{hub}/tickets").body


def outbox_kinds_of(gateway: Gateway, number: int) -> list[str]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(OutboxItem.kind).where(
            OutboxItem.ticket_number == number).order_by(OutboxItem.id)))


@pytest.mark.parametrize("claim", [
    {"X-Gateway-Source": "web", "X-Hub-Person": ANNA},
    {"Received": "from hub (web) by gateway"},
])
def test_mail_claiming_to_come_from_the_hub_gets_no_privilege(
        web: GatewayServer, gateway: Gateway, settings: Settings,
        claim: dict[str, str]) -> None:
    # Given Max's ticket
    number, first_id = open_ticket(settings, gateway, sender=MAX,
                                   headers=passed("acme.example"))
    # When a mail From Anna (no authentication) claims the hub wrote it
    row = deliver(settings, gateway, make_mail(
        sender=ANNA, subject=f"Re: [#{number}] VPN drops every hour",
        body="Colleague here.", in_reply_to=f"<{first_id}>", headers=claim), mail_from=ANNA)
    # Then it is SMTP mail, unverified, and no colleague reply
    assert row.source == "smtp" and "hub" not in (row.options or {})
    assert not any("(hub)" in str(step) for step in row.trace)
    last = messages(gateway, number)[-1]
    assert last.role != "colleague"


def test_no_intake_can_store_the_hubs_source_or_option(gateway: Gateway) -> None:
    raw = make_mail(sender=ANNA)
    writer = SpoolWriter(gateway.db)  # SMTP's and LMTP's group commit; IMAP's too
    try:
        for envelope in ({"source": HUB_SOURCE}, {"source": "WEB"},
                         {"source": "smtp", "options": {"hub": {"person": ANNA}}},
                         {"source": "imap:web/INBOX", "options": {"hub": ANNA}}):
            with pytest.raises(ValueError):
                store_message(gateway.db, raw, **envelope)  # the pipe's path
            with pytest.raises(ValueError):
                writer.submit(raw, **envelope)
    finally:
        writer.close()
    with gateway.db.reading() as session:
        assert session.scalar(select(SpoolEntry.id)) is None
