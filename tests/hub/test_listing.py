"""The ticket lists: newest update first, filtered by status and date range, one page at a
time, and sorted and cut by an index (so 10,000 tickets cost what 100 do)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.hub.listing import PAGE_SIZE, TicketFilter, list_tickets, listing_query
from gateway.models import Base, Ticket, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.hub.conftest import ANNA, MAX, signed_in

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _tickets(session: Session, count: int, requester: str = MAX) -> None:
    """``count`` tickets of ``requester`` (team acme), one a day from START; every
    third solved."""
    for n in range(count):
        at = START + timedelta(days=n)
        session.add(Ticket(subject=f"Request {n}", requester=requester, team_id="acme",
                           status=TicketStatus.SOLVED if n % 3 == 0 else TicketStatus.OPEN,
                           created_at=at, updated_at=at))


def test_pages_filters_and_order(web: GatewayServer, gateway: Gateway, settings: Settings,
                                 hub: str) -> None:
    with gateway.db.transaction() as session:
        _tickets(session, PAGE_SIZE + 5)
    browser = signed_in(settings, hub, MAX)
    first = browser.get(f"{hub}/tickets")
    rows = first.body.count("<tr data-number=")
    assert rows == PAGE_SIZE
    # Newest update first
    assert first.body.index(f"Request {PAGE_SIZE + 4}<") < first.body.index("Request 10<")
    assert 'id="next"' in first.body and 'id="previous"' not in first.body
    second = browser.get(f"{hub}/tickets?page=2")
    assert second.body.count("<tr data-number=") == 5 and "Request 0<" in second.body
    solved = browser.get(f"{hub}/tickets?status=solved").body
    assert solved.count("<tr data-number=") == 10 and "Request 1<" not in solved
    window = browser.get(f"{hub}/tickets?since=2026-11-03&until=2026-11-04").body
    assert window.count("<tr data-number=") == 2
    assert "Request 2<" in window and "Request 3<" in window
    # Nonsense in the query is ignored, never an error
    assert browser.get(f"{hub}/tickets?page=-3&since=yesterday&status=lost").status == 200


def test_lists_are_sorted_and_cut_by_an_index() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        for query, index in (
                (listing_query(requester=MAX), "ix_tickets_requester_updated"),
                (listing_query(team=("acme", date(2024, 12, 11)),
                               wanted=TicketFilter(status="open", page=3)),
                 "ix_tickets_team_updated")):
            compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in connection.execute(
                text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert f"USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort of all the rows


@pytest.mark.parametrize("team", [True, False])
def test_a_list_is_one_page_whatever_the_number_of_tickets(gateway: Gateway,
                                                           team: bool) -> None:
    with gateway.db.transaction() as session:
        _tickets(session, 3 * PAGE_SIZE, requester=ANNA)
    with gateway.db.reading() as session:
        found = list_tickets(session, requester=None if team else ANNA,
                             team=("acme", date(2024, 12, 11)) if team else None,
                             wanted=TicketFilter(page=3))
    assert len(found.tickets) == PAGE_SIZE and not found.has_next
    assert found.tickets[-1].subject == "Request 0"
