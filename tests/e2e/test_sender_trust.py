"""Sender trust over real SMTP (issue 12): forged identities get nothing but a flagged,
stored message.

Each test replays an attack against a running gateway and checks that the claimed identity
gave no privilege, no premium promise and no status change, that the message was kept with
the visible ``unverified sender`` flag, and (as a control) that the genuine sender still
gets what the forger did not.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from gateway.active_policy import current_policy
from gateway.config import Settings
from gateway.decisions import decide_for
from gateway.models import (
    AccessRequest,
    MessageRecord,
    Participant,
    SpoolEntry,
    Ticket,
    TicketStatus,
)
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import Processes, wait_for
from tests.e2e.test_conversations import (
    AUTHSERV,
    acknowledgement,
    agent_mail,
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

AGENTS = "agents@support.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
             ) -> Settings:
    overrides: dict[str, Any] = {"sender_authentication": "authres", "authserv_id": AUTHSERV,
                                 "agents_address": AGENTS}
    overrides.update(getattr(request, "param", {}))
    return settings_factory(**overrides)


token_mode = pytest.mark.parametrize(
    "settings", [{"sender_authentication": "token", "authserv_id": ""}], indirect=True)


def with_results(raw: bytes, *values: str) -> bytes:
    """``raw`` with ``Authentication-Results`` lines on top, byte for byte as given (an
    ``EmailMessage`` would decode and re-encode them)."""
    return "".join(f"Authentication-Results: {v}\r\n" for v in values).encode() + raw


def flagged(record: MessageRecord) -> bool:
    return any(flag.startswith("unverified sender") for flag in record.flags)


def agents_notices(settings: Settings, number: int) -> list[str]:
    return [body_text(m) for m in mail_to(settings, AGENTS)
            if str(m["Subject"]).startswith(f"[#{number}]")]


# -- token mode: a token vouches only for the participant it was issued to ------------------

@token_mode
def test_token_mode_stranger_with_his_own_token_and_an_agents_from_gets_nothing(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    mallory = "mallory@evil.example"
    own, _ = open_ticket(settings, gw, sender=mallory, subject="Question about VPN",
                         body="Which VPN client do you support on Linux machines?")
    token_address = str(acknowledgement(settings, mallory, own)["Reply-To"])
    # Through the token of his own ticket, From: a directory agent.
    for body in ("#status closed\nYour ticket is closed, send us your password to reopen.",
                 "#access team=acme\nPlease approve, urgent security update."):
        deliver(settings, gw, agent_mail(own, body, headers={}, to=token_address),
                mail_from="kenji@support.example", rcpt_to=token_address)

    claimed = [m for m in messages(gw, own) if m.from_address == "kenji@support.example"]
    assert [(m.role, flagged(m)) for m in claimed] == [("requester", True)] * 2
    assert ticket(gw, own).status == TicketStatus.NEW and ticket(gw, own).first_response_at \
        is None
    assert outbox_kinds(gw, mallory) == ["acknowledgement"]  # nothing relayed as support's
    with gw.db.reading() as session:
        assert session.scalars(select(AccessRequest)).all() == []
    assert outbox_kinds(gw, "anna@acme.example") == []  # no activation request to admins
    notices = agents_notices(settings, own)
    assert any("UNVERIFIED SENDER" in text and "Warning:    unverified sender" in text
               for text in notices)

    # Control: the genuine agent through the agents' own reply address still acts.
    agents_token = str([m for m in mail_to(settings, AGENTS)
                        if str(m["Subject"]).startswith(f"[#{own}]")][0]["Reply-To"])
    deliver(settings, gw, agent_mail(own, "#status pending\nWhich distribution?", headers={},
                                     to=agents_token),
            mail_from="kenji@support.example", rcpt_to=agents_token)
    assert ticket(gw, own).status == TicketStatus.PENDING
    assert outbox_kinds(gw, mallory)[-1] == "agent_reply"


@token_mode
def test_token_mode_customer_with_the_agents_token_and_an_agents_from_gets_nothing(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)
    (notice,) = [m for m in mail_to(settings, AGENTS) if str(m["Subject"]).startswith(
        f"[#{number}]")]
    agents_token = str(notice["Reply-To"])
    # The agents' token vouches for directory agents only: Max claiming to be an agent
    # is a different person from the one the From names, and a stranger From is no agent.
    deliver(settings, gw, make_mail(sender="mallory@evil.example", to=agents_token,
                                    subject="Re: VPN", body="#status closed\nDone."),
            mail_from="mallory@evil.example", rcpt_to=agents_token)
    assert ticket(gw, number).status == TicketStatus.NEW
    assert "agent_reply" not in outbox_kinds(gw, "max@acme.example")


# -- authres: only the topmost header of our MTA, read as received, aligned ----------------

FORGED_PASS = f"{AUTHSERV}; dkim=pass header.d=support.example; dmarc=pass " \
              "header.from=support.example"


@pytest.mark.parametrize("results", [
    # unreadable topmost header of our MTA (a result without "="), forged pass below
    (f"{AUTHSERV}; dmarc=fail header.from=support.example; dkim pass header.d=x.example",
     FORGED_PASS),
    # legal values an earlier parser could not read: read here, no pass, lower one ignored
    (f"{AUTHSERV}; spf=none smtp.mailfrom=<> smtp.helo=[192.0.2.7]; dkim=none",
     FORGED_PASS),
    (f"{AUTHSERV}; spf=pass smtp.mailfrom=kenji@süpport.example; dmarc=none "
     "header.from=support.example", FORGED_PASS),
    # RFC 2047 encoded words are no values
    (f"{AUTHSERV}; dmarc==?utf-8?q?pass?= header.from=support.example",),
    (f"{AUTHSERV}; dmarc=pass header.from==?utf-8?q?support.example?=",),
    # a pass that says nothing about the From domain
    (f"{AUTHSERV}; dmarc=pass",),
    (f"{AUTHSERV}; dmarc=pass header.from=evil.example",),
    (f"{AUTHSERV}; dkim=pass header.d=evil.example",),
], ids=["unreadable-top", "null-mailfrom-top", "utf8-mailfrom-top", "encoded-result",
        "encoded-header-from", "no-header-from", "other-header-from", "unaligned-dkim"])
def test_a_forged_or_unreadable_pass_verifies_no_agent(
        running: GatewayServer, gw: Gateway, settings: Settings, results: tuple[str, ...]
        ) -> None:
    number, _ = open_ticket(settings, gw, headers=passed("acme.example"))
    ack = acknowledgement(settings, "max@acme.example", number)
    forged = with_results(agent_mail(number, "#status closed\nClosed, send your password.",
                                     headers={}, in_reply_to=str(ack["Message-ID"])),
                          *results)
    row = deliver(settings, gw, forged, mail_from="kenji@support.example")
    assert row.ticket_number == number
    assert ticket(gw, number).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    (claimed,) = [m for m in messages(gw, number) if m.from_address == "kenji@support.example"]
    assert claimed.role == "requester" and flagged(claimed)

    # Control: the same command with the header our MTA writes for a genuine agent.
    genuine = agent_mail(number, "#status closed\nFixed in 2.4.1.",
                         in_reply_to=str(ack["Message-ID"]))
    deliver(settings, gw, genuine, mail_from="kenji@support.example")
    assert ticket(gw, number).status == TicketStatus.CLOSED


# -- forged requesters --------------------------------------------------------------------

DMARC_FAIL = {"Authentication-Results": f"{AUTHSERV}; dkim=none; dmarc=fail (p=none) "
              "header.from=acme.example"}


def test_a_forged_admin_gets_standard_terms_no_reopen_and_agents_see_unverified(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # The genuine admin: her team's Enhanced plan.
    genuine, _ = open_ticket(settings, gw, sender="anna@acme.example", subject="Licence count",
                             body="We need five more licences for the new office.",
                             headers=passed("acme.example"))
    assert ticket(gw, genuine).tier == "enhanced"
    deliver(settings, gw, make_mail(
        sender="kenji@support.example", subject=f"Re: [#{genuine}] Licence count",
        body="#status solved\nDone: five more licences.", headers=passed("support.example")),
        mail_from="kenji@support.example")
    assert ticket(gw, genuine).status == TicketStatus.SOLVED

    # A new request From her address whose DMARC failed: standard terms, flagged.
    row = deliver(settings, gw, make_mail(
        sender="anna@acme.example", subject="Urgent: server down",
        body="Our whole file server is down, please call me at once.", headers=DMARC_FAIL),
        mail_from="anna@acme.example")
    assert row.ticket_number is not None
    forged = ticket(gw, row.ticket_number)
    assert forged.requester == "anna@acme.example" and forged.tier == "standard"
    assert "not a verified sender" in forged.entitlement
    with gw.db.reading() as session:
        entry = session.get(SpoolEntry, row.id)
        assert entry is not None
        stranger = decide_for(session, current_policy(settings), email="someone@nowhere.example",
                              at=entry.received_at, subject="Urgent: server down",
                              text="Our whole file server is down, please call me at once.",
                              language="de").entitlement
    assert forged.first_response_due == stranger.due  # a stranger's due time, not 1 hour
    (record,) = messages(gw, forged.number)
    assert flagged(record) and "dmarc=fail" in " ".join(record.flags)
    (notice,) = agents_notices(settings, forged.number)
    assert "    From:       anna@acme.example (UNVERIFIED SENDER)\n" in notice
    assert "Tier:       standard" in notice and "Warning:    unverified sender" in notice
    assert outbox_kinds(gw, "olga@acme.example").count("team_ticket_copy") == 1  # genuine only

    # Her forged reply to the solved ticket: kept on it, flagged, the ticket stays solved.
    reply = deliver(settings, gw, make_mail(
        sender="anna@acme.example", subject=f"Re: [#{genuine}] Licence count",
        body="This is not solved, reopen it and raise our licences to 500.",
        headers=DMARC_FAIL), mail_from="anna@acme.example")
    assert reply.ticket_number == genuine
    assert ticket(gw, genuine).status == TicketStatus.SOLVED
    kept = messages(gw, genuine)[-1]
    assert "raise our licences to 500" in kept.text and kept.role == "requester"
    assert flagged(kept) and any(f.startswith("not reopened") for f in kept.flags)
    assert "reopened" not in outbox_kinds(gw, "anna@acme.example")
    (follow_up_notice,) = [text for text in agents_notices(settings, genuine)
                           if "raise our licences" in text]
    assert "UNVERIFIED SENDER" in follow_up_notice and "Status: solved" in follow_up_notice
    assert "Warning:    not reopened" in follow_up_notice

    # Control: the genuine admin's reply reopens it.
    deliver(settings, gw, make_mail(
        sender="anna@acme.example", subject=f"Re: [#{genuine}] Licence count",
        body="Sorry, we need two more.", headers=passed("acme.example")),
        mail_from="anna@acme.example")
    assert ticket(gw, genuine).status == TicketStatus.OPEN


def test_a_second_from_above_a_colleagues_passing_mail_takes_no_admins_terms(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    """Max's mail passed DMARC for acme.example; a forger adds ``From: anna`` on top of it.
    Which From the checker judged nobody can say, so the pass vouches for neither."""
    colleague = make_mail(sender="max@acme.example", subject="Urgent: raise our licences",
                          body="Please raise our licences to 500 at once.")
    stamp = f"Authentication-Results: {passed('acme.example')['Authentication-Results']}\r\n"
    row = deliver(settings, gw, stamp.encode() + b"From: anna@acme.example\r\n" + colleague,
                  mail_from="max@acme.example")
    assert row.ticket_number is not None, row.reason
    forged = ticket(gw, row.ticket_number)
    assert forged.requester == "anna@acme.example" and forged.tier == "standard"
    (record,) = messages(gw, forged.number)
    assert flagged(record) and "more than one from header" in " ".join(record.flags)
    # Control: the same mail with one From is hers, on her team's Enhanced plan.
    genuine, _ = open_ticket(settings, gw, sender="anna@acme.example", subject="Licence count",
                             body="We need five more licences.", headers=passed("acme.example"))
    assert ticket(gw, genuine).tier == "enhanced"


EMERGENCY = "emergency@support.example"


@pytest.mark.parametrize("settings", [{"emergency_address": EMERGENCY}], indirect=True)
def test_the_emergency_line_promises_its_hours_to_verified_senders_only(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    """The emergency line is paid per use (MISSION §3) and its 2-hour promise a premium one
    (§5.6): mail to its address in a forged name gets a stranger's terms."""
    forged = deliver(settings, gw, make_mail(
        sender="anna@acme.example", to=EMERGENCY, subject="Server down",
        body="Everything is down, call me.", headers=DMARC_FAIL),
        mail_from="anna@acme.example", rcpt_to=EMERGENCY)
    stranger = deliver(settings, gw, make_mail(
        sender="someone@nowhere.example", to=EMERGENCY, subject="Server down",
        body="Everything is down, call me."), mail_from="someone@nowhere.example",
        rcpt_to=EMERGENCY)
    for row in (forged, stranger):
        assert row.ticket_number is not None, row.reason
        kept = ticket(gw, row.ticket_number)
        assert kept.tier == "standard", kept.entitlement
        assert "emergency address, but" in kept.entitlement
    # Control: the same mail with passing evidence gets the emergency window.
    genuine = deliver(settings, gw, make_mail(
        sender="anna@acme.example", to=EMERGENCY, subject="Server down again",
        body="Everything is down again, call me.", headers=passed("acme.example")),
        mail_from="anna@acme.example", rcpt_to=EMERGENCY)
    assert genuine.ticket_number is not None
    assert ticket(gw, genuine.ticket_number).tier in {"emergency", "enhanced"}
    assert "sent to the emergency address at" in ticket(gw, genuine.ticket_number).entitlement


