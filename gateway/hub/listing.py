"""The hub's ticket lists: a visitor's own tickets, and for team admins the team's.

Which team tickets an admin sees is the rule of ``#tickets``
(:func:`gateway.visible_tickets.team_window`: created or updated on or after the
colleague cut-off).  Lists are newest update first, filtered by status and a date range
of the last update, one page of :data:`PAGE_SIZE` at a time: the database sorts and cuts
(indexes ``ix_tickets_requester_updated`` and ``ix_tickets_team_updated``), so a page
costs the same with 100 tickets or 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from gateway.models import Ticket, TicketStatus
from gateway.visible_tickets import team_window

__all__ = ["PAGE_SIZE", "STATUSES", "ListedTicket", "TicketFilter", "TicketPage",
           "list_tickets", "listing_query"]

PAGE_SIZE = 25
STATUSES = tuple(status.value for status in TicketStatus)


@dataclass(frozen=True)
class TicketFilter:
    """What a list shows: a status (None: any), last update from/until (days, UTC,
    inclusive) and the page (1-based)."""

    status: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1


@dataclass(frozen=True)
class ListedTicket:
    number: int
    subject: str
    status: str
    updated_at: datetime
    requester: str


@dataclass(frozen=True)
class TicketPage:
    tickets: list[ListedTicket]
    page: int
    has_next: bool


def _filtered(where: ColumnElement[bool], wanted: TicketFilter) -> list[ColumnElement[bool]]:
    clauses = [where]
    if wanted.status in STATUSES:
        clauses.append(Ticket.status == TicketStatus(wanted.status))
    if wanted.since is not None:
        clauses.append(Ticket.updated_at >= datetime.combine(wanted.since, time(), tzinfo=UTC))
    if wanted.until is not None:
        end = datetime.combine(wanted.until + timedelta(days=1), time(), tzinfo=UTC)
        clauses.append(Ticket.updated_at < end)
    return clauses


def listing_query(*, requester: str | None = None, team: tuple[str, date] | None = None,
                  wanted: TicketFilter = TicketFilter()) -> Select[Any]:
    """The statement behind :func:`list_tickets` (one page and one row more)."""
    if team is not None:
        where = team_window(*team)
    elif requester is not None:
        where = Ticket.requester == requester
    else:
        raise ValueError("a list needs a requester or a team")
    page = max(1, wanted.page)
    return (select(Ticket.number, Ticket.subject, Ticket.status, Ticket.updated_at,
                   Ticket.requester)
            .where(*_filtered(where, wanted))
            .order_by(Ticket.updated_at.desc(), Ticket.number.desc())
            .limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE))


def list_tickets(session: Session, *, requester: str | None = None,
                 team: tuple[str, date] | None = None,
                 wanted: TicketFilter = TicketFilter()) -> TicketPage:
    """One page of ``requester``'s tickets, or of ``team`` = (team id, cut-off)'s."""
    page = max(1, wanted.page)
    rows = session.execute(listing_query(requester=requester, team=team, wanted=wanted)).all()
    tickets = [ListedTicket(number=r.number,
                            subject=r.subject if r.subject != "(no subject)" else "",
                            status=r.status.value, updated_at=r.updated_at,
                            requester=r.requester) for r in rows[:PAGE_SIZE]]
    return TicketPage(tickets=tickets, page=page, has_next=len(rows) > PAGE_SIZE)
