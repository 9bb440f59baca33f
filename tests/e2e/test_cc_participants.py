"""People in Cc of a request take part in the ticket, over real SMTP (issue 16, DESIGN §13).

A colleague Cc'd on a customer's request gets support's answers with their own reply
address, and their reply joins the ticket as ``cc``; ``#cc add`` (verified agents only)
copies someone later, ``#cc remove`` ends it; support's own addresses, agents and robots
in Cc are never copied, and an unverified claim copies nobody.

The gateway runs behind an MTA that checks DKIM/DMARC (``sender_authentication =
authres``), as in ``test_conversations.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem, OutboxStatus, SpoolEntry, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import run_gateway
from tests.e2e.test_conversations import (
    AUTHSERV,
    body_text,
    deliver,
    mail_to,
    messages,
    outbox_kinds,
    passed,
    ticket,
)
from tests.mail import make_mail

MAX, BOB, CARLA = "max@acme.example", "bob@partner.example", "carla@partner.example"
KENJI = "kenji@support.example"
AGENTS = "agents@team.support.example"
SUBJECT = "VPN drops every hour"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(sender_authentication="authres", authserv_id=AUTHSERV,
                            agents_address=AGENTS)


def ticket_json(settings: Settings, number: int) -> dict[str, Any]:
    shown = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr
    view: dict[str, Any] = json.loads(shown.stdout)
    return view


def request(settings: Settings, gw: Gateway, cc: str, *, verified: bool = True
            ) -> tuple[int, str]:
    """Max's request with ``cc`` in Cc (also the envelope's recipients, as a client sends
    it); the ticket number and Max's Message-ID."""
    message_id = make_msgid(domain="acme.example")
    raw = make_mail(sender=MAX, subject=SUBJECT, message_id=message_id,
                    body="Hello, the VPN drops every hour. Bob sees it too.",
                    headers={**(passed("acme.example") if verified else {}), "Cc": cc})
    row = deliver(settings, gw, raw, mail_from=MAX)
    assert row.ticket_number is not None, row.reason
    return row.ticket_number, message_id


def agent_reply(settings: Settings, gw: Gateway, number: int, body: str, *,
                verified: bool = True) -> SpoolEntry:
    """Kenji answers in Max's thread (an unverified claim threads by its headers only)."""
    origin = ticket(gw, number).origin_message_id
    raw = make_mail(sender=KENJI, sender_name="Kenji", subject=f"Re: [#{number}] {SUBJECT}",
                    body=body, in_reply_to=f"<{origin}>",
                    headers=passed("support.example") if verified else None)
    return deliver(settings, gw, raw, mail_from=KENJI)


def relayed(settings: Settings, address: str) -> list[EmailMessage]:
    """The agents' answers relayed to ``address`` (a person's words: no Auto-Submitted)."""
    return [m for m in mail_to(settings, address) if not m["Auto-Submitted"]]


