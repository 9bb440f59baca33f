"""Escalation before breaches: warn agents once per ticket and level, mark breaches.

Run every ``sweep_interval`` seconds as the job "escalation" of the table in
:mod:`gateway.runtime.jobs`: only the ``serve`` node holding the scheduler lease runs it,
none when ``scheduler_enabled`` is off (``gateway jobs run escalation`` runs it by hand).
For every open ticket with a first-response due time and no first response yet it:

- pauses the clock while the ticket waits on the customer (status ``pending``):
  the pause start is stored, and when the ticket leaves ``pending`` the due time moves
  on by the open time of the pause (on the ticket's calendar);
- measures the share of the target used, in the calendar's open time, and queues one
  warning mail per ``escalation.warn_at`` level of the policy, and one at the breach
  (then ``breached_at`` is set).  A level is a row of ``ticket_escalations`` (unique per
  ticket and level), written in the same transaction as its outbox row: a level is
  sent once, however often the pass runs, even if a takeover overlaps two runs.

A reopened ticket starts a new round (:func:`restart_clock`): a marker row
``r<N>:start`` records when its clock started, and the levels of round N are stored as
``r<N>:warn-75``, ``r<N>:breach`` (round 1 keeps the plain names), so each level is sent
once per round and the share counts from the start of the round, not from ``created_at``.

Warnings go to ``escalation.address`` when the policy sets one, else to the support
agents of the directory who serve the ticket's language (all agents when none does),
one mail each.  Never to the support address itself: a notice from and to it, with
``X-Loop``, would come back and be dropped by our own loop guard.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.active_policy import current_policy
from gateway.db import Database
from gateway.escalation_notice import queue_escalation_notice
from gateway.job_items import JobItems
from gateway.models import Agent, Ticket, TicketEscalation, TicketStatus, utcnow
from gateway.services import Services
from rules.calendar import BusinessCalendar

__all__ = ["EscalationReport", "escalate", "escalation_job", "restart_clock"]

log = logging.getLogger(__name__)

_ALWAYS = BusinessCalendar("always", "UTC")
_DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)


@dataclass
class EscalationReport:
    outbox_ids: list[int] = field(default_factory=list)
    levels: list[tuple[int, str]] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    items: JobItems = field(default_factory=lambda: JobItems("escalation"))
    """The tickets whose pass failed (the others were done)."""


def _due_text(due: datetime, calendar: BusinessCalendar) -> str:
    local = due.astimezone(calendar.zone)
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({due:%Y-%m-%d %H:%M} UTC)"


def _levels_reached(ticket: Ticket, start: datetime, calendar: BusinessCalendar,
                    warn_at: list[float], now: datetime) -> list[tuple[str, int]]:
    assert ticket.first_response_due is not None
    if now >= ticket.first_response_due:
        return [("breach", 100)]
    target = calendar.open_time_between(start, ticket.first_response_due)
    used = calendar.open_time_between(start, now)
    return [(f"warn-{round(share * 100)}", round(share * 100)) for share in sorted(warn_at)
            if target > timedelta(0) and used >= target * share]


def _round_from(rows: Iterable[tuple[str, datetime]], created_at: datetime
                ) -> tuple[int, datetime, set[str]]:
    """(round number, when its clock started, levels stored) from a ticket's level rows."""
    number, start, levels = 1, created_at, set()
    for level, stored_at in rows:
        levels.add(level)
        prefix, _, rest = level.partition(":")
        if rest == "start" and prefix[1:].isdigit() and int(prefix[1:]) > number:
            number, start = int(prefix[1:]), stored_at
    return number, start, levels


def _current_round(session: Session, ticket: Ticket) -> tuple[int, datetime, set[str]]:
    """(round number, when its clock started, levels stored for the ticket)."""
    rows = session.execute(select(TicketEscalation.level, TicketEscalation.created_at).where(
        TicketEscalation.ticket_number == ticket.number)).all()
    return _round_from(((level, at) for level, at in rows), ticket.created_at)


def _has_work(ticket: Ticket, rows: list[tuple[str, datetime]], calendar: BusinessCalendar,
              warn_at: list[float], now: datetime) -> bool:
    """Whether :func:`_escalate_one` would change anything (read-only, no lock)."""
    if ticket.status == TicketStatus.PENDING:
        return ticket.sla_paused_at is None  # the pause starts
    if ticket.sla_paused_at is not None:
        return True  # the pause ends
    number, start, done = _round_from(rows, ticket.created_at)
    return any(_in_round(level, number) not in done
               for level, _share in _levels_reached(ticket, start, calendar, warn_at, now))


