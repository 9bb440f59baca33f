"""Which tickets a person may see, as the ``#tickets`` mail command lists them.

MISSION §2: a member sees the tickets they requested; a team admin also sees the
team's tickets created or updated on or after ``colleague_cutoff``.  The directory
decides, never the mail: an address the directory does not know sees only what it
requested itself.  Open tickets come first, then the newest by last update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from gateway.models import Person, Ticket, TicketStatus

__all__ = [
    "DONE",
    "MAX_LINES",
    "RECENT_DAYS",
    "TicketLine",
    "TicketListing",
    "in_team_window",
    "team_window",
    "visible_tickets",
]

MAX_LINES = 50
RECENT_DAYS = 30
"""Solved and closed tickets older than this are left out unless asked for (``all``)."""
DONE = frozenset({TicketStatus.SOLVED, TicketStatus.CLOSED})


@dataclass(frozen=True)
class TicketLine:
    number: int
    subject: str
    status: str
    updated: str  # YYYY-MM-DD (UTC)


@dataclass(frozen=True)
class TicketListing:
    lines: list[TicketLine]
    more: int  # tickets left out beyond MAX_LINES


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def team_window(team_id: str, cutoff: date) -> ColumnElement[bool]:
    """The team's tickets a team admin may see: created or updated on or after ``cutoff``
    (the one rule, shared by ``#tickets`` and the hub)."""
    start = _day_start(cutoff)
    return and_(Ticket.team_id == team_id,
                or_(Ticket.created_at >= start, Ticket.updated_at >= start))


def in_team_window(ticket: Ticket, team_id: str, cutoff: date) -> bool:
    """:func:`team_window` for one loaded ticket."""
    start = _day_start(cutoff)
    return ticket.team_id == team_id and (_utc(ticket.created_at) >= start
                                          or _utc(ticket.updated_at) >= start)


def visible_tickets(session: Session, email: str, *, cutoff: date, now: datetime,
                    include_old: bool = False, since: date | None = None) -> TicketListing:
    """The tickets ``email`` may see: open first, then newest update first.

    ``since``: only tickets created or updated on or after that day (any status);
    otherwise solved/closed tickets untouched for ``RECENT_DAYS`` are left out unless
    ``include_old``."""
    person = session.get(Person, email)
    visible = Ticket.requester == email
    if person is not None and person.role == "admin" and person.team_id:
        visible = or_(visible, team_window(person.team_id, cutoff))
    query = select(Ticket).where(visible)
    if since is not None:
        start = _day_start(since)
        query = query.where(or_(Ticket.created_at >= start, Ticket.updated_at >= start))
    elif not include_old:
        recent = now - timedelta(days=RECENT_DAYS)
        query = query.where(or_(Ticket.status.not_in(DONE), Ticket.updated_at >= recent))
    tickets = sorted(session.scalars(query),
                     key=lambda t: (t.status in DONE, -_utc(t.updated_at).timestamp(),
                                    -t.number))
    lines = [TicketLine(number=t.number,
                        subject=t.subject if t.subject != "(no subject)" else "",
                        status=t.status.value,
                        updated=_utc(t.updated_at).date().isoformat())
             for t in tickets[:MAX_LINES]]
    return TicketListing(lines=lines, more=max(0, len(tickets) - MAX_LINES))
