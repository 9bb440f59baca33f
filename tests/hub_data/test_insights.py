"""A team admin's insights (gateway/insights.py): counted in SQL over the team's own
tickets; duplicates and other teams never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.insights import Count, Satisfaction, team_insights
from gateway.models import SatisfactionRating, Ticket, TicketStatus
from gateway.runtime.app import Gateway

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _ticket(product: str | None, issue_type: str | None, status: TicketStatus, *,
            team: str = "acme", category: str = "technical", answered: timedelta | None = None,
            duplicate_of: int | None = None) -> Ticket:
    return Ticket(subject="s", requester="max@acme.example", team_id=team, product=product,
                  issue_type=issue_type, status=status, category=category, created_at=T0,
                  first_response_at=T0 + answered if answered is not None else None,
                  duplicate_of=duplicate_of)


def test_insights_count_the_teams_requests_by_status_type_category_and_product(
        gateway: Gateway) -> None:
    # Given acme's tickets: 2 open, 2 solved/closed, one duplicate; and globex's one
    with gateway.db.transaction() as session:
        rows = [
            _ticket("files", "sync", TicketStatus.OPEN, answered=timedelta(hours=1)),
            _ticket("files", "sync", TicketStatus.SOLVED, answered=timedelta(hours=3),
                    category="administrative"),
            _ticket("dash", "billing", TicketStatus.PENDING, category="commercial"),
            _ticket(None, None, TicketStatus.CLOSED, answered=timedelta(hours=2)),
            _ticket("globex-only", "restore", TicketStatus.OPEN, team="globex"),
        ]
        session.add_all(rows)
        session.flush()
        session.add(_ticket("files", "sync", TicketStatus.CLOSED,
                            duplicate_of=rows[0].number, answered=timedelta(seconds=1)))
        session.add_all([
            SatisfactionRating(ticket_number=rows[1].number, email="max@acme.example",
                               rating="good", rated_at=T0),
            SatisfactionRating(ticket_number=rows[3].number, email="max@acme.example",
                               rating="bad", rated_at=T0),
            SatisfactionRating(ticket_number=rows[4].number, email="yuki@globex.example",
                               rating="good", rated_at=T0)])

    # When the admin's insights are read
    with gateway.db.reading() as session:
        found = team_insights(session, "acme")

    # Then only acme's four requests count, the duplicate aside
    assert (found.team, found.open_tickets, found.total_submitted, found.duplicates) == (
        "acme", 2, 4, 1)
    assert found.tickets_per_product == (Count("files", 2), Count("dash", 1),
                                         Count("unknown", 1))
    assert found.top_issue_types == (Count("sync", 2), Count("billing", 1), Count("other", 1))
    assert found.categories == (Count("technical", 2), Count("administrative", 1),
                                Count("commercial", 1))
    assert dict(found.per_product) == {"dash": (Count("billing", 1),),
                                       "files": (Count("sync", 2),),
                                       "unknown": (Count("other", 1),)}
    # And one good of two rated; the median of 1 h, 3 h and 2 h is 2 h
    assert found.satisfaction == Satisfaction(good=1, rated=2, rate=0.5)
    assert found.median_first_response_seconds == 7200


def test_a_team_without_tickets_has_empty_insights(gateway: Gateway) -> None:
    with gateway.db.reading() as session:
        found = team_insights(session, "globex")
    assert (found.open_tickets, found.total_submitted, found.duplicates) == (0, 0, 0)
    assert found.tickets_per_product == found.top_issue_types == found.categories == ()
    assert found.satisfaction == Satisfaction(0, 0, None)
    assert found.median_first_response_seconds is None