def test_a_forged_request_does_not_swallow_the_genuine_one_as_its_duplicate(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Forged in the premium admin's name with a guessable subject, before she writes.
    forged = deliver(settings, gw, make_mail(sender="anna@acme.example", subject="Sync fails",
                                             body="please ignore"),
                     mail_from="bounce@evil.example")
    assert forged.ticket_number is not None
    assert ticket(gw, forged.ticket_number).tier == "standard"

    # Her genuine request, the same subject as a reply: a ticket of its own, her terms.
    genuine = deliver(settings, gw, make_mail(
        sender="anna@acme.example", subject="Re: SYNC   fails",
        body="Our whole team cannot sync since this morning, production is down.",
        headers=passed("acme.example")), mail_from="anna@acme.example")
    assert genuine.ticket_number not in (None, forged.ticket_number)
    mine = ticket(gw, genuine.ticket_number)
    assert mine.duplicate_of is None and mine.status == TicketStatus.NEW
    assert mine.tier == "enhanced"
    assert outbox_kinds(gw, "anna@acme.example").count("duplicate_notice") == 0
    assert len(agents_notices(settings, mine.number)) == 1
    assert any(note["step"] == "duplicates" and note["outcome"] == "not-linked"
               for note in genuine.trace)

    # Control: her own verified repeat is still linked to her genuine ticket.
    again = deliver(settings, gw, make_mail(
        sender="anna@acme.example", subject="Sync fails",
        body="Still no sync, please hurry.", headers=passed("acme.example")),
        mail_from="anna@acme.example")
    assert again.ticket_number is not None
    assert ticket(gw, again.ticket_number).duplicate_of == mine.number


def test_forged_mail_does_not_use_up_the_genuine_senders_hourly_answers(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    limit = settings.ack_limit_per_hour
    for index in range(limit + 1):  # forged in max's name: the loop brake stops the last
        deliver(settings, gw, make_mail(sender="max@acme.example", subject=f"Order {index}",
                                        body=f"Forged request number {index} in max's name."),
                mail_from="bounce@evil.example")
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"] * limit

    genuine = deliver(settings, gw, make_mail(
        sender="max@acme.example", subject="Printer queue stuck",
        body="The printer queue has been stuck since this morning.",
        headers=passed("acme.example")), mail_from="max@acme.example")
    assert genuine.ticket_number is not None
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"] * (limit + 1)
    ack = acknowledgement(settings, "max@acme.example", genuine.ticket_number)
    assert "Printer queue stuck" in str(ack["Subject"])


MALLORY = "mallory@evil.example"


def forward_from_kenji(subject: str, forwarded_body: str, words: str = "") -> bytes:
    """Kenji (verified) forwards Mallory's mail inline, as mail clients write a forward."""
    text = (f"{words}\n\n" if words else "") + (
        "---------- Forwarded message ---------\n"
        f"From: Mallory <{MALLORY}>\nDate: Mon, 7 Dec 2026 at 10:00\n"
        f"Subject: {subject}\nTo: Kenji <kenji@support.example>\n\n{forwarded_body}")
    return make_mail(sender="kenji@support.example", subject=f"Fwd: {subject}", body=text,
                     headers=passed("support.example"))


def participants(gw: Gateway, number: int) -> dict[str, str]:
    with gw.db.reading() as session:
        return {p.email: p.role for p in session.scalars(
            select(Participant).where(Participant.ticket_number == number))}


def test_a_strangers_mail_forwarded_by_an_agent_speaks_with_no_authority(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, _ = open_ticket(settings, gw)  # Max's ticket
    # Mallory mails Kenji directly, naming Max's ticket; Kenji forwards it onto the ticket.
    deliver(settings, gw, forward_from_kenji(
        f"Re: [#{number}] VPN drops every hour",
        f"#cc add {MALLORY}\n#status pending\n\nDear customer, your account is locked: "
        "log in at https://evil.example/x within 24 hours.\n"), mail_from="kenji@support.example")
    # Her lines ran no command, and nothing of hers went to Max as support's answer …
    assert MALLORY not in participants(gw, number)
    assert ticket(gw, number).status == TicketStatus.NEW
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]
    # … the forward is on the ticket for the agents, as an internal note.
    forward = messages(gw, number)[-1]
    assert (forward.from_address, forward.kind) == ("kenji@support.example", "note")
    assert "evil.example/x" in forward.text

    # Control: the agent's own words above a forward still command.
    deliver(settings, gw, forward_from_kenji(
        f"Re: [#{number}] VPN drops every hour", "#status closed\nIgnore me.\n",
        words="#status pending\nMax, see the vendor's answer below."),
        mail_from="kenji@support.example")
    assert ticket(gw, number).status == TicketStatus.PENDING


def test_an_access_line_in_a_forwarded_mail_requests_no_access(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # The on-behalf flow (a forward of a new mail opens a ticket for its sender): the
    # forwarded text is the customer's request, never the agent's #access command.
    row = deliver(settings, gw, forward_from_kenji(
        "Problem with files", "#access team=acme department=support export\n"
        "Routine audit of your files: please activate.\n"), mail_from="kenji@support.example")
    assert "grant_activation" not in outbox_kinds(gw, "anna@acme.example")
    with gw.db.reading() as session:
        assert session.scalars(select(AccessRequest)).all() == []
    assert row.ticket_number is not None and ticket(gw, row.ticket_number).requester == MALLORY


def test_an_unverified_member_gets_no_ticket_list_but_a_stranger_still_gets_help(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    open_ticket(settings, gw, headers=passed("acme.example"))
    row = deliver(settings, gw, make_mail(sender="max@acme.example", subject="my tickets",
                                          body="#tickets"), mail_from="max@acme.example")
    assert "not a verified sender" in row.reason and row.ticket_number is None
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement"]  # no list
    # The ordinary case: a stranger without any authentication opens a ticket as today.
    number, _ = open_ticket(settings, gw, sender="paula@client.example", subject="Invoice",
                            body="Where can I download my invoice for November?")
    assert ticket(gw, number).tier == "standard"
    assert outbox_kinds(gw, "paula@client.example") == ["acknowledgement"]
    (record,) = messages(gw, number)
    assert record.flags == []


# -- header text never adds lines to a mail body --------------------------------------------

def test_a_display_name_with_line_breaks_adds_no_lines_to_the_agents_notice(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    name = "=?utf-8?b?TWF4IE1lbWJlcgpXYXJuaW5nOiBwYXkgbm93?="  # "Max Member\nWarning: pay now"
    subject = "=?utf-8?q?VPN_drops=0D=0AFirst_response_due:_never?="
    raw = (f"From: {name} <max@acme.example>\r\nTo: support@support.example\r\n"
           f"Subject: {subject}\r\nMessage-ID: {make_msgid(domain='acme.example')}\r\n"
           f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from=acme.example\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "The VPN drops every hour.\r\n").encode()
    row = deliver(settings, gw, raw, mail_from="max@acme.example")
    assert row.ticket_number is not None
    (notice,) = agents_notices(settings, row.ticket_number)
    lines = notice.splitlines()
    assert not any(line.lstrip().startswith(("Warning: pay now", "First response due: never"))
                   for line in lines)
    assert "Max Member Warning: pay now <max@acme.example>" in notice
    assert f"New request [#{row.ticket_number}] VPN drops First response due: never" in notice
    for mail in mail_to(settings, "max@acme.example"):
        assert not any(line.lstrip().startswith("First response due: never")
                       for line in body_text(mail).splitlines())
    with gw.db.reading() as session:  # stored as received: only the mail body is cleaned
        stored = session.get(Ticket, row.ticket_number)
        assert stored is not None and "\n" in stored.subject


@token_mode
def test_serve_in_token_mode_says_at_start_that_it_is_for_development_only(
        gw: Gateway, settings: Settings, processes: Processes) -> None:
    processes.serve()
    wait_for(lambda: "sender_authentication = token is for DEVELOPMENT ONLY" in processes.logs(),
             message="the development-mode warning of serve")
