"""Rules on real tickets: stored entitlement and due time, the promise in the
acknowledgement, `rules explain --at` agreeing with tickets created at that time, and
imported history starting no clock."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import OutboxItem, SpoolEntry, Ticket
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.views import ticket_view
from inbound.spool import store_message
from tests.conftest import run_gateway, wait_for
from tests.mail import make_mail, send
from tests.rules.tickets import RULES_DIRECTORY, outbox_mail, passed, plain_text, ticket_at


def acknowledgement(gateway: Gateway, ticket: Ticket) -> EmailMessage:
    [message] = outbox_mail(gateway, ticket, "acknowledgement")
    return message


EMERGENCY = "emergency@support.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """This module's gateways have an emergency address; several requests of one person
    on the same problem are cases here, not duplicates (window 0 days)."""
    return settings_factory(emergency_address=EMERGENCY, duplicate_window_days=0)


@pytest.fixture
def rules_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
def rules_gateway(gateway: Gateway) -> Gateway:
    with gateway.db.transaction() as session:
        load_directory_file(session, RULES_DIRECTORY)
    return gateway


CASES = [
    ("enhanced admin Tuesday 10:00", "anna@acme.example", "support@support.example",
     "2026-11-17T10:00:00+01:00", "enhanced", "en", "2026-11-17T10:00:00Z"),
    # Japanese hours close before the ja queue's hour passes: the English queue, with the
    # office's Friday 17:00 Berlin.
    ("Japanese Friday 16:30 JST", "yuki@globex.example", "support@support.example",
     "2026-11-20T16:30:00+09:00", "standard", "en", "2026-11-20T16:00:00Z"),
    ("Japanese Friday 18:00 JST", "yuki@globex.example", "support@support.example",
     "2026-11-20T18:00:00+09:00", "standard", "en", "2026-11-20T17:00:00Z"),
    ("emergency at 23:00", "giulia@globex.example", EMERGENCY,
     "2026-11-17T23:00:00+01:00", "emergency", "en", "2026-11-18T08:00:00Z"),
    ("Dash mail, Files-only add-on", "max@acme.example", "dash@support.example",
     "2026-11-17T10:00:00+01:00", "standard", "en", "2026-11-17T17:00:00Z"),
    ("add-on expired yesterday", "uma@umbrella.example", "support@support.example",
     "2026-11-17T10:00:00+01:00", "standard", "en", "2026-11-17T17:00:00Z"),
    ("Epic champion member", "eve@globex.example", "support@support.example",
     "2026-11-17T10:00:00+01:00", "champion-epic", "en", "2026-11-17T10:00:00Z"),
]


@pytest.mark.parametrize(("label", "sender", "to", "when", "tier", "queue", "due"), CASES,
                         ids=[c[0] for c in CASES])
def test_ticket_and_explain_agree(rules_gateway: Gateway, rules_settings: Settings, label: str,
                                  sender: str, to: str, when: str, tier: str, queue: str,
                                  due: str) -> None:
    ticket = ticket_at(rules_gateway, when, sender=sender, to=to)
    view = ticket_view(ticket, with_messages=False)
    assert (view["tier"], view["queue"], view["first_response_due"]) == (tier, queue, due), (
        view["entitlement"])
    result = run_gateway(rules_settings, "rules", "explain", "--from", sender, "--to", to,
                         "--at", when, "--json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert (explained["tier"], explained["queue"], explained["first_response_due"],
            explained["product"], explained["category"]) == (
        ticket.tier, ticket.queue, view["first_response_due"], ticket.product, ticket.category)
    assert "; ".join(explained["explanation"]) == ticket.entitlement


@pytest.mark.parametrize("spelling", ['"{}"@support.example', "{}@SUPPORT.Example."])
def test_the_emergency_and_product_addresses_in_another_spelling_keep_their_terms(
        rules_gateway: Gateway, spelling: str) -> None:
    """A quoted local part that needs no quotes, or another case of the domain, is the same
    address: the emergency line's terms and the product of its address still apply."""
    emergency = ticket_at(rules_gateway, "2026-11-17T23:00:00+01:00",
                          sender="giulia@globex.example", to=spelling.format("emergency"))
    assert emergency.tier == "emergency", emergency.entitlement
    dash = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="max@acme.example",
                     to=spelling.format("dash"))
    assert dash.product == "dash", dash.entitlement