def test_a_ccd_colleague_gets_the_answer_and_their_reply_joins_as_cc(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, max_id = request(settings, gw, f"Bob <{BOB}>")
    assert outbox_kinds(gw, BOB) == []  # the acknowledgement is the requester's only

    agent_reply(settings, gw, number, "Please install the 2.4.1 client, both of you.")
    (to_max,) = relayed(settings, MAX)
    (to_bob,) = relayed(settings, BOB)
    assert "Please install the 2.4.1 client" in body_text(to_bob)
    assert to_bob["Subject"] == f"[#{number}] {SUBJECT}"
    assert b"kenji@support.example" not in to_bob.as_bytes()
    assert to_bob["In-Reply-To"] == max_id  # the thread Bob was copied on
    bob_address, max_address = str(to_bob["Reply-To"]), str(to_max["Reply-To"])
    assert bob_address.startswith("support+") and bob_address != max_address

    answer = make_mail(sender=BOB, to=bob_address, subject=f"Re: {to_bob['Subject']}",
                       body="Installed 2.4.1, the drops are gone here.",
                       in_reply_to=str(to_bob["Message-ID"]), headers=passed("partner.example"))
    deliver(settings, gw, answer, mail_from=BOB, rcpt_to=bob_address)
    bob = [m for m in messages(gw, number) if m.from_address == BOB]
    assert [(m.role, m.kind, m.threaded_by, m.flags) for m in bob] == [
        ("cc", "public", "reply_token", [])]
    assert outbox_kinds(gw, AGENTS)[-1] == "agents_notice"  # support hears of it
    assert len(relayed(settings, MAX)) == 1  # nothing relayed: Bob's reply-all reached Max

    view = ticket_json(settings, number)
    assert view["requester"] == MAX
    assert {"email": BOB, "role": "cc"} in view["participants"]
    assert {"email": MAX, "role": "requester"} in view["participants"]
    assert [m["role"] for m in written_by_people(view)] == ["requester", "agent", "cc"]


def test_cc_remove_stops_the_mail_and_their_replies_are_flagged(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = request(settings, gw, f"{BOB}, {CARLA}")
    agent_reply(settings, gw, number, f"#cc remove {CARLA}\nBob, please send the logs.")
    assert len(relayed(settings, BOB)) == 1 and relayed(settings, CARLA) == []
    agent_reply(settings, gw, number, "#status solved")
    assert outbox_kinds(gw, BOB) == ["agent_reply", "status_notice"]
    assert outbox_kinds(gw, CARLA) == []

    late = make_mail(sender=CARLA, subject=f"Re: [#{number}] {SUBJECT}",
                     body="Am I still on this?", headers=passed("partner.example"))
    deliver(settings, gw, late, mail_from=CARLA)
    carla = [m for m in messages(gw, number) if m.from_address == CARLA]
    assert [m.role for m in carla] == ["requester"]
    assert carla[0].flags == [f"{CARLA} takes no part in ticket #{number} and is not on the "
                              "requester's team"]
    view = ticket_json(settings, number)
    assert CARLA not in [p["email"] for p in view["participants"]]


def test_a_verified_agent_adds_someone_and_an_unverified_one_cannot(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = request(settings, gw, BOB)
    agent_reply(settings, gw, number, f"#cc add {CARLA}\nHello, untrusted.", verified=False)
    assert outbox_kinds(gw, CARLA) == []
    kept = [m for m in messages(gw, number) if m.from_address == KENJI]
    assert kept[0].role == "requester" and kept[0].text.startswith(f"#cc add {CARLA}")

    agent_reply(settings, gw, number, f"#cc add {CARLA}\nCarla, please check the proxy.")
    (to_carla,) = relayed(settings, CARLA)
    assert "Carla, please check the proxy." in body_text(to_carla)
    assert "#cc" not in body_text(to_carla)
    assert len(relayed(settings, BOB)) == 1 and len(relayed(settings, MAX)) == 1
    roles = {p["email"]: p["role"] for p in ticket_json(settings, number)["participants"]}
    assert (roles[BOB], roles[CARLA]) == ("cc", "cc")


def test_support_addresses_agents_and_robots_in_cc_are_never_added(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = request(settings, gw, ", ".join([
        "Support <support@support.example>", KENJI, "lena@support.example", AGENTS,
        "MAILER-DAEMON@partner.example", "noreply@partner.example", BOB]))
    roles = {p["email"]: p["role"] for p in ticket_json(settings, number)["participants"]}
    assert {e for e, r in roles.items() if r == "cc"} == {BOB}
    agent_reply(settings, gw, number, "Looking into it.")
    for address in (KENJI, "lena@support.example", "noreply@partner.example",
                    "mailer-daemon@partner.example"):
        assert outbox_kinds(gw, address) == []
    assert outbox_kinds(gw, AGENTS) == ["agents_notice"]  # the new request only


def test_an_unverified_requester_copies_nobody(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = request(settings, gw, BOB, verified=False)
    agent_reply(settings, gw, number, "Please install the 2.4.1 client.")
    assert outbox_kinds(gw, BOB) == []
    (first,) = [m for m in messages(gw, number) if m.from_address == MAX]
    assert f"Cc not copied on ticket #{number}" in first.flags[-1]
    view = ticket_json(settings, number)
    assert BOB not in [p["email"] for p in view["participants"]]


def written_by_people(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages people wrote (``tickets show`` also lists the gateway's own mail)."""
    return [m for m in view["messages"] if m["role"] != "system"]


def test_an_address_no_mail_can_carry_holds_up_no_answer_and_no_command(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Intake keeps what senders write; "mail_relay" (an underscore in a host name) and an
    # address literal cannot be written in a header: every agent answer on a ticket with
    # such a participant used to fail, its #status too, and the ticket sat in the queue.
    number, _ = request(settings, gw, "Bob <bob@mail_relay.acme.example>")
    answer = agent_reply(settings, gw, number, "Hello Max, please restart the VPN client.")
    assert answer.state.value == "processed", answer.reason
    assert any("restart the VPN" in m.as_string() for m in relayed(settings, MAX))
    stranger = deliver(settings, gw, make_mail(sender="anna@[192.0.2.1]", subject="Locked out",
                                               body="Hello, I cannot log in."),
                       mail_from="bounce@example.com")
    assert stranger.ticket_number is not None, stranger.reason
    closed = agent_reply(settings, gw, stranger.ticket_number, "#status closed")
    assert closed.state.value == "processed", closed.reason
    assert ticket(gw, stranger.ticket_number).status == TicketStatus.CLOSED
    with gw.db.reading() as session:
        dead = session.scalars(select(OutboxItem).where(
            OutboxItem.rcpt_to.in_(["bob@mail_relay.acme.example", "anna@[192.0.2.1]"]))).all()
    assert dead and all(item.status == OutboxStatus.DEAD and "cannot be written"
                        in item.last_error for item in dead)
