"""Help articles for the acknowledgement of a new ticket (up to three).

An article's ``issue_types`` are its keywords.  A ticket's issue types are those keywords
found as words in its subject and text, plus its category.  Articles are ranked:

1. matching the new ticket's issue types (most popular first);
2. matching the issue types of the team's previous tickets (the requester's own when
   there is no team), the most frequent type first, then popularity;
3. the most popular articles, to fill up (also all there is without any history).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Article, MessageRecord, Ticket

__all__ = ["HISTORY_TICKETS", "MAX_RECOMMENDATIONS", "issue_types_of", "recommend"]

MAX_RECOMMENDATIONS = 3
HISTORY_TICKETS = 50
_WORD = re.compile(r"[^\W_]+(?:[-_][^\W_]+)*", re.UNICODE)


def issue_types_of(text: str, vocabulary: Iterable[str]) -> set[str]:
    """The known issue types that occur in ``text`` as whole words (case-insensitive)."""
    words = set(_WORD.findall(text.lower()))
    joined = f" {' '.join(_WORD.findall(text.lower()))} "  # for types of several words
    return {t for t in vocabulary if t.lower() in words or f" {t.lower()} " in joined}


def _history(session: Session, ticket: Ticket) -> list[str]:
    owner = (Ticket.team_id == ticket.team_id if ticket.team_id
             else Ticket.requester == ticket.requester)
    numbers = list(session.scalars(select(Ticket.number).where(
        owner, Ticket.number != ticket.number).order_by(Ticket.number.desc())
        .limit(HISTORY_TICKETS)))
    texts: dict[int, str] = {}
    for number, subject, category in session.execute(select(
            Ticket.number, Ticket.subject, Ticket.category).where(Ticket.number.in_(numbers))):
        texts[number] = f"{subject} {category}"
    for number, text in session.execute(select(MessageRecord.ticket_number, MessageRecord.text)
                                        .where(MessageRecord.ticket_number.in_(numbers),
                                               MessageRecord.role != "system")  # our own words
                                        .order_by(MessageRecord.id)):
        texts[number] += f" {text[:2000]}"
    return list(texts.values())


def recommend(session: Session, ticket: Ticket, text: str, language: str) -> list[dict[str, str]]:
    """Up to three ``{"id", "title", "url"}`` in ``language`` (English title as fallback)."""
    articles = list(session.scalars(select(Article).order_by(Article.popularity.desc(),
                                                             Article.id)))
    if not articles:
        return []
    vocabulary = {t for a in articles for t in a.issue_types}
    current = issue_types_of(f"{ticket.subject} {ticket.category} {text}", vocabulary)
    previous: Counter[str] = Counter()
    for old in _history(session, ticket):
        previous.update(issue_types_of(old, vocabulary))

    def rank(article: Article) -> tuple[int, int, int]:
        types = set(article.issue_types)
        if types & current:
            return (0, 0, -article.popularity)
        if types & previous.keys():
            return (1, -max(previous[t] for t in types), -article.popularity)
        return (2, 0, -article.popularity)

    chosen = sorted(articles, key=rank)[:MAX_RECOMMENDATIONS]
    return [{"id": a.id, "title": str(a.title.get(language) or a.title.get("en") or a.id),
             "url": a.url} for a in chosen]
