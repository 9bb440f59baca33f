"""The hub's recommendations for a person (gateway/recommendations.py ``recommend_for``):
the most popular articles without tickets, then tailored to the team's tickets, refreshed
with every new ticket, in the person's language."""

from __future__ import annotations

from gateway.recommendations import recommend_for
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import processed


def _ids(gateway: Gateway, email: str, team: str | None, language: str = "en"
         ) -> list[tuple[str, str, bool]]:
    with gateway.db.reading() as session:
        return [(r.id, r.title, r.for_history)
                for r in recommend_for(session, email, team, language, limit=3)]


def test_recommendations_follow_the_teams_tickets_and_refresh_with_each(
        with_articles: Gateway) -> None:
    # Given Globex has no tickets: the most popular articles, none chosen for a history
    assert _ids(with_articles, "giulia@globex.example", "globex", "it") == [
        ("billing-faq", "Invoices and billing", False),
        ("share-links", "Share files with links", False),
        ("sync-basics", "Fix sync problems", False)]

    # When Yuki (same team) asks how to restore a file
    processed(with_articles, make_mail(sender="yuki@globex.example", subject="Restore",
                              body="How do I restore a deleted file?"))

    # Then Giulia's selection puts the restore article first, in Italian, for that history
    assert _ids(with_articles, "giulia@globex.example", "globex", "it")[0] == (
        "restore-versions", "Ripristinare una versione precedente", True)

    # And another team's selection did not change
    assert [i for i, _, _ in _ids(with_articles, "anna@acme.example", "acme")] == [
        "billing-faq", "share-links", "sync-basics"]


def test_a_person_without_a_team_gets_their_own_history(with_articles: Gateway) -> None:
    assert all(not chosen for _, _, chosen in _ids(with_articles, "solo@elsewhere.example", None))
    processed(with_articles, make_mail(sender="solo@elsewhere.example", subject="Sync",
                              body="Sync stopped working."))
    assert _ids(with_articles, "solo@elsewhere.example", None)[0] == (
        "sync-basics", "Fix sync problems", True)
