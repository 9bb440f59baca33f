"""``gateway insights`` gains the satisfaction rate (good answers of the tickets rated) and
the median time to first response; duplicates and other teams' tickets do not count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from gateway.config import Settings
from gateway.models import SatisfactionRating, Ticket
from gateway.runtime.app import Gateway
from tests.conftest import run_gateway
from tests.mail import make_mail
from tests.pipeline.build import processed

START = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


def _ticket(gw: Gateway, sender: str, subject: str, *, answered_after: timedelta | None,
            rating: str | None = None) -> int:
    number = processed(gw, make_mail(sender=sender, subject=subject, body=f"{subject}, help"))
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            created_at=START, first_response_at=START + answered_after
            if answered_after is not None else None))
        if rating is not None:
            session.add(SatisfactionRating(ticket_number=number, email=sender, rating=rating,
                                           comment="", rated_at=START + timedelta(days=1)))
    return number


def _insights(settings: Settings, team: str = "acme") -> dict[str, object]:
    result = run_gateway(settings, "insights", "--team", team, "--json")
    assert result.returncode == 0, result.stderr
    view: dict[str, object] = json.loads(result.stdout)
    return view


def test_no_answer_and_no_rating_yet(gw: Gateway, settings: Settings) -> None:
    _ticket(gw, "anna@acme.example", "Sync fails", answered_after=None)
    view = _insights(settings)
    assert view["satisfaction"] == {"good": 0, "rated": 0, "rate": None}
    assert view["median_first_response_seconds"] is None
    text = run_gateway(settings, "insights", "--team", "acme").stdout.decode()
    assert "satisfaction: no ticket rated yet" in text
    assert "median time to first response: -" in text


def test_rate_and_median_of_a_teams_tickets(gw: Gateway, settings: Settings) -> None:
    # Acme: answered after 10 min, 1 h, 2 h 30 min and 3 days; one never answered
    _ticket(gw, "anna@acme.example", "Sync fails", answered_after=timedelta(minutes=10),
            rating="good")
    _ticket(gw, "max@acme.example", "VPN drops", answered_after=timedelta(hours=1),
            rating="good")
    _ticket(gw, "anna@acme.example", "Printer", answered_after=timedelta(hours=2, minutes=30),
            rating="bad")
    _ticket(gw, "max@acme.example", "Licence", answered_after=timedelta(days=3))
    _ticket(gw, "anna@acme.example", "Invoice", answered_after=None)
    # Another team's ticket, answered at once and rated bad, counts for them only
    _ticket(gw, "giulia@globex.example", "Login", answered_after=timedelta(seconds=30),
            rating="bad")
    view = _insights(settings)
    assert view["satisfaction"] == {"good": 2, "rated": 3, "rate": 0.6667}
    assert view["median_first_response_seconds"] == (3600 + 9000) / 2  # 1 h and 2 h 30 min
    text = run_gateway(settings, "insights", "--team", "acme").stdout.decode()
    assert "satisfaction: 67% good (2 of 3 rated)" in text
    assert "median time to first response: 1 h 45 min" in text
    globex = _insights(settings, "globex")
    assert globex["satisfaction"] == {"good": 0, "rated": 1, "rate": 0.0}
    assert globex["median_first_response_seconds"] == 30


def test_a_duplicate_is_neither_rated_nor_timed(gw: Gateway, settings: Settings) -> None:
    first = _ticket(gw, "anna@acme.example", "Sync fails", answered_after=timedelta(hours=1),
                    rating="good")
    again = _ticket(gw, "anna@acme.example", "Sync fails again",
                    answered_after=timedelta(days=9), rating="bad")
    with gw.db.transaction() as session:  # stored as the duplicate detection stores one
        session.execute(update(Ticket).where(Ticket.number == again).values(duplicate_of=first))
    view = _insights(settings)
    assert view["satisfaction"] == {"good": 1, "rated": 1, "rate": 1.0}
    assert view["median_first_response_seconds"] == 3600
