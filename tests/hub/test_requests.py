"""What people do in the hub besides replying: a new request that names its product, files,
a reply that reopens a solved ticket, and a history without internal notes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import AttachmentRecord, MessageRecord
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.e2e.test_conversations import deliver, messages, open_ticket, passed, ticket
from tests.hub.conftest import ANNA, MAX, hub_rows_done, signed_in
from tests.mail import make_mail

LOTTE = "lotte@initech.example"
KENJI = "kenji@support.example"


def _agent_says(settings: Settings, gateway: Gateway, number: int, body: str) -> None:
    deliver(settings, gateway, make_mail(
        sender=KENJI, sender_name="Kenji", subject=f"Re: [#{number}] VPN drops every hour",
        body=body, headers=passed("support.example")), mail_from=KENJI)


def test_a_team_with_two_products_is_asked_which_one(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    with gateway.db.transaction() as session:
        load_directory_file(session, __import__("pathlib").Path(__file__).with_name(
            "two_products.toml"))
    lotte = signed_in(settings, hub, LOTTE)
    form = lotte.get(f"{hub}/new")
    assert 'id="product"' in form.body and ">Dash<" in form.body and ">Files<" in form.body
    assert 'lang="nl"' in form.body
    fields = {"csrf": form.csrf(), "subject": "Dashboard leeg", "category": "commercial",
              "text": "Sinds vanochtend blijft het overzicht leeg."}
    unnamed = lotte.post(f"{hub}/new", fields)
    assert unnamed.status == 400 and 'data-problem="problem_product"' in unnamed.body
    assert "Sinds vanochtend blijft het overzicht leeg." in unnamed.body  # kept for a retry
    assert lotte.post(f"{hub}/new", {**fields, "product": "dash"}).status == 303
    (row,) = hub_rows_done(gateway, 1)
    created = ticket(gateway, row.ticket_number or 0)
    assert (created.product, created.category, created.tier) == ("dash", "commercial",
                                                                 "enhanced")


def test_files_travel_with_a_request(web: GatewayServer, gateway: Gateway, settings: Settings,
                                     hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    form = browser.get(f"{hub}/new")
    log = b"10:15:02 tunnel down\n" * 50
    sent = browser.post(f"{hub}/new", {"csrf": form.csrf(), "subject": "VPN log",
                                       "text": "Log attached.", "category": "technical"},
                        files=[("C:\\Users\\max\\VPN-Protokoll «Büro».log", "text/plain", log)])
    assert sent.status == 303
    (row,) = hub_rows_done(gateway, 1)
    with gateway.db.reading() as session:
        stored = session.scalars(select(AttachmentRecord).join(MessageRecord).where(
            MessageRecord.ticket_number == row.ticket_number)).all()
    assert [(a.filename, a.data) for a in stored] == [("VPN-Protokoll «Büro».log", log)]


@pytest.mark.parametrize("settings", [{"hub_attachment_limit": 1000}], indirect=True)
def test_files_over_the_limit_are_refused_and_nothing_is_sent(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    form = browser.get(f"{hub}/new")
    fields = {"csrf": form.csrf(), "subject": "Big", "text": "t", "category": "technical"}
    for size in (1001, 200_000):  # over the limit; over it before the body is read
        page = browser.post(f"{hub}/new", fields, files=[("big.bin", "application/zip",
                                                          b"x" * size)])
        assert page.status == 413 and 'data-kind="too_large"' in page.body
    assert browser.post(f"{hub}/new", fields, files=[("ok.txt", "text/plain", b"x" * 900)]
                        ).status == 303
    assert len(hub_rows_done(gateway, 1)) == 1


def test_a_reply_to_a_solved_ticket_reopens_it(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    _agent_says(settings, gateway, number, "#status solved\nFixed in 2.4.1.")
    assert ticket(gateway, number).status.value == "solved"
    browser = signed_in(settings, hub, MAX)
    page = browser.get(f"{hub}/tickets/{number}")
    assert 'id="reopens"' in page.body and 'id="send-reply"' in page.body
    browser.post(f"{hub}/tickets/{number}/reply",
                 {"csrf": page.csrf(), "text": "Still drops after 2.4.1, sorry."})
    hub_rows_done(gateway, 1)
    assert ticket(gateway, number).status.value == "open"
    assert messages(gateway, number)[-1].from_address == MAX


def test_a_closed_ticket_takes_no_reply(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    _agent_says(settings, gateway, number, "#status closed\nClosing.")
    browser = signed_in(settings, hub, MAX)
    page = browser.get(f"{hub}/tickets/{number}")
    assert 'id="send-reply"' not in page.body and 'id="closed-hint"' in page.body
    refused = browser.post(f"{hub}/tickets/{number}/reply", {"csrf": page.csrf(), "text": "x"})
    assert refused.status == 409


def test_the_history_shows_public_messages_and_no_internal_notes(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    _agent_says(settings, gateway, number, "#note\nCustomer runs an unsupported VPN client.")
    _agent_says(settings, gateway, number, "Please update the VPN client to 2.4.1.")
    assert any(m.kind == "note" for m in messages(gateway, number))
    for who in (MAX, ANNA):
        body = signed_in(settings, hub, who).get(f"{hub}/tickets/{number}").body
        assert "Please update the VPN client to 2.4.1." in body
        assert "unsupported VPN client" not in body
        assert "the VPN connection drops every hour" in body


def test_a_merged_ticket_leads_to_the_one_it_joined(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    kept, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    gone, _ = open_ticket(settings, gateway, sender=MAX, subject="VPN again",
                          body="The tunnel to the office fails since the update.",
                          headers=passed("acme.example"))
    deliver(settings, gateway, make_mail(
        sender=KENJI, subject=f"Re: [#{gone}] VPN again", body=f"#merge {kept}",
        headers=passed("support.example")), mail_from=KENJI)
    assert ticket(gateway, gone).merged_into == kept
    page = signed_in(settings, hub, MAX).get(f"{hub}/tickets/{gone}")
    assert page.status == 303 and page.location == f"{hub}/tickets/{kept}"
