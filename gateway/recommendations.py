"""Help articles for the acknowledgement of a new ticket (up to three) and for the hub.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from gateway.db import flush_if_pending, no_flush_unless_pending
from gateway.models import Article, MessageRecord, Ticket
from gateway.prepared import Prepared

__all__ = ["HISTORY_TICKETS", "HUB_RECOMMENDATIONS", "MAX_RECOMMENDATIONS", "Recommendation",
           "issue_types_of", "recommend", "recommend_for"]

MAX_RECOMMENDATIONS = 3
HUB_RECOMMENDATIONS = 6
HISTORY_TICKETS = 50
_WORD = re.compile(r"[^\W_]+(?:[-_][^\W_]+)*", re.UNICODE)


def issue_types_of(text: str, vocabulary: Iterable[str]) -> set[str]:
    """The known issue types that occur in ``text`` as whole words (case-insensitive)."""
    found = _WORD.findall(text.lower())
    words = set(found)
    joined = f" {' '.join(found)} "  # for types of several words
    return {t for t in vocabulary if t.lower() in words or f" {t.lower()} " in joined}


def _history(session: Session, owner: ColumnElement[bool], exclude: int | None = None
             ) -> list[str]:
    """Subject, category and the people's words of the newest ``HISTORY_TICKETS`` tickets
    matching ``owner`` (a team's, or one requester's)."""
    query = select(Ticket.number).where(owner).order_by(Ticket.number.desc()).limit(
        HISTORY_TICKETS)
    if exclude is not None:
        query = query.where(Ticket.number != exclude)
    with no_flush_unless_pending(session, Ticket, MessageRecord):
        return _texts(session, list(session.scalars(query)))


def _texts(session: Session, numbers: list[int]) -> list[str]:
    """Subject, category and the people's words of the tickets ``numbers``."""
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


@dataclass(frozen=True)
class _Article:
    """The columns of one article the ranking and the answer need (no ORM object)."""

    id: str
    title: dict[str, str]
    url: str
    issue_types: tuple[str, ...]
    popularity: int


_ARTICLES = Article.__table__.c
# Built once, Core columns: the articles never change inside a message's transaction, and
# an ORM query would flush the ticket and message just recorded only for that (an extra
# run of the unit of work before the outbox row's).
_ALL_ARTICLES = Prepared(
    select(_ARTICLES.id, _ARTICLES.title, _ARTICLES.url, _ARTICLES.issue_types,
           _ARTICLES.popularity).order_by(_ARTICLES.popularity.desc(), _ARTICLES.id))


def _articles(session: Session) -> list[_Article]:
    """Every article, the most popular first (a changed article in the session is
    flushed first, as an ORM query would)."""
    flush_if_pending(session, Article)
    return [_Article(id, title or {}, url, tuple(types or ()), popularity)
            for id, title, url, types, popularity in _ALL_ARTICLES.rows(session)]


def _owner(team_id: str | None, requester: str) -> ColumnElement[bool]:
    return Ticket.team_id == team_id if team_id else Ticket.requester == requester


def _ranked(session: Session, current_text: str | None, history: Callable[[], list[str]],
            limit: int) -> list[_Article]:
    """Articles for ``current_text`` (a new ticket's words; None on the hub), then for the
    history, then the most popular: the ranking of this module's docstring."""
    articles = _articles(session)
    if not articles:
        return []
    vocabulary = {t for a in articles for t in a.issue_types}
    current = issue_types_of(current_text, vocabulary) if current_text else set()
    previous: Counter[str] = Counter()
    # The history only orders the articles after those for the current words: when these
    # fill the selection, it would change nothing (and cost up to three queries and a scan
    # of fifty tickets' words inside the write transaction).
    if sum(1 for a in articles if current.intersection(a.issue_types)) < limit:
        for old in history():
            previous.update(issue_types_of(old, vocabulary))

    def rank(article: _Article) -> tuple[int, int, int]:
        types = set(article.issue_types)
        if types & current:
            return (0, 0, -article.popularity)
        if types & previous.keys():
            return (1, -max(previous[t] for t in types), -article.popularity)
        return (2, 0, -article.popularity)

    return sorted(articles, key=rank)[:limit]


def _title(article: _Article, language: str) -> str:
    return str(article.title.get(language) or article.title.get("en") or article.id)


def recommend(session: Session, ticket: Ticket, text: str, language: str) -> list[dict[str, str]]:
    """Up to three ``{"id", "title", "url"}`` in ``language`` (English title as fallback)."""
    chosen = _ranked(session, f"{ticket.subject} {ticket.category} {text}",
                     lambda: _history(session, _owner(ticket.team_id, ticket.requester),
                                      exclude=ticket.number), MAX_RECOMMENDATIONS)
    return [{"id": a.id, "title": _title(a, language), "url": a.url} for a in chosen]


@dataclass(frozen=True)
class Recommendation:
    """One article for the hub's recommendations page."""

    id: str
    title: str
    url: str
    for_history: bool
    """Chosen for the issue types of previous tickets (False: among the most popular)."""


def recommend_for(session: Session, email: str, team_id: str | None, language: str,
                  limit: int = HUB_RECOMMENDATIONS) -> list[Recommendation]:
    """The hub's selection for a person: the issue types of their team's last
    ``HISTORY_TICKETS`` tickets (their own without a team), then popularity.  Read fresh
    every time, so every new ticket refreshes it; with no tickets yet, the most popular."""
    texts = _history(session, _owner(team_id, email))
    chosen = _ranked(session, None, lambda: texts, limit)
    offered = {t for a in chosen for t in a.issue_types}
    seen = {t for old in texts for t in issue_types_of(old, offered)}
    return [Recommendation(a.id, _title(a, language), a.url,
                           for_history=bool(set(a.issue_types) & seen)) for a in chosen]
