"""``#assign`` and ``#merge`` over real SMTP (issue 16, item 3; DESIGN §13).

A verified agent's ``#assign me`` / ``#assign EMAIL`` sets the ticket's owner and mails
the assignee (not themselves); ``#merge N`` moves the ticket's messages and participants
to N, closes it as merged, tells both requesters on their own tickets, and the old number
keeps threading into N (reply token, Message-ID, subject tag).  The same lines from a
customer or from an unverified claim to be an agent do nothing and stay visible text.
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
from gateway.models import OutboxItem, Participant, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import run_gateway
from tests.e2e.test_conversations import (
    AUTHSERV,
    body_text,
    deliver,
    mail_to,
    messages,
    open_ticket,
    outbox_kinds,
    passed,
    ticket,
)
from tests.mail import make_mail

KENJI, LENA = "kenji@support.example", "lena@support.example"
MAX, GIULIA = "max@acme.example", "giulia@globex.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(sender_authentication="authres", authserv_id=AUTHSERV)


def ticket_json(settings: Settings, number: int) -> dict[str, Any]:
    shown = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr
    view: dict[str, Any] = json.loads(shown.stdout)
    return view


def command(number: int, subject: str, body: str, *, sender: str = KENJI,
            verified: bool = True, in_reply_to: str | None = None) -> bytes:
    return make_mail(sender=sender, subject=f"Re: [#{number}] {subject}", body=body,
                     headers=passed(sender.rpartition("@")[2]) if verified else {},
                     in_reply_to=in_reply_to)


def kind_of(message: EmailMessage, gateway: Gateway, kind: str, rcpt: str) -> bool:
    """Whether ``message`` is the outbox row of ``kind`` to ``rcpt``."""
    with gateway.db.reading() as session:
        ids = set(session.scalars(select(OutboxItem.message_id).where(
            OutboxItem.kind == kind, OutboxItem.rcpt_to == rcpt)))
    return str(message["Message-ID"]).strip("<>") in {i.strip("<>") for i in ids if i}


VPN = "VPN drops every hour"


def test_assign_me_and_another_agent_set_the_owner_and_mail_only_the_other(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, command(number, VPN, "#assign me"), mail_from=KENJI)
    assert ticket_json(settings, number)["owner"] == KENJI
    assert outbox_kinds(gw, KENJI) == []  # assigned to himself: no mail

    deliver(settings, gw, command(number, VPN, f"#note\n#assign {LENA}\nLena knows the VPN."),
            mail_from=KENJI)
    view = ticket_json(settings, number)
    assert view["owner"] == LENA and view["merged_into"] is None
    assert outbox_kinds(gw, LENA) == ["ticket_assigned"]
    (told,) = mail_to(settings, LENA)
    assert told["Subject"] == f"[#{number}] Assigned to you: {VPN}"
    assert told["Content-Language"] == "en" and told["Auto-Submitted"] == "auto-generated"
    assert "Kenji <kenji@support.example> assigned this ticket to you" in body_text(told)
    assert "the VPN connection drops every hour" in body_text(told)
    assert outbox_kinds(gw, MAX) == ["acknowledgement"]  # a note and commands: nothing

    # Lena answers through the mail she got: an agent reply on the ticket.
    reply_to = str(told["Reply-To"])
    answer = make_mail(sender=LENA, to=reply_to, subject=f"Re: {told['Subject']}",
                       body="Please update the client to 2.4.1.",
                       headers=passed("support.example"))
    row = deliver(settings, gw, answer, mail_from=LENA, rcpt_to=reply_to)
    assert row.ticket_number == number
    lena = [m for m in messages(gw, number) if m.from_address == LENA]
    assert [(m.role, m.kind, m.threaded_by) for m in lena] == [("agent", "public",
                                                                 "reply_token")]
    assert outbox_kinds(gw, MAX) == ["acknowledgement", "agent_reply"]

    # #assign none: back in the common queue, nobody is mailed
    deliver(settings, gw, command(number, VPN, "#assign none"), mail_from=KENJI)
    assert ticket_json(settings, number)["owner"] is None
    assert outbox_kinds(gw, LENA) == ["ticket_assigned"] and outbox_kinds(gw, KENJI) == []


def test_merge_moves_messages_and_people_and_the_old_number_leads_to_the_new(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    kept, max_id = open_ticket(settings, gw)
    subject = "VPN si disconnette"
    gone, giulia_id = open_ticket(settings, gw, sender=GIULIA, subject=subject,
                                  body="Buongiorno, la VPN si disconnette ogni ora.")
    deliver(settings, gw, command(gone, subject, f"#merge {kept}"), mail_from=KENJI)

    old, new = ticket_json(settings, gone), ticket_json(settings, kept)
    assert (old["merged_into"], old["status"], written_by_people(old)) == (kept, "closed", [])
    assert new["merged_into"] is None and new["status"] == "new"
    assert [(m["from"], m["role"]) for m in written_by_people(new)] == [
        (MAX, "requester"), (GIULIA, "requester"), (KENJI, "agent")]
    with gw.db.reading() as session:
        people = set(session.scalars(select(Participant.email).where(
            Participant.ticket_number == kept)))
    assert {MAX, GIULIA, KENJI} <= people

    # Both requesters are told, each on their own ticket, in their own language.
    (giulia_notice,) = [m for m in mail_to(settings, GIULIA)
                        if kind_of(m, gw, "ticket_merged", GIULIA)]
    assert giulia_notice["Subject"] == f"[#{gone}] {subject}"
    assert giulia_notice["Content-Language"] == "it"
    assert giulia_notice["In-Reply-To"] == f"<{giulia_id}>"
    assert f"richiesta #{kept}" in body_text(giulia_notice)
    assert VPN not in body_text(giulia_notice)  # nothing of the other customer's ticket
    (max_notice,) = [m for m in mail_to(settings, MAX) if kind_of(m, gw, "ticket_merged", MAX)]
    assert max_notice["Subject"] == f"[#{kept}] {VPN}"
    assert max_notice["Content-Language"] == "de"
    assert max_notice["In-Reply-To"] == f"<{max_id}>"
    assert f"(#{gone})" in body_text(max_notice) and subject not in body_text(max_notice)

    # What Giulia holds of the old ticket leads to the new one: its reply token, her own
    # Message-ID, and the [#old] subject tag.
    reply_to = str(giulia_notice["Reply-To"])
    by_token = make_mail(sender=GIULIA, to=reply_to, subject=f"Re: {giulia_notice['Subject']}",
                         body="Grazie, attendo.")
    assert deliver(settings, gw, by_token, mail_from=GIULIA,
                   rcpt_to=reply_to).ticket_number == kept
    by_headers = make_mail(sender=GIULIA, subject=f"Re: {subject}", body="Ancora giù.",
                           in_reply_to=f"<{giulia_id}>", references=f"<{giulia_id}>")
    assert deliver(settings, gw, by_headers, mail_from=GIULIA).ticket_number == kept
    by_tag = make_mail(sender=GIULIA, subject=f"[#{gone}] {subject}", body="Novità?",
                       message_id=make_msgid(domain="globex.example"))
    assert deliver(settings, gw, by_tag, mail_from=GIULIA).ticket_number == kept
    assert [m.from_address for m in messages(gw, gone)] == []
    assert ticket(gw, gone).status == TicketStatus.CLOSED


def test_a_customers_or_an_unverified_agents_commands_do_nothing_and_stay_text(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    kept, max_id = open_ticket(settings, gw)
    other, _ = open_ticket(settings, gw, sender=GIULIA, subject="VPN si disconnette")
    lines = f"#assign {KENJI}\n#merge {other}\nPlease hurry."
    deliver(settings, gw, command(kept, VPN, lines, sender=MAX), mail_from=MAX)
    # (a forger names Max's message: the tag alone would not let an unverified agent in)
    deliver(settings, gw, command(kept, VPN, lines, verified=False,
                                  in_reply_to=f"<{max_id}>"), mail_from=KENJI)

    view = ticket_json(settings, kept)
    assert (view["owner"], view["merged_into"]) == (None, None)
    assert ticket_json(settings, other)["merged_into"] is None
    later = written_by_people(view)[1:]
    assert [(m["from"], m["role"]) for m in later] == [(MAX, "requester"),
                                                        (KENJI, "requester")]
    assert all(m["text"].startswith(f"#assign {KENJI}\n#merge {other}") for m in later)
    assert any("unverified" in flag for flag in later[1]["flags"])
    assert outbox_kinds(gw, KENJI) == [] and outbox_kinds(gw, GIULIA) == ["acknowledgement"]


def written_by_people(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages people wrote (``tickets show`` also lists the gateway's own mail)."""
    return [m for m in view["messages"] if m["role"] != "system"]