def test_acknowledgement_states_the_promise_in_the_requesters_language(
        rules_gateway: Gateway) -> None:
    # Inside Japanese hours with an hour to spare: "within 1 hour", in Japanese.
    within = ticket_at(rules_gateway, "2026-11-20T10:00:00+09:00", sender="yuki@globex.example")
    inside = plain_text(acknowledgement(rules_gateway, within))
    assert "1 時間以内にご回答いたします。" in inside and "英語" not in inside
    # Friday 18:00 JST, after Japanese hours: served in English, and told so in Japanese.
    evening = ticket_at(rules_gateway, "2026-11-20T18:00:00+09:00", sender="yuki@globex.example",
                        subject="Export stops", body="The export stops at 50 %.")
    outside = plain_text(acknowledgement(rules_gateway, evening))
    assert "日本語サポートの営業時間外のため、英語でご回答いたします。" in outside
    # Friday 16:30 JST: the Japanese hour would run into Monday, so the English queue answers
    # by standard support's Friday 17:00 Berlin, shown in Japanese time, and says so.
    friday_ja = ticket_at(rules_gateway, "2026-11-20T16:30:00+09:00",
                          sender="yuki@globex.example")
    friday_text = plain_text(acknowledgement(rules_gateway, friday_ja))
    assert "土曜日 01:00 JSTまでにご回答いたします。" in friday_text
    assert "英語でご回答いたします。" in friday_text
    # Enhanced, German-speaking admin: "innerhalb von 1 Stunde".
    enhanced = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="anna@acme.example")
    assert "Wir antworten Ihnen innerhalb von 1 Stunde." in plain_text(
        acknowledgement(rules_gateway, enhanced))
    # Standard support on Friday evening: a time on Monday, Berlin time, in Italian.
    friday = ticket_at(rules_gateway, "2026-11-20T19:00:00+01:00",
                        sender="giulia@globex.example")
    assert "Le risponderemo entro lunedì 17:00 CET." in plain_text(
        acknowledgement(rules_gateway, friday))


def test_japanese_text_from_an_english_speaker_goes_to_the_japanese_queue(
        rules_gateway: Gateway) -> None:
    ticket = ticket_at(rules_gateway, "2026-11-17T11:00:00+09:00", sender="bob@initech.example",
                        to="files@support.example",
                        body="同期が月曜日から失敗しています。確認をお願いします。")
    assert (ticket.queue, ticket.language, ticket.product) == ("ja", "ja", "files")
    assert "mostly in Japanese script" in ticket.entitlement
    assert "1 時間以内" in plain_text(acknowledgement(rules_gateway, ticket))


def test_product_from_keyword_and_several_products_unknown(rules_gateway: Gateway) -> None:
    dash = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="bob@initech.example",
                      body="Our Dash board does not load.")
    assert (dash.product, dash.tier) == ("dash", "enhanced")
    assert "product dash: the request mentions 'dash'" in dash.entitlement
    unknown = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00",
                         sender="bob@initech.example")
    assert (unknown.product, unknown.tier) == (None, "standard")
    assert "the team has dash, files and none was named" in unknown.entitlement


def test_category_from_address_and_keywords(rules_gateway: Gateway) -> None:
    billing = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="anna@acme.example",
                         to="billing@support.example")
    licence = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="anna@acme.example",
                         body="We need one more licence for a new colleague.")
    plain = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="anna@acme.example")
    assert (billing.category, licence.category, plain.category) == (
        "commercial", "administrative", "technical")


def test_imported_history_starts_no_clock(rules_gateway: Gateway) -> None:
    ticket = ticket_at(rules_gateway, "2026-11-17T10:00:00+01:00", sender="anna@acme.example",
                        history=True)
    assert ticket.tier == "enhanced" and ticket.first_response_due is None
    assert "imported history: no SLA clock" in ticket.entitlement
    with rules_gateway.db.reading() as session:
        assert session.scalars(select(OutboxItem)).all() == []


