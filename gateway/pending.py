"""Tickets waiting on the customer: one reminder, then closing with a notice (DESIGN §13).

Why here: a ticket set ``pending`` waits for the customer's answer, and without these two
jobs it would wait forever.  The wait counts from ``ticket.pending_since`` (the moment the
ticket became pending, or the last public agent reply while it stayed pending:
``gateway/pipeline/steps/lifecycle.py``; a ticket pending since before that column existed
counts from its ``updated_at``).

- ``pending-reminders``: after ``pending_reminder_days`` the requester gets one
  ``pending_reminder`` (``pending_reminded_at`` records it: a second run sends nothing);
  not when the ticket is due to be closed already.
- ``auto-close``: after ``autoclose_days`` the ticket is ``closed`` and the requester gets
  an ``auto_closed`` notice saying that a reply within the reopen window reopens it (the
  window counts from the closing).  The closing does not wait for the reminder.

A customer's reply ends the wait (the ticket is ``open`` again), so neither mail goes out.
Each ticket is decided again under its row lock, in its own transaction: two overlapping
runs send each mail once.  ``0`` days turns a job off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.job_items import JobItems
from gateway.models import OutboxItem, Ticket, TicketStatus
from gateway.notices import queue_notice, thread_of
from gateway.services import Services

__all__ = ["auto_close", "auto_close_job", "pending_reminders", "pending_reminders_job"]

Deliver = Callable[[list[int]], None]


def _since(ticket: Ticket) -> datetime:
    return ticket.pending_since or ticket.updated_at


def _waited(ticket: Ticket, days: int, now: datetime) -> bool:
    """Pending for at least ``days`` (> 0) as of ``now``."""
    return (days > 0 and ticket.status == TicketStatus.PENDING
            and now - _since(ticket) >= timedelta(days=days))


def _candidates(database: Database, days: int, now: datetime) -> list[int]:
    """Pending tickets whose wait began ``days`` or more before ``now`` (read, no lock)."""
    cutoff = now - timedelta(days=days)
    with database.reading() as session:
        return list(session.scalars(select(Ticket.number).where(
            Ticket.status == TicketStatus.PENDING,
            or_(Ticket.pending_since <= cutoff,
                and_(Ticket.pending_since.is_(None), Ticket.updated_at <= cutoff)),
        ).order_by(Ticket.number)))


Act = Callable[[Database, Services, int, datetime], int | None]


def _each_waiting(database: Database, services: Services, days: int, now: datetime,
                  act: Act, items: JobItems) -> list[int]:
    """``act`` on every ticket pending ``days`` or more at ``now`` (each decides again under
    its lock, in its own transaction: one that fails is kept in ``items``, the others go
    on); the outbox ids it queued.  ``days`` of 0 turns the job off."""
    if days <= 0:
        return []
    queued: list[int] = []
    for number in _candidates(database, days, now):
        with items.item(f"ticket #{number}"):
            item = act(database, services, number, now)
            if item is not None:
                queued.append(item)
    return queued


def _notify(session: Session, services: Services, ticket: Ticket, kind: str,
            context: dict[str, object]) -> OutboxItem:
    """``kind`` to the requester, continuing their thread."""
    in_reply_to, references = thread_of(session, ticket, ticket.requester)
    return queue_notice(session, services, ticket, kind=kind, to_address=ticket.requester,
                        to_name=ticket.requester_name, role="requester",
                        context={"requester_name": ticket.requester_name, **context},
                        spool_id=None, in_reply_to=in_reply_to, references=references)


def _remind_one(database: Database, services: Services, number: int,
                now: datetime) -> int | None:
    settings = services.settings
    with database.transaction() as session:
        ticket = session.get(Ticket, number, with_for_update=True)
        if (ticket is None or ticket.pending_reminded_at is not None
                or not _waited(ticket, settings.pending_reminder_days, now)
                or _waited(ticket, settings.autoclose_days, now)):
            return None
        ticket.pending_reminded_at = now
        close_in = settings.autoclose_days - settings.pending_reminder_days
        item = _notify(session, services, ticket, "pending_reminder", {
            "waiting_days": settings.pending_reminder_days,
            "close_days": close_in if settings.autoclose_days and close_in > 0 else None})
        return item.id


def pending_reminders(database: Database, services: Services, now: datetime,
                      items: JobItems | None = None) -> list[int]:
    """Queue the reminders due at ``now``; return their outbox ids (deliver after)."""
    return _each_waiting(database, services, services.settings.pending_reminder_days, now,
                         _remind_one, items or JobItems("pending-reminders"))


def _close_one(database: Database, services: Services, number: int,
               now: datetime) -> int | None:
    settings = services.settings
    with database.transaction() as session:
        ticket = session.get(Ticket, number, with_for_update=True)
        if ticket is None or not _waited(ticket, settings.autoclose_days, now):
            return None
        ticket.status = TicketStatus.CLOSED
        ticket.resolved_at = ticket.updated_at = now
        ticket.pending_since = ticket.pending_reminded_at = None
        reopen_days = None if settings.replies_only_to_open else settings.reopen_window_days
        item = _notify(session, services, ticket, "auto_closed", {
            "waiting_days": settings.autoclose_days, "reopen_days": reopen_days})
        return item.id


def auto_close(database: Database, services: Services, now: datetime,
               items: JobItems | None = None) -> list[int]:
    """Close the tickets pending long enough at ``now``; return the notices' outbox ids."""
    return _each_waiting(database, services, services.settings.autoclose_days, now,
                         _close_one, items or JobItems("auto-close"))


def pending_reminders_job(database: Database, services: Services, deliver: Deliver,
                          now: datetime) -> None:
    """The scheduled job ``pending-reminders``."""
    items = JobItems("pending-reminders")
    deliver(pending_reminders(database, services, now, items))
    items.check()


def auto_close_job(database: Database, services: Services, deliver: Deliver,
                   now: datetime) -> None:
    """The scheduled job ``auto-close``."""
    items = JobItems("auto-close")
    deliver(auto_close(database, services, now, items))
    items.check()