def _in_round(level: str, number: int) -> str:
    return level if number == 1 else f"r{number}:{level}"


def restart_clock(session: Session, ticket: Ticket, *, at: datetime, due: datetime,
                  tier: str, calendar: str) -> int:
    """Start a new SLA round at ``at`` (a reopened ticket); returns the round number.

    The first response, the breach and the pause of the earlier round are cleared, so
    the escalation job watches the ticket again and sends each level once more.
    """
    number, _, _ = _current_round(session, ticket)
    ticket.first_response_due, ticket.tier, ticket.sla_calendar = due, tier, calendar
    ticket.first_response_at = ticket.breached_at = ticket.sla_paused_at = None
    session.add(TicketEscalation(ticket_number=ticket.number, level=f"r{number + 1}:start",
                                 created_at=at))
    return number + 1


def _recipients(session: Session, address: str, ticket: Ticket) -> list[str]:
    """The configured address, else the agents serving the ticket's language, else all."""
    if address:
        return [address]
    agents = list(session.scalars(select(Agent).order_by(Agent.email)))
    for language in (ticket.language, ticket.queue):
        serving = [a.email for a in agents if language in (a.languages or [])]
        if serving:
            return serving
    return [a.email for a in agents]


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
        round_number, start, done = _current_round(session, ticket)
        reached = _levels_reached(ticket, start, calendar, policy.spec.escalation.warn_at, now)
        new = [(_in_round(level, round_number), share) for level, share in reached
               if _in_round(level, round_number) not in done]
        if not new:
            return
        level, share = new[-1]  # one mail for the highest new level; the others are passed
        breached = level.endswith("breach")
        if breached:
            ticket.breached_at = ticket.first_response_due
        recipients = _recipients(session, policy.spec.escalation.address, ticket)
        if not recipients:
            log.warning("ticket #%s reached escalation level %s, but no escalation address "
                        "is set and the directory has no agents: nobody was mailed",
                        number, level)
        items = [queue_escalation_notice(
            session, services, ticket, to_address=to_address, breached=breached,
            share=share, due=_due_text(ticket.first_response_due, calendar))
            for to_address in recipients]
        for passed, _ in new:
            session.add(TicketEscalation(
                ticket_number=number, level=passed, created_at=now,
                outbox_id=items[0].id if items and passed == level else None))
        session.flush()
    report.outbox_ids.extend(item.id for item in items)
    report.levels.append((number, level))


def escalate(database: Database, services: Services, now: datetime | None = None
             ) -> EscalationReport:
    """One escalation pass over open, unanswered tickets; returns what it queued."""
    now = now or utcnow()
    report = EscalationReport()
    policy = current_policy(services.settings)
    watched = (Ticket.first_response_due.is_not(None), Ticket.first_response_at.is_(None),
               Ticket.status.not_in(_DONE))
    # One read pass decides; write transactions only for the tickets with something to do
    # (a desk with thousands of open tickets must not take the write lock for each of them
    # every pass).  _escalate_one checks again under the lock.
    with database.reading() as session:
        rows: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
        for number, level, stored_at in session.execute(
                select(TicketEscalation.ticket_number, TicketEscalation.level,
                       TicketEscalation.created_at)
                .join(Ticket, Ticket.number == TicketEscalation.ticket_number).where(*watched)):
            rows[number].append((level, stored_at))
        numbers = [ticket.number for ticket in session.scalars(
                       select(Ticket).where(*watched).order_by(Ticket.number))
                   if _has_work(ticket, rows[ticket.number],
                                policy.calendars.get(ticket.sla_calendar or "", _ALWAYS),
                                policy.spec.escalation.warn_at, now)]
    for number in numbers:
        with report.items.item(f"ticket #{number}"):
            try:
                _escalate_one(database, services, number, now, report)
            except IntegrityError:  # another node queued this level at the same moment
                log.info("escalation of ticket #%s already queued elsewhere", number)
    return report


def escalation_job(database: Database, services: Services,
                   deliver: Callable[[list[int]], None], now: datetime) -> None:
    """The scheduled job: one pass as of ``now``, then hand what it queued to delivery
    (a ticket that failed is named after that: the run fails, the others were done)."""
    report = escalate(database, services, now)
    deliver(report.outbox_ids)
    report.items.check()