def test_smtp_accepts_product_and_emergency_addresses_only(rules_gateway: Gateway,
                                                          running: GatewayServer) -> None:
    listen = rules_gateway.settings.smtp_listen
    for to in ("dash@support.example", EMERGENCY):
        send(listen, make_mail(sender="bob@initech.example", to=to,
                               headers=passed("bob@initech.example")),
             mail_from="bob@initech.example", rcpt_to=to)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listen, make_mail(to="nobody@support.example"), rcpt_to="nobody@support.example")
    assert refused.value.recipients["nobody@support.example"][0] == 550

    def two_tickets() -> list[Ticket]:
        with rules_gateway.db.reading() as session:
            return list(session.scalars(select(Ticket).order_by(Ticket.number)))
    wait_for(lambda: len(two_tickets()) == 2, timeout=30, message="two tickets")
    # Worker threads may process the two in either order.
    dash, emergency = sorted(two_tickets(), key=lambda t: "emergency address" in t.entitlement)
    assert (dash.product, dash.tier) == ("dash", "enhanced")
    # Bob's team has two products and this mail names none: standard or emergency terms,
    # whichever is due first at the time the test runs.
    assert emergency.tier in {"emergency", "standard"}
    assert "sent to the emergency address" in emergency.entitlement


def _reply_at(gateway: Gateway, ticket: Ticket, when: str, body: str) -> None:
    raw = make_mail(sender=ticket.requester, subject=f"Re: [#{ticket.number}] {ticket.subject}",
                    body=body, in_reply_to=ticket.origin_message_id,
                    headers=passed(ticket.requester))
    stored = store_message(gateway.db, raw, source="smtp", mail_from=ticket.requester,
                           rcpt_tos=["support@support.example"])
    with gateway.db.transaction() as session:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id).values(
            received_at=datetime.fromisoformat(when)))
    outcome = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    assert outcome.state == "processed" and outcome.ticket_number == ticket.number


def test_several_products_none_named_asks_back_and_the_answer_applies(
        rules_gateway: Gateway) -> None:
    # Bob's team has Essentials for Files and Enhanced for Dash; his mail names neither.
    # At 09:00 Berlin: standard 8 h of office hours, due 17:00 Berlin (16:00 UTC).
    ticket = ticket_at(rules_gateway, "2026-11-17T08:00:00+00:00", sender="bob@initech.example")
    assert (ticket.product, ticket.tier) == (None, "standard")
    assert ticket.first_response_due == datetime.fromisoformat("2026-11-17T16:00:00+00:00")
    assert ("We will answer within 8 hours. Which product is your request about: Dash or Files? "
            "Please reply with its name"
            in plain_text(acknowledgement(rules_gateway, ticket)))
    # His answer at 08:20 UTC (03:20 in New York, before Dash live hours open at 09:00 ET):
    # Enhanced 1 h of Dash hours is 15:00 UTC, earlier than the standard 16:00 UTC.
    _reply_at(rules_gateway, ticket, "2026-11-17T08:20:00+00:00", "It is about Dash.")
    with rules_gateway.db.reading() as session:
        updated = session.get(Ticket, ticket.number)
        assert updated is not None
        assert (updated.product, updated.tier) == ("dash", "enhanced")
        assert updated.first_response_due == datetime.fromisoformat("2026-11-17T15:00:00+00:00")
        assert "product dash named in a reply" in updated.entitlement


def test_explain_prints_the_answer_and_refuses_bad_input(rules_gateway: Gateway,
                                                         rules_settings: Settings) -> None:
    text = run_gateway(rules_settings, "rules", "explain", "--from", "yuki@globex.example",
                       "--at", "2026-11-20T16:30:00+09:00")
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    assert "queue     en" in out and "(Sat 2026-11-21 01:00 JST)" in out
    assert "language  en (a ja request its hours cannot serve; acknowledged in ja)" in out
    assert "  - ja request at Fri 2026-11-20 16:30 JST: japanese hours" in out
    naive = run_gateway(rules_settings, "rules", "explain", "--from", "a@b.example",
                        "--at", "2026-11-20T16:30")
    assert naive.returncode == 2 and b"give a time zone" in naive.stderr
    unknown = run_gateway(rules_settings, "rules", "explain", "--from", "a@b.example",
                          "--product", "nope")
    assert unknown.returncode == 2 and b"there is no product 'nope'" in unknown.stderr
