"""Step ``merge``: a verified agent's ``#merge N`` moves this ticket's messages and
participants to N once the message is stored, closes it as merged, and tells both
requesters on their own tickets (once when they are the same person)."""

from __future__ import annotations

from sqlalchemy import select

from gateway.models import MessageRecord, OutboxItem, Participant, Ticket, TicketStatus
from gateway.pipeline.steps import merge
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import (
    context_before,
    origin_of,
    passed,
    processed,
    ticket_of,
    trace_of,
)

ANNA, GIULIA, KENJI = "anna@acme.example", "giulia@globex.example", "kenji@support.example"


def _merge_command(gw: Gateway, number: int, into: int) -> bytes:
    return make_mail(sender=KENJI, subject="Re: Sync", in_reply_to=origin_of(gw, number),
                     body=f"#merge {into}", headers=passed(KENJI))


def _on(gw: Gateway, number: int) -> list[str]:
    with gw.db.reading() as session:
        return list(session.scalars(select(MessageRecord.from_address).where(
            MessageRecord.ticket_number == number).order_by(MessageRecord.id)))


def _people(gw: Gateway, number: int) -> set[str]:
    with gw.db.reading() as session:
        return set(session.scalars(select(Participant.email).where(
            Participant.ticket_number == number)))


def _notices(gw: Gateway, ids: list[int]) -> list[tuple[str, int | None]]:
    with gw.db.reading() as session:
        return [(row.rcpt_to, row.ticket_number) for row in session.scalars(
            select(OutboxItem).where(OutboxItem.id.in_(ids), OutboxItem.kind == "ticket_merged")
            .order_by(OutboxItem.id))]


def test_merge_moves_messages_and_people_and_tells_both_requesters(gw: Gateway) -> None:
    kept = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    gone = processed(gw, make_mail(sender=GIULIA, subject="Sync broken too"))
    with context_before(gw, merge.name, _merge_command(gw, gone, kept)) as ctx:
        assert ctx.merge_into == kept
        merge.run(ctx)
        ids, lines = list(ctx.outbox_ids), trace_of(ctx, merge.name)
        assert ctx.spool.ticket_number == kept
    assert _on(gw, gone) == []
    assert _on(gw, kept) == [ANNA, GIULIA, KENJI]  # the command's own message moved too
    assert {ANNA, GIULIA, KENJI} <= _people(gw, kept)
    old = ticket_of(gw, gone)
    assert (old.merged_into, old.status) == (kept, TicketStatus.CLOSED)
    assert ticket_of(gw, kept).merged_into is None
    # each requester hears of it on their own ticket
    assert _notices(gw, ids) == [(GIULIA, gone), (ANNA, kept)]
    assert lines[0][0] == "merged" and lines[0][1].startswith(
        f"ticket #{gone} (2 message(s), its participants) merged into #{kept}")


def test_one_notice_when_both_tickets_are_the_same_persons(gw: Gateway) -> None:
    kept = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    gone = processed(gw, make_mail(sender=ANNA, subject="Printer offline"))
    with context_before(gw, merge.name, _merge_command(gw, gone, kept)) as ctx:
        merge.run(ctx)
        ids = list(ctx.outbox_ids)
    assert _notices(gw, ids) == [(ANNA, gone)]


def test_the_target_is_followed_when_it_was_merged_meanwhile(gw: Gateway) -> None:
    first = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    second = processed(gw, make_mail(sender=GIULIA, subject="Sync broken"))
    third = processed(gw, make_mail(sender="yuki@globex.example", subject="Sync down"))
    with context_before(gw, merge.name, _merge_command(gw, third, second)) as ctx:
        target = ctx.session.get(Ticket, second)
        assert target is not None
        target.merged_into = first  # joined after the command was read
        merge.run(ctx)
    assert ticket_of(gw, third).merged_into == first
    assert _on(gw, third) == []


def test_the_owner_goes_along_when_the_target_has_none(gw: Gateway) -> None:
    kept = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    gone = processed(gw, make_mail(sender=GIULIA, subject="Sync broken"))
    processed(gw, make_mail(sender=KENJI, subject="Re: Sync", in_reply_to=origin_of(gw, gone),
                            body="#assign me", headers=passed(KENJI)))
    with context_before(gw, merge.name, _merge_command(gw, gone, kept)) as ctx:
        merge.run(ctx)
    assert ticket_of(gw, kept).owner == KENJI


def test_without_the_command_nothing_moves(gw: Gateway) -> None:
    number = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    raw = make_mail(sender=KENJI, subject="Re: Sync", in_reply_to=origin_of(gw, number),
                    body="Looking into it.", headers=passed(KENJI))
    with context_before(gw, merge.name, raw) as ctx:
        merge.run(ctx)
        assert trace_of(ctx, merge.name) == []
    assert ticket_of(gw, number).merged_into is None
