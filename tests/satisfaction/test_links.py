"""``gateway.satisfaction``: links are random, stored only as their hash, bound to one
ticket and its requester, expire after ``LINK_DAYS``; an answer is recorded once per
ticket, whichever of its links brings it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.models import SatisfactionLink, Ticket
from gateway.runtime.app import Gateway
from gateway.satisfaction import (
    COMMENT_LIMIT,
    LINK_DAYS,
    LinkStatus,
    inspect,
    issue_link,
    rating_of,
    record,
    token_hash,
)
from tests.mail import make_mail
from tests.pipeline.build import processed

NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
BASE = "https://help.example/"


def _issue(gw: Gateway, number: int, at: datetime = NOW) -> str:
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        url = issue_link(session, ticket, BASE, at)
    assert url is not None and url.startswith("https://help.example/satisfaction/")
    return url.rsplit("/", 1)[1]


@pytest.fixture
def number(gw: Gateway) -> int:
    return processed(gw, make_mail(sender="max@acme.example", subject="VPN"))


def test_a_link_is_random_stored_hashed_and_bound_to_the_requester(
        gw: Gateway, number: int) -> None:
    first, second = _issue(gw, number), _issue(gw, number)
    assert first != second and len(first) >= 43  # 256 random bits
    with gw.db.reading() as session:
        rows = list(session.scalars(select(SatisfactionLink)))
    assert {r.token_hash for r in rows} == {token_hash(first), token_hash(second)}
    assert all(r.ticket_number == number and r.email == "max@acme.example" for r in rows)
    assert all(r.expires_at == NOW + timedelta(days=LINK_DAYS) for r in rows)


def test_a_link_records_until_it_expires(gw: Gateway, number: int) -> None:
    token = _issue(gw, number)
    late = NOW + timedelta(days=LINK_DAYS)
    with gw.db.reading() as session:
        assert inspect(session, token, late - timedelta(seconds=1)).status is LinkStatus.OK
        assert inspect(session, token, late).status is LinkStatus.EXPIRED
        assert inspect(session, token + "x", NOW).status is LinkStatus.UNKNOWN
    with gw.db.transaction() as session:
        assert record(session, token, "good", "", late).status is LinkStatus.EXPIRED
    with gw.db.reading() as session:
        assert rating_of(session, number) is None


def test_a_ticket_is_rated_once_whichever_link_answers(gw: Gateway, number: int) -> None:
    first, second = _issue(gw, number), _issue(gw, number)
    long_comment = "  " + "x" * (COMMENT_LIMIT + 50) + "  "
    with gw.db.transaction() as session:
        done = record(session, first, "bad", long_comment, NOW)
        assert done.status is LinkStatus.OK and done.rating is not None
    with gw.db.transaction() as session:
        assert record(session, first, "good", "", NOW).status is LinkStatus.USED
        assert record(session, second, "good", "", NOW).status is LinkStatus.USED
    with gw.db.reading() as session:
        rating = rating_of(session, number)
        assert rating is not None and rating.rating == "bad"
        assert rating.comment == "x" * COMMENT_LIMIT and rating.email == "max@acme.example"
        assert inspect(session, second, NOW).status is LinkStatus.USED
        # and the rated ticket gets no new link
        ticket = session.get(Ticket, number)
        assert ticket is not None and issue_link(session, ticket, BASE, NOW) is None


def test_only_good_or_bad_is_recorded(gw: Gateway, number: int) -> None:
    token = _issue(gw, number)
    with gw.db.transaction() as session, pytest.raises(ValueError, match="rating"):
        record(session, token, "meh", "", NOW)
    with gw.db.reading() as session:
        assert inspect(session, token, NOW).status is LinkStatus.OK
