"""Step ``lifecycle``: what a reply does to the ticket's status: an agent's ``#status`` and
first reply, a customer's answer to a pending ticket, reopening (verified senders only)
within the window, and a late reply as a new ticket that follows the closed one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from gateway.models import Ticket, TicketStatus, utcnow
from gateway.pipeline.context import PipelineOrderError
from gateway.pipeline.steps import lifecycle
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

ANNA, MAX, KENJI = "anna@acme.example", "max@acme.example", "kenji@support.example"


def _ticket(gw: Gateway, status: str | None = None) -> int:
    """Anna's ticket; ``status``: set by Kenji's ``#status`` reply, as agents do."""
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    if status:
        processed(gw, _reply(gw, number, KENJI, f"#status {status}\nPlease check 4.2."))
    return number


def _reply(gw: Gateway, number: int, sender: str, body: str = "It fails again.", *,
           verified: bool = True, headers: dict[str, str] | None = None) -> bytes:
    return make_mail(sender=sender, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers={**(passed(sender) if verified else {}),
                                         **(headers or {})})


def test_an_agents_status_command_sets_the_status(gw: Gateway) -> None:
    number = _ticket(gw)
    with context_before(gw, lifecycle.name, _reply(gw, number, KENJI, "#status solved\nDone.")
                        ) as ctx:
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == [
            ("status", f"#{number}: new → solved (the agent's #status command)")]
    ticket = ticket_of(gw, number)
    assert ticket.status == TicketStatus.SOLVED and ticket.resolved_at is not None


def test_the_first_agent_reply_opens_a_new_ticket(gw: Gateway) -> None:
    number = _ticket(gw)
    with context_before(gw, lifecycle.name, _reply(gw, number, KENJI, "Try 4.2.")) as ctx:
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == [
            ("status", f"#{number}: new → open (first agent reply)")]
    assert ticket_of(gw, number).status == TicketStatus.OPEN


def test_the_customers_answer_reopens_a_pending_ticket(gw: Gateway) -> None:
    number = _ticket(gw, "pending")
    with context_before(gw, lifecycle.name, _reply(gw, number, ANNA)) as ctx:
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == [
            ("status", f"#{number}: pending → open (the customer answered)")]
    assert ticket_of(gw, number).status == TicketStatus.OPEN


def test_a_verified_reply_within_the_window_reopens_a_solved_ticket(gw: Gateway) -> None:
    number = _ticket(gw, "solved")
    with context_before(gw, lifecycle.name, _reply(gw, number, ANNA)) as ctx:
        lifecycle.run(ctx)
        assert ctx.reopened and not ctx.new_ticket
    ticket = ticket_of(gw, number)
    assert ticket.status == TicketStatus.OPEN and ticket.resolved_at is None


def test_an_unverified_reply_does_not_reopen(gw: Gateway) -> None:
    number = _ticket(gw, "solved")
    with context_before(gw, lifecycle.name, _reply(gw, number, ANNA, verified=False)) as ctx:
        lifecycle.run(ctx)
        assert not ctx.reopened
        assert ctx.flags[-1:] == [f"not reopened: #{number} stays solved, {ANNA} is not a verified "
                             "sender (an agent may reopen it with #status open)"]
    assert ticket_of(gw, number).status == TicketStatus.SOLVED


def test_a_late_reply_becomes_a_new_ticket_that_follows(gw: Gateway) -> None:
    number = _ticket(gw, "closed")
    days = gw.settings.reopen_window_days
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            resolved_at=utcnow() - timedelta(days=days + 1)))
    with context_before(gw, lifecycle.name, _reply(gw, number, ANNA)) as ctx:
        lifecycle.run(ctx)
        assert (ctx.follows, ctx.new_ticket) == (number, True)
        with pytest.raises(PipelineOrderError):  # the new ticket exists only after record
            _ = ctx.ticket
        assert (ctx.threaded_by, ctx.role) == ("new_ticket", "requester")
        assert trace_of(ctx, lifecycle.name) == [
            ("follow-up", f"reply to closed ticket #{number} more than {days} days after it "
             "was closed: a new ticket that follows it")]
    assert ticket_of(gw, number).status == TicketStatus.CLOSED


