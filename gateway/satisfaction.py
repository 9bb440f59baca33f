""""Was this helpful?": the links in a solved ticket's mail and the answers (DESIGN §13).

Why a random token in a table and not a signed link: an answer may be recorded only once,
so the link has state anyway (used or not), and a token whose SHA-256 alone is stored
opens nothing from a copy of the database.  A link names one ticket and the requester it
was mailed to, expires after :data:`LINK_DAYS` days, and is used up by the one answer it
records.  A ticket holds at most one answer (the table's key): once rated, a ticket's
later solved notices ask nothing, and any older link says "already recorded".

The web page (``gateway.web.satisfaction``) only reads on GET (mail scanners open links)
and records on POST with a CSRF value bound to the link.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import SatisfactionLink, SatisfactionRating, Ticket

__all__ = [
    "COMMENT_LIMIT",
    "LINK_DAYS",
    "RATINGS",
    "Found",
    "LinkStatus",
    "inspect",
    "issue_link",
    "rating_of",
    "record",
    "satisfaction_rate",
    "satisfaction_url",
    "token_hash",
]

#: How long a link may record an answer: long enough for someone back from holiday.
LINK_DAYS = 30
#: The answers a POST may carry (stored as they are).
RATINGS = ("good", "bad")
#: A longer comment is cut here (the form's ``maxlength`` says so first).
COMMENT_LIMIT = 2000


class LinkStatus(enum.StrEnum):
    """What a link can do; the values name the refusal pages."""

    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Found:
    """A link looked up: its status, its row (None when unknown) and the ticket's rating."""

    status: LinkStatus
    link: SatisfactionLink | None = None
    rating: SatisfactionRating | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def satisfaction_url(public_url: str, token: str) -> str:
    """The page of a token, under ``GATEWAY_PUBLIC_URL``."""
    return f"{public_url.rstrip('/')}/satisfaction/{token}"


def rating_of(session: Session, ticket_number: int) -> SatisfactionRating | None:
    return session.get(SatisfactionRating, ticket_number)


def issue_link(session: Session, ticket: Ticket, public_url: str, now: datetime) -> str | None:
    """A new link asking the ticket's requester, stored hashed in the caller's transaction;
    None when the ticket was rated already (nobody is asked twice)."""
    if rating_of(session, ticket.number) is not None:
        return None
    token = secrets.token_urlsafe(32)
    session.add(SatisfactionLink(token_hash=token_hash(token), ticket_number=ticket.number,
                                 email=ticket.requester, created_at=now,
                                 expires_at=now + timedelta(days=LINK_DAYS)))
    return satisfaction_url(public_url, token)


def _status(link: SatisfactionLink | None, rating: SatisfactionRating | None,
            now: datetime) -> LinkStatus:
    if link is None:
        return LinkStatus.UNKNOWN
    if link.used_at is not None or rating is not None:
        return LinkStatus.USED  # "already recorded" tells more than "expired"
    if link.expires_at <= now:
        return LinkStatus.EXPIRED
    return LinkStatus.OK


def inspect(session: Session, token: str, now: datetime) -> Found:
    """What the link can do now; reads only (for the GET page)."""
    link = session.get(SatisfactionLink, token_hash(token))
    rating = rating_of(session, link.ticket_number) if link is not None else None
    return Found(_status(link, rating, now), link, rating)


def record(session: Session, token: str, rating: str, comment: str, now: datetime) -> Found:
    """Record the answer of a usable link, in the caller's transaction, and use the link up.

    Anything but an ``OK`` status changes nothing.  The link's row is locked, so the same
    link posted twice at once records once; two links of one ticket posted at once meet
    the rating table's key (the caller's commit fails: the ticket was rated)."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
    link = session.get(SatisfactionLink, token_hash(token), with_for_update=True)
    existing = rating_of(session, link.ticket_number) if link is not None else None
    status = _status(link, existing, now)
    if status is not LinkStatus.OK:
        return Found(status, link, existing)
    assert link is not None
    link.used_at = now
    answer = SatisfactionRating(ticket_number=link.ticket_number, email=link.email,
                                rating=rating, comment=comment.strip()[:COMMENT_LIMIT],
                                rated_at=now)
    session.add(answer)
    session.flush()
    return Found(LinkStatus.OK, link, answer)


def satisfaction_rate(session: Session, team_id: str) -> dict[str, Any]:
    """``good``, ``rated`` and ``rate`` (good / rated, None when nothing was rated) of a
    team's tickets; a duplicate is no request of its own and is never counted.  Counted in
    SQL: a team's thousands of ratings are two numbers, not thousands of rows."""
    counts = dict(session.execute(
        select(SatisfactionRating.rating, func.count()).join(
            Ticket, Ticket.number == SatisfactionRating.ticket_number).where(
            Ticket.team_id == team_id, Ticket.duplicate_of.is_(None))
        .group_by(SatisfactionRating.rating)).tuples().all())
    good, rated = counts.get("good", 0), sum(counts.values())
    return {"good": good, "rated": rated,
            "rate": round(good / rated, 4) if rated else None}
