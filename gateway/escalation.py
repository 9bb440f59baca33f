"""Escalation before breaches: warn agents once per ticket and level, mark breaches.

Run periodically (the sweep thread of ``serve``).  For every open ticket with a
first-response due time and no first response yet it:

- pauses the clock while the ticket waits on the customer (status ``pending``):
  the pause start is stored, and when the ticket leaves ``pending`` the due time moves
  on by the open time of the pause (on the ticket's calendar);
- measures the share of the target used, in the calendar's open time, and queues one
  warning mail per ``escalation.warn_at`` level of the policy, and one at the breach
  (then ``breached_at`` is set).  A level is a row of ``ticket_escalations`` (unique per
  ticket and level), written in the same transaction as its outbox row: a level is
  sent once, however often the sweep runs and however many nodes run it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.db import Database
from gateway.directory import support_identity
from gateway.models import Ticket, TicketEscalation, TicketStatus, utcnow
from gateway.services import Services
from outbound.escalation import queue_escalation_notice
from rules.calendar import BusinessCalendar
from rules.runtime import current_policy

__all__ = ["EscalationReport", "escalate"]

log = logging.getLogger(__name__)

_ALWAYS = BusinessCalendar("always", "UTC")
_DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)


@dataclass
class EscalationReport:
    outbox_ids: list[int] = field(default_factory=list)
    levels: list[tuple[int, str]] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)


def _due_text(due: datetime, calendar: BusinessCalendar) -> str:
    local = due.astimezone(calendar.zone)
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({due:%Y-%m-%d %H:%M} UTC)"


def _levels_reached(ticket: Ticket, calendar: BusinessCalendar, warn_at: list[float],
                    now: datetime) -> list[tuple[str, int]]:
    assert ticket.first_response_due is not None
    if now >= ticket.first_response_due:
        return [("breach", 100)]
    target = calendar.open_time_between(ticket.created_at, ticket.first_response_due)
    used = calendar.open_time_between(ticket.created_at, now)
    return [(f"warn-{round(share * 100)}", round(share * 100)) for share in sorted(warn_at)
            if target > timedelta(0) and used >= target * share]


def _escalate_one(database: Database, services: Services, number: int, now: datetime,
                  report: EscalationReport) -> None:
    settings = services.settings
    policy = current_policy(settings)
    with database.transaction() as session:
        ticket = session.get(Ticket, number, with_for_update=True)
        if (ticket is None or ticket.first_response_due is None
                or ticket.first_response_at is not None or ticket.status in _DONE):
            return
        calendar = policy.calendars.get(ticket.sla_calendar or "", _ALWAYS)
        if ticket.status == TicketStatus.PENDING:
            if ticket.sla_paused_at is None:
                ticket.sla_paused_at = now
                report.paused.append(number)
            return
        if ticket.sla_paused_at is not None:
            paused = calendar.open_time_between(ticket.sla_paused_at, now)
            ticket.first_response_due = calendar.add(ticket.first_response_due, paused)
            ticket.sla_paused_at = None
            report.resumed.append(number)
        reached = _levels_reached(ticket, calendar, policy.spec.escalation.warn_at, now)
        done = set(session.scalars(select(TicketEscalation.level).where(
            TicketEscalation.ticket_number == number)))
        new = [(level, share) for level, share in reached if level not in done]
        if not new:
            return
        level, share = new[-1]  # one mail for the highest new level; the others are passed
        if level == "breach":
            ticket.breached_at = ticket.first_response_due
        to_address = policy.spec.escalation.address or support_identity(session).address
        item = queue_escalation_notice(
            session, services, ticket, to_address=to_address, breached=level == "breach",
            share=share, due=_due_text(ticket.first_response_due, calendar))
        for passed, _ in new:
            session.add(TicketEscalation(ticket_number=number, level=passed, created_at=now,
                                         outbox_id=item.id if passed == level else None))
        session.flush()
    report.outbox_ids.append(item.id)
    report.levels.append((number, level))


def escalate(database: Database, services: Services, now: datetime | None = None
             ) -> EscalationReport:
    """One escalation pass over open, unanswered tickets; returns what it queued."""
    now = now or utcnow()
    report = EscalationReport()
    with database.reading() as session:
        numbers = list(session.scalars(select(Ticket.number).where(
            Ticket.first_response_due.is_not(None), Ticket.first_response_at.is_(None),
            Ticket.status.not_in(_DONE)).order_by(Ticket.number)))
    for number in numbers:
        try:
            _escalate_one(database, services, number, now, report)
        except IntegrityError:  # another node queued this level at the same moment
            log.info("escalation of ticket #%s already queued elsewhere", number)
    return report
