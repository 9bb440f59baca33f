"""Step ``record``: the ticket (when new), the message with its role, kind, text and
attachments, the thread index and the spool row's outcome; a refused reply changes no
ticket, a duplicate is stored closed and linked; the verified requester's Cc are copied on
the ticket (never support's addresses, agents or robots)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.models import (
    MessageRecord,
    MessageRef,
    Participant,
    SpoolEntry,
    SpoolState,
    TicketStatus,
)
from gateway.pipeline.steps import record
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import (
    context_before,
    origin_of,
    passed,
    processed,
    ticket_of,
    trace_of,
)

ANNA, MAX, KENJI = "anna@acme.example", "max@acme.example", "kenji@support.example"


def _messages(gw: Gateway, number: int) -> list[MessageRecord]:
    with gw.db.reading() as session:
        return list(session.scalars(select(MessageRecord).where(
            MessageRecord.ticket_number == number).order_by(MessageRecord.id)))


def _spool(gw: Gateway, spool_id: int) -> SpoolEntry:
    with gw.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        return entry


def test_a_new_request_is_stored_as_a_ticket_with_its_message(gw: Gateway) -> None:
    raw = make_mail(sender=MAX, sender_name="Max Member", subject="Files: sync fails",
                    message_id="<req-1@acme.example>", headers=passed(MAX),
                    body="Sync fails since Monday.\n\n-- \nMax")
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        number, spool_id, due = ctx.ticket.number, ctx.spool.id, ctx.terms.due
        assert trace_of(ctx, record.name) == [
            ("stored", f"new ticket #{number} as requester public message")]
    ticket = ticket_of(gw, number)
    assert (ticket.subject, ticket.requester, ticket.requester_name, ticket.team_id) == (
        "Files: sync fails", MAX, "Max Member", "acme")
    assert (ticket.status, ticket.tier, ticket.product, ticket.language) == (
        TicketStatus.NEW, "enhanced", "files", "de")
    assert due is not None and ticket.first_response_due == due
    [message] = _messages(gw, number)
    assert (message.role, message.kind, message.threaded_by, message.from_address) == (
        "requester", "public", "new_ticket", MAX)
    assert message.text == "Sync fails since Monday." and "-- \nMax" in message.full_text
    entry = _spool(gw, spool_id)
    assert (entry.state, entry.ticket_number, entry.reason) == (
        SpoolState.PROCESSED, number, f"new ticket #{number}")
    with gw.db.reading() as session:
        assert session.scalar(select(MessageRef.direction).where(
            MessageRef.message_id == "req-1@acme.example")) == "in"


def test_attachments_of_a_real_mail_are_stored(gw: Gateway) -> None:
    raw = corpus_bytes("multilingual", "flanker/russian-attachment-yahoo.eml")
    with context_before(gw, record.name, raw) as ctx:
        assert ctx.parsed is not None
        expected = [(a.filename, a.size, a.sha256) for a in ctx.parsed.attachments]
        record.run(ctx)
        assert ctx.ticket is not None
        number = ctx.ticket.number
    assert expected and any(any(ord(c) > 0x3ff for c in name) for name, _, _ in expected)
    with gw.db.reading() as session:
        [message] = session.scalars(select(MessageRecord).where(
            MessageRecord.ticket_number == number)).all()
        assert [(a.filename, a.size, a.sha256) for a in message.attachments] == expected


def test_an_agents_reply_is_added_and_is_the_first_response(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    raw = make_mail(sender=KENJI, subject="Re: Sync fails", body="Please update to 4.2.",
                    in_reply_to=origin_of(gw, number), headers=passed(KENJI))
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        received, spool_id = ctx.spool.received_at, ctx.spool.id
    assert ticket_of(gw, number).first_response_at == received
    assert [(m.role, m.kind, m.threaded_by) for m in _messages(gw, number)] == [
        ("requester", "public", "new_ticket"), ("agent", "public", "headers")]
    assert _spool(gw, spool_id).reason == f"added to ticket #{number} by headers"


def test_an_internal_note_is_no_first_response(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    raw = make_mail(sender=KENJI, subject="Re: Sync fails", body="#note\nAsk Lena about it.",
                    in_reply_to=origin_of(gw, number), headers=passed(KENJI))
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
    assert ticket_of(gw, number).first_response_at is None
    note = _messages(gw, number)[-1]
    assert (note.role, note.kind, note.text) == ("agent", "note", "Ask Lena about it.")


def test_a_refused_reply_changes_no_ticket(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    raw = make_mail(sender=MAX, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                    headers=passed(MAX))
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        spool_id = ctx.spool.id
    assert len(_messages(gw, number)) == 1
    entry = _spool(gw, spool_id)
    assert (entry.state, entry.ticket_number) == (SpoolState.IGNORED, number)
    assert entry.reason == (f"refused: {MAX} on ticket #{number}: only team admins may reply "
                            "to a ticket submitted by a colleague")


def test_a_duplicate_is_stored_closed_and_linked(gw: Gateway) -> None:
    first = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    raw = make_mail(subject="Sync fails", body="Still failing!", headers=passed(ANNA))
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        assert ctx.ticket is not None
        number, spool_id = ctx.ticket.number, ctx.spool.id
    ticket = ticket_of(gw, number)
    assert (ticket.status, ticket.duplicate_of) == (TicketStatus.CLOSED, first)
    assert _spool(gw, spool_id).reason == f"new ticket #{number}, a duplicate of #{first}"


def test_a_forward_on_behalf_stores_the_customers_message_then_the_agents_note(
        gw: Gateway) -> None:
    body = ("Please take this one.\n\n---------- Forwarded message ---------\n"
            f"From: Max Member <{MAX}>\nSubject: Files: sync fails\n\n"
            "Sync fails with error 42.")
    raw = make_mail(sender=KENJI, sender_name="Kenji", subject="Fwd: Files: sync fails",
                    body=body, headers=passed(KENJI))
    with context_before(gw, record.name, raw) as ctx:
        assert ctx.on_behalf is not None
        forward_id = ctx.on_behalf.message_id
        record.run(ctx)
        number = ctx.ticket.number
    ticket = ticket_of(gw, number)
    assert (ticket.requester, ticket.requester_name, ticket.team_id, ticket.subject) == (
        MAX, "Max Member", "acme", "Files: sync fails")
    customer, note = _messages(gw, number)
    assert (customer.from_address, customer.role, customer.kind, customer.text) == (
        MAX, "requester", "public", "Sync fails with error 42.")
    assert "Please take this one" not in customer.full_text and customer.html is None
    assert (note.from_address, note.role, note.kind, note.text) == (
        KENJI, "agent", "note", "Please take this one.")
    assert note.message_id == forward_id and note.threaded_by == "forwarded"
    with gw.db.reading() as session:
        refs = set(session.scalars(select(MessageRef.message_id).where(
            MessageRef.ticket_number == number)))
    assert forward_id in refs


# -- Cc participants ------------------------------------------------------------------

BOB, CARLA = "bob@partner.example", "carla@partner.example"
AGENTS = "agents@team.support.example"


def _roles(gw: Gateway, number: int) -> dict[str, str]:
    with gw.db.reading() as session:
        return {p.email: p.role for p in session.scalars(select(Participant).where(
            Participant.ticket_number == number))}


@pytest.mark.parametrize("settings", [{"agents_address": AGENTS}], indirect=True)
def test_the_cc_of_a_verified_request_are_copied_but_never_support_or_robots(
        gw: Gateway) -> None:
    cc = (f"Bob <{BOB}>, support@support.example, sales@support.example, {KENJI}, {AGENTS}, "
          "MAILER-DAEMON@partner.example, no-reply@partner.example")
    raw = make_mail(subject="Sync fails", headers={**passed(ANNA), "Cc": cc})
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        number = ctx.ticket.number
        lines = trace_of(ctx, record.name)
    assert lines[0] == ("cc", f"{BOB} is copied on ticket #{number}")
    assert [outcome for outcome, _ in lines[1:-1]] == ["miss"] * 6
    assert _roles(gw, number) == {ANNA: "requester", BOB: "cc"}
    [message] = _messages(gw, number)
    assert message.flags == []


def test_an_unverified_requester_copies_nobody_and_the_message_says_so(gw: Gateway) -> None:
    raw = make_mail(subject="Sync fails",
                    headers={"Cc": f"{BOB}, support@support.example"})
    with context_before(gw, record.name, raw) as ctx:
        record.run(ctx)
        number = ctx.ticket.number
    assert _roles(gw, number) == {ANNA: "requester"}
    [message] = _messages(gw, number)
    assert message.flags[-1] == (
        f"Cc not copied on ticket #{number}: {ANNA} is not a verified sender (an agent may "
        f"'#cc add' them): {BOB}")


def test_the_requesters_later_reply_copies_new_cc_but_a_strangers_does_not(
        gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    reply = make_mail(subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                      headers={**passed(ANNA), "Cc": BOB})
    with context_before(gw, record.name, reply) as ctx:
        record.run(ctx)
    other = make_mail(sender="giulia@globex.example", subject="Re: Sync fails",
                      in_reply_to=origin_of(gw, number),
                      headers={**passed("giulia@globex.example"), "Cc": CARLA})
    with context_before(gw, record.name, other) as ctx:
        record.run(ctx)
    roles = _roles(gw, number)
    assert (roles[BOB], roles["giulia@globex.example"]) == ("cc", "requester")
    assert CARLA not in roles


def test_a_cc_reply_is_stored_as_cc(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers={**passed(ANNA), "Cc": BOB}))
    reply = make_mail(sender=BOB, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                      body="Same here.", headers={**passed(BOB), "Cc": CARLA})
    with context_before(gw, record.name, reply) as ctx:
        record.run(ctx)
        assert trace_of(ctx, record.name)[-1][1].endswith("as cc public message")
    assert [(m.role, m.from_address) for m in _messages(gw, number)] == [
        ("requester", ANNA), ("cc", BOB)]
    assert CARLA not in _roles(gw, number)  # only the requester adds people


def test_the_requesters_cc_does_not_undo_an_agents_cc_remove(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers={**passed(ANNA), "Cc": BOB}))
    processed(gw, make_mail(sender=KENJI, subject="Re: Sync fails", body=f"#cc remove {BOB}",
                            in_reply_to=origin_of(gw, number), headers=passed(KENJI)))
    reply = make_mail(subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                      headers={**passed(ANNA), "Cc": BOB})
    with context_before(gw, record.name, reply) as ctx:
        record.run(ctx)
        assert ("miss", f"{BOB} not copied: an agent took them off the ticket (only "
                "'#cc add' copies them again)") in trace_of(ctx, record.name)
    assert _roles(gw, number)[BOB] == "cc_removed"
