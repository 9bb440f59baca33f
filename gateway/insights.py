"""A team's picture: open tickets, total requests, frequent issue types and categories,
tickets per product, satisfaction and the median time to first response.

One function, :func:`team_insights`, for ``gateway insights`` and the hub's insights page,
so the two can never disagree.  Everything is counted in SQL, so a team with 10,000
tickets costs milliseconds, not 10,000 ORM objects: the counts come from one grouped query
that ``ix_tickets_team_insights`` covers in its own column order (no sort, no table rows),
and for the median the database sorts the waits and returns only the middle one or two.

A duplicate (a repeated request, stored closed with ``duplicate_of``) is not a request of
its own: it counts in ``duplicates`` only, never in the totals, types or products.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from gateway.models import Ticket, TicketStatus
from gateway.satisfaction import satisfaction_rate

__all__ = ["Count", "Satisfaction", "TeamInsights", "median_first_response", "team_insights"]

_DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)
NO_TYPE, NO_PRODUCT = "other", "unknown"


@dataclass(frozen=True)
class Count:
    """How many of the team's requests have one value (an issue type, a product, …)."""

    key: str
    tickets: int


@dataclass(frozen=True)
class Satisfaction:
    good: int
    rated: int
    rate: float | None
    """good / rated, rounded to four places; None when nothing was rated."""


@dataclass(frozen=True)
class TeamInsights:
    team: str
    open_tickets: int
    total_submitted: int
    duplicates: int
    tickets_per_product: tuple[Count, ...]
    """Most tickets first, then by name."""
    top_issue_types: tuple[Count, ...]
    categories: tuple[Count, ...]
    per_product: Mapping[str, tuple[Count, ...]]
    """Issue types per product, products by name."""
    satisfaction: Satisfaction
    median_first_response_seconds: float | None


def _ranked(counts: Counter[str]) -> tuple[Count, ...]:
    return tuple(Count(k, n) for k, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def _wait_seconds(dialect: str) -> ColumnElement[Any]:
    """Seconds from a ticket's creation to its first answer, computed by the database."""
    if dialect == "sqlite":
        return (func.julianday(Ticket.first_response_at)
                - func.julianday(Ticket.created_at)) * 86400.0
    return func.extract("epoch", Ticket.first_response_at - Ticket.created_at)


def median_first_response(session: Session, *where: ColumnElement[bool]) -> float | None:
    """The median time from creation to first answer of the tickets ``where`` selects, in
    seconds (to the millisecond); None when none was answered.  The database sorts the
    waits and hands back the middle one or two, never all of them."""
    answered = (*where, Ticket.first_response_at.is_not(None))
    count = session.scalar(select(func.count()).select_from(Ticket).where(*answered)) or 0
    if not count:
        return None
    wait = _wait_seconds(session.get_bind().dialect.name)
    middle = [float(w) for w in session.scalars(select(wait).where(*answered).order_by(wait)
                                                .offset((count - 1) // 2)
                                                .limit(2 - count % 2))]
    return round(statistics.fmean(middle), 3)


def team_insights(session: Session, team_id: str) -> TeamInsights:
    """The insights of one team (which must exist: the caller checks)."""
    mine = (Ticket.team_id == team_id, Ticket.duplicate_of.is_(None))
    columns = (Ticket.product, Ticket.issue_type, Ticket.category, Ticket.status)
    groups = session.execute(  # in the order of ix_tickets_team_insights: no sort needed
        select(*columns, func.count()).where(*mine).group_by(*columns))
    types: Counter[str] = Counter()
    products: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    per_product: defaultdict[str, Counter[str]] = defaultdict(Counter)
    open_tickets = total = 0
    for product, issue_type, category, status, count in groups:
        total += count
        open_tickets += 0 if status in _DONE else count
        types[issue_type or NO_TYPE] += count
        products[product or NO_PRODUCT] += count
        categories[category] += count
        per_product[product or NO_PRODUCT][issue_type or NO_TYPE] += count
    duplicates = session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.team_id == team_id, Ticket.duplicate_of.is_not(None))) or 0
    rate = satisfaction_rate(session, team_id)
    return TeamInsights(
        team=team_id, open_tickets=open_tickets, total_submitted=total, duplicates=duplicates,
        tickets_per_product=_ranked(products), top_issue_types=_ranked(types),
        categories=_ranked(categories),
        per_product={p: _ranked(c) for p, c in sorted(per_product.items())},
        satisfaction=Satisfaction(rate["good"], rate["rated"], rate["rate"]),
        median_first_response_seconds=median_first_response(session, *mine))
