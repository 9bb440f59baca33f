"""The articles an acknowledgement recommends (gateway/recommendations.py ``recommend``):
the new ticket's own issue types first, then the team's history, then popularity; the
history is not read when the ticket's own types already fill the three places."""

from __future__ import annotations

import pytest

from gateway.models import Ticket
from gateway.recommendations import _ranked, recommend
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import processed

GIULIA, YUKI = "giulia@globex.example", "yuki@globex.example"


def _recommended(gateway: Gateway, number: int, text: str) -> list[str]:
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return [r["id"] for r in recommend(session, ticket, text, "en")]


def test_the_teams_history_orders_what_the_tickets_own_words_leave_open(
        with_articles: Gateway) -> None:
    processed(with_articles, make_mail(sender=YUKI, subject="Restore",
                                       body="How do I restore a deleted file?"))
    text = "Our invoice shows the wrong amount."
    number = processed(with_articles, make_mail(sender=GIULIA, subject="Amount", body=text))
    assert _recommended(with_articles, number, text) == [
        "billing-faq", "restore-versions", "share-links"]


def test_the_history_is_not_read_when_the_tickets_own_words_fill_the_places(
        with_articles: Gateway) -> None:
    processed(with_articles, make_mail(sender=YUKI, subject="Restore",
                                       body="How do I restore a deleted file?"))
    text = "Sync stops, the invoice is wrong and sharing links fail."
    number = processed(with_articles, make_mail(sender=GIULIA, subject="Three", body=text))
    assert _recommended(with_articles, number, text) == [
        "billing-faq", "share-links", "sync-basics"]

    def unread() -> list[str]:
        pytest.fail("the history was read")

    with with_articles.db.reading() as session:
        assert [a.id for a in _ranked(session, text, unread, 3)] == [
            "billing-faq", "share-links", "sync-basics"]
