"""Step ``assign``: the owner a verified agent named with ``#assign`` is set once the
message is stored, and the assignee is told by mail unless they took the ticket
themselves; nothing happens without the command."""

from __future__ import annotations

from gateway.pipeline.steps import assign
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import (
    context_before,
    origin_of,
    outbox_of,
    passed,
    processed,
    ticket_of,
    trace_of,
)

ANNA, KENJI, LENA = "anna@acme.example", "kenji@support.example", "lena@support.example"


def _agent_reply(gw: Gateway, number: int, body: str, sender: str = KENJI) -> bytes:
    return make_mail(sender=sender, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(sender))


def _assign(gw: Gateway, raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Run the step on ``raw``; the outbox rows it queued and its trace lines."""
    with context_before(gw, assign.name, raw) as ctx:
        before = len(ctx.outbox_ids)
        assign.run(ctx)
        ids, lines = ctx.outbox_ids[before:], trace_of(ctx, assign.name)
    return outbox_of(gw, ids), lines


def test_assign_me_sets_the_owner_and_mails_nobody(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    sent, lines = _assign(gw, _agent_reply(gw, number, "#assign me\nLooking into it."))
    assert ticket_of(gw, number).owner == KENJI
    assert sent == []
    assert lines == [("owner", f"#{number}: owner (none) → {KENJI}"),
                     ("skip", "assigned to themselves: no mail")]


def test_assigning_another_agent_mails_them_in_english(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    sent, lines = _assign(gw, _agent_reply(gw, number, "#assign Lena@Support.example"))
    assert ticket_of(gw, number).owner == LENA
    assert sent == [("ticket_assigned", LENA)]
    assert lines[-1][0] == "queued"


def test_the_same_owner_again_changes_nothing(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    processed(gw, _agent_reply(gw, number, "#assign lena@support.example"))
    sent, lines = _assign(gw, _agent_reply(gw, number, "#assign lena@support.example"))
    assert sent == [] and ticket_of(gw, number).owner == LENA
    assert lines == [("unchanged", f"#{number} is already owned by {LENA}")]


def test_a_reply_without_the_command_leaves_the_owner(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    processed(gw, _agent_reply(gw, number, "#assign me"))
    sent, lines = _assign(gw, _agent_reply(gw, number, "Any news?", sender=LENA))
    assert (sent, lines) == ([], [])
    assert ticket_of(gw, number).owner == KENJI