def test_an_automatic_reply_changes_nothing(gw: Gateway) -> None:
    number = _ticket(gw, "pending")
    raw = _reply(gw, number, ANNA, "I am out of the office.",
                 headers={"Auto-Submitted": "auto-replied"})
    with context_before(gw, lifecycle.name, raw) as ctx:
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == [
            ("unchanged", "automatic reply: the status stays pending")]
    assert ticket_of(gw, number).status == TicketStatus.PENDING


def test_a_refused_reply_changes_nothing(gw: Gateway) -> None:
    number = _ticket(gw, "pending")
    with context_before(gw, lifecycle.name, _reply(gw, number, MAX)) as ctx:
        assert ctx.refusal == "not_admin"
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == []
    assert ticket_of(gw, number).status == TicketStatus.PENDING


# -- a cc's reply: a customer's public reply, the same effect as the requester's ------------

BOB = "bob@partner.example"


def _copied(gw: Gateway, status: str) -> int:
    number = processed(gw, make_mail(subject="Sync fails",
                                     headers={**passed(ANNA), "Cc": BOB}))
    processed(gw, _reply(gw, number, KENJI, f"#status {status}\nPlease check 4.2."))
    return number


def test_a_cc_answer_reopens_a_pending_ticket(gw: Gateway) -> None:
    number = _copied(gw, "pending")
    with context_before(gw, lifecycle.name, _reply(gw, number, BOB)) as ctx:
        assert ctx.role == "cc"
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == [
            ("status", f"#{number}: pending → open (the customer answered)")]
    assert ticket_of(gw, number).status == TicketStatus.OPEN


def test_a_verified_cc_reopens_a_solved_ticket_an_unverified_one_does_not(
        gw: Gateway) -> None:
    number = _copied(gw, "solved")
    with context_before(gw, lifecycle.name, _reply(gw, number, BOB, verified=False)) as ctx:
        lifecycle.run(ctx)
        assert not ctx.reopened and ctx.flags[-1].startswith(f"not reopened: #{number}")
    assert ticket_of(gw, number).status == TicketStatus.SOLVED
    with context_before(gw, lifecycle.name, _reply(gw, number, BOB)) as ctx:
        lifecycle.run(ctx)
        assert ctx.reopened
    ticket = ticket_of(gw, number)
    assert (ticket.status, ticket.requester) == (TicketStatus.OPEN, ANNA)


def test_pending_starts_the_wait_on_the_customer_and_their_answer_ends_it(gw: Gateway) -> None:
    # Given Anna's ticket that Kenji sets pending: the wait (reminder, auto-close) begins
    number = _ticket(gw, "pending")
    waiting = ticket_of(gw, number)
    assert waiting.pending_since is not None and waiting.pending_reminded_at is None
    with gw.db.transaction() as session:  # as if the reminder had gone out
        session.execute(update(Ticket).where(Ticket.number == number).values(
            pending_reminded_at=utcnow()))

    # When Anna answers
    with context_before(gw, lifecycle.name, _reply(gw, number, ANNA)) as ctx:
        lifecycle.run(ctx)

    # Then the ticket is open and waits on nobody
    answered = ticket_of(gw, number)
    assert answered.status == TicketStatus.OPEN
    assert (answered.pending_since, answered.pending_reminded_at) == (None, None)


def test_an_agents_public_reply_on_a_pending_ticket_restarts_the_wait(gw: Gateway) -> None:
    # Given a ticket pending since a week, its reminder sent
    number = _ticket(gw, "pending")
    week_ago = utcnow() - timedelta(days=7)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            pending_since=week_ago, pending_reminded_at=week_ago))

    # When Kenji asks another question, and then writes an internal note
    with context_before(gw, lifecycle.name, _reply(gw, number, KENJI, "Which OS?")) as ctx:
        lifecycle.run(ctx)
        assert trace_of(ctx, lifecycle.name) == []  # the status stays pending
    asked = ticket_of(gw, number)
    with context_before(gw, lifecycle.name, _reply(gw, number, KENJI, "#note\nslow customer")
                        ) as ctx:
        lifecycle.run(ctx)

    # Then the wait starts again from his question, with a reminder to come; a note is no
    # question to the customer
    assert asked.status == TicketStatus.PENDING and asked.pending_reminded_at is None
    assert asked.pending_since is not None and asked.pending_since > week_ago
    assert ticket_of(gw, number).pending_since == asked.pending_since
