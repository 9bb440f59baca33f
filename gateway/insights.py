"""A team's picture: open tickets, total requests, frequent issue types and categories,
tickets per product, satisfaction and the median time to first response.

One function, :func:`team_insights`, for ``gateway insights`` and the hub's insights page,
so the two can never disagree.  Everything is counted in SQL with a handful of grouped
queries over the team's rows (``ix_tickets_team_id``), so a team with 10,000 tickets costs a
few milliseconds, not 10,000 ORM objects; only the answered tickets' two timestamps are read
for the median.

A duplicate (a repeated request, stored closed with ``duplicate_of``) is not a request of
its own: it counts in ``duplicates`` only, never in the totals, types or products.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
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


def median_first_response(pairs: Iterable[tuple[datetime, datetime | None]]) -> float | None:
    """The median of (first answer − creation) over ``(created_at, first_response_at)``
    pairs, in seconds; None when nothing was answered."""
    waits = [(answered - created).total_seconds() for created, answered in pairs
             if answered is not None]
    return statistics.median(waits) if waits else None


def team_insights(session: Session, team_id: str) -> TeamInsights:
    """The insights of one team (which must exist: the caller checks)."""
    mine = (Ticket.team_id == team_id, Ticket.duplicate_of.is_(None))
    is_open = Ticket.status.not_in(_DONE)
    groups = session.execute(
        select(Ticket.product, Ticket.issue_type, Ticket.category, is_open, func.count())
        .where(*mine).group_by(Ticket.product, Ticket.issue_type, Ticket.category, is_open))
    types: Counter[str] = Counter()
    products: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    per_product: defaultdict[str, Counter[str]] = defaultdict(Counter)
    open_tickets = total = 0
    for product, issue_type, category, open_, count in groups:
        total += count
        open_tickets += count if open_ else 0
        types[issue_type or NO_TYPE] += count
        products[product or NO_PRODUCT] += count
        categories[category] += count
        per_product[product or NO_PRODUCT][issue_type or NO_TYPE] += count
    duplicates = session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.team_id == team_id, Ticket.duplicate_of.is_not(None))) or 0
    answered = session.execute(select(Ticket.created_at, Ticket.first_response_at).where(
        *mine, Ticket.first_response_at.is_not(None))).tuples()
    rate = satisfaction_rate(session, team_id)
    return TeamInsights(
        team=team_id, open_tickets=open_tickets, total_submitted=total, duplicates=duplicates,
        tickets_per_product=_ranked(products), top_issue_types=_ranked(types),
        categories=_ranked(categories),
        per_product={p: _ranked(c) for p, c in sorted(per_product.items())},
        satisfaction=Satisfaction(rate["good"], rate["rated"], rate["rate"]),
        median_first_response_seconds=median_first_response(answered))
