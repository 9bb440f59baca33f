"""Escalation before breaches: one warning per level, a breach mark at the deadline, the
clock paused while a ticket waits on the customer, and the sweep of `serve` doing it."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from gateway.app import Gateway
from gateway.escalation import escalate
from gateway.models import OutboxItem, Ticket, TicketStatus
from gateway.server import GatewayServer
from tests.conftest import wait_for
from tests.mail import maildir_messages
from tests.rules.tickets import outbox_mail, plain_text, ticket_at


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ticket(gateway: Gateway, number: int) -> Ticket:
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket


def _set_status(gateway: Gateway, number: int, status: TicketStatus) -> None:
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(status=status))


def test_one_warning_per_level_then_the_breach(gateway: Gateway) -> None:
    # An Enhanced ticket at 10:00 UTC: 1 h target, due 11:00; warn at 75 % (10:45).
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    assert ticket.first_response_due == _at("2026-11-17T11:00:00+00:00")
    assert escalate(gateway.db, gateway.services, _at("2026-11-17T10:30:00+00:00")).levels == []
    warned = escalate(gateway.db, gateway.services, _at("2026-11-17T10:46:00+00:00"))
    assert warned.levels == [(ticket.number, "warn-75")]
    for minute in ("10:50", "10:55", "10:59"):  # later sweeps send nothing more
        later = escalate(gateway.db, gateway.services, _at(f"2026-11-17T{minute}:00+00:00"))
        assert later.levels == []
    breached = escalate(gateway.db, gateway.services, _at("2026-11-17T11:01:00+00:00"))
    assert breached.levels == [(ticket.number, "breach")]
    assert escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00")).levels == []
    assert _ticket(gateway, ticket.number).breached_at == _at("2026-11-17T11:00:00+00:00")
    warning, breach = outbox_mail(gateway, ticket, "escalation")
    assert str(warning["Subject"]).startswith(f"[#{ticket.number}] SLA warning (75%)")
    assert str(breach["Subject"]).startswith(f"[#{ticket.number}] SLA breached")
    assert breach["To"] == "support@support.example"
    assert breach["Auto-Submitted"] == "auto-generated"
    assert "Why this target: " in plain_text(breach) and "enhanced add-on" in plain_text(breach)


def test_a_late_first_sweep_sends_only_the_breach(gateway: Gateway) -> None:
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    report = escalate(gateway.db, gateway.services, _at("2026-11-17T13:00:00+00:00"))
    assert report.levels == [(ticket.number, "breach")]
    assert len(outbox_mail(gateway, ticket, "escalation")) == 1


def test_warning_share_counts_open_hours_of_the_calendar(gateway: Gateway) -> None:
    # Standard support Friday 17:00 Berlin: 8 h of office hours, due Monday 16:00.  75 % is
    # 6 hours of open time (1 h on Friday, 5 h on Monday): Monday 14:00, not at the weekend.
    ticket = ticket_at(gateway, "2026-11-20T17:00:00+01:00", sender="giulia@globex.example")
    assert ticket.first_response_due == _at("2026-11-23T16:00:00+01:00")
    assert escalate(gateway.db, gateway.services, _at("2026-11-22T12:00:00+01:00")).levels == []
    assert escalate(gateway.db, gateway.services, _at("2026-11-23T13:59:00+01:00")).levels == []
    report = escalate(gateway.db, gateway.services, _at("2026-11-23T14:01:00+01:00"))
    assert report.levels == [(ticket.number, "warn-75")]


def test_a_pending_ticket_does_not_breach_while_pending(gateway: Gateway) -> None:
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    _set_status(gateway, ticket.number, TicketStatus.PENDING)
    paused = escalate(gateway.db, gateway.services, _at("2026-11-17T10:10:00+00:00"))
    assert paused.paused == [ticket.number]
    # Long past the original due time: still pending, nothing sent, nothing breached.
    idle = escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00"))
    assert idle.levels == [] and _ticket(gateway, ticket.number).breached_at is None
    # The customer answers at 12:00: the 1 h 50 min of the pause are added to the due time.
    _set_status(gateway, ticket.number, TicketStatus.OPEN)
    resumed = escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00"))
    assert resumed.resumed == [ticket.number] and resumed.levels == []
    assert _ticket(gateway, ticket.number).first_response_due == _at("2026-11-17T12:50:00+00:00")
    late = escalate(gateway.db, gateway.services, _at("2026-11-17T12:51:00+00:00"))
    assert late.levels == [(ticket.number, "breach")]


def test_answered_and_solved_tickets_are_left_alone(gateway: Gateway) -> None:
    answered = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    solved = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="max@acme.example")
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == answered.number).values(
            first_response_at=_at("2026-11-17T10:20:00+00:00")))
    _set_status(gateway, solved.number, TicketStatus.SOLVED)
    assert escalate(gateway.db, gateway.services, _at("2026-11-18T10:00:00+00:00")).levels == []


def test_serve_sweep_sends_a_breach_once(gateway: Gateway, running: GatewayServer) -> None:
    # A ticket whose target passed long ago (arrived in 2020), unanswered.
    ticket = ticket_at(gateway, "2020-01-07T10:00:00+00:00", sender="anna@acme.example")
    sent_dir = gateway.settings.outbound_url.removeprefix("maildir:")

    def escalations() -> list[str]:
        try:
            messages = maildir_messages(Path(sent_dir))
        except FileNotFoundError:  # the transport is still creating the maildir
            return []
        return [str(m["Subject"]) for m in messages if "SLA" in str(m["Subject"])]
    wait_for(lambda: len(escalations()) == 1, timeout=30, message="the breach mail")
    # Several more sweeps (1 s apart in tests) send nothing more.
    with gateway.db.reading() as session:
        first_count = len(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "escalation")).all())
    time.sleep(3.5)
    with gateway.db.reading() as session:
        assert len(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "escalation")).all()) == first_count == 1
    assert escalations() == [f"[#{ticket.number}] SLA breached: Sync fails"]
