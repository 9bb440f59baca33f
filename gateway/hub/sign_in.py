"""Sign-in by mail: one-time links to the hub, and the limits on asking for them.

Why links and no passwords: every hub user is a directory person with a mailbox, and a
link mailed there proves what a password would, with nothing to leak or reset.  A link
carries 256 random bits, only its SHA-256 is stored, it works once and for
``hub_link_ttl`` seconds; the mail is sealed in the outbox (``outbound/sealing.py``), so
no live link lies in the database.

Asking for a link answers the same whether or not the address is a directory person
(nothing is mailed to strangers), so the page tells nobody who is a customer.  Every
request counts against two hourly limits, per address and per client, known or not; over
either, nothing is mailed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from gateway.grants.tokens import hash_token, new_token
from gateway.hub.sessions import start_session
from gateway.models import HubSession, HubSignInAttempt, HubSignInLink, Person
from gateway.services import Services
from outbound.mail import Mail, MailKind, queue_mail

__all__ = ["FoundLink", "LinkState", "Requested", "inspect_link", "redeem_link",
           "request_link", "sign_in_url"]

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


class Requested(enum.StrEnum):
    """What asking for a link did; ``SENT`` and ``UNKNOWN`` show the same page."""

    SENT = "sent"
    UNKNOWN = "unknown"
    LIMITED = "limited"


class LinkState(enum.StrEnum):
    """What a link can do; the values name the refusal pages."""

    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


def sign_in_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/hub/sign-in/{token}"


def _normal(email: str) -> str:
    return email.strip().lower()[:320]


def _over_limit(session: Session, services: Services, email: str, client: str,
                now: datetime) -> bool:
    settings, since = services.settings, now - _HOUR
    by_address = session.scalar(select(func.count()).select_from(HubSignInAttempt).where(
        HubSignInAttempt.email == email, HubSignInAttempt.at >= since)) or 0
    by_client = session.scalar(select(func.count()).select_from(HubSignInAttempt).where(
        HubSignInAttempt.client == client, HubSignInAttempt.at >= since)) or 0
    return (by_address >= settings.hub_sign_in_per_address
            or by_client >= settings.hub_sign_in_per_client)


def _prune(session: Session, services: Services, now: datetime) -> None:
    """Forget what no limit, link or session needs any more (done here, on the rare
    sign-in request, so the tables stay small without a job of their own)."""
    session.execute(delete(HubSignInAttempt).where(HubSignInAttempt.at < now - 2 * _HOUR))
    session.execute(delete(HubSignInLink).where(HubSignInLink.expires_at < now - _DAY))
    lifetime = timedelta(seconds=services.settings.hub_session_lifetime)
    session.execute(delete(HubSession).where(or_(
        HubSession.created_at < now - lifetime - _DAY, HubSession.ended_at < now - _DAY)))


def request_link(session: Session, services: Services, email: str, client: str,
                 now: datetime) -> tuple[Requested, int | None]:
    """Count the request and, for a directory person within the limits, queue the mail
    (caller's transaction).  Returns what happened and the outbox id to deliver."""
    email, client = _normal(email), client[:128]
    _prune(session, services, now)
    if _over_limit(session, services, email, client, now):
        return Requested.LIMITED, None
    session.add(HubSignInAttempt(email=email, client=client, at=now))
    person = session.get(Person, email)
    if person is None:
        return Requested.UNKNOWN, None
    token, digest = new_token()
    ttl = services.settings.hub_link_ttl
    session.add(HubSignInLink(token_hash=digest, email=person.email, created_at=now,
                              expires_at=now + timedelta(seconds=ttl)))
    item = queue_mail(session, services.renderer, Mail(
        MailKind.HUB_SIGN_IN, person.email,
        {"recipient_name": person.name,
         "sign_in_url": sign_in_url(services.settings.public_url, token),
         "link_minutes": max(1, round(ttl / 60))},
        to_name=person.name, language=person.language), secret=services.secret)
    return Requested.SENT, item.id


@dataclass(frozen=True)
class FoundLink:
    state: LinkState
    link: HubSignInLink | None = None



def inspect_link(session: Session, token: str, now: datetime) -> FoundLink:
    """What the link can do now; reads only."""
    link = session.get(HubSignInLink, hash_token(token))
    if link is None:
        return FoundLink(LinkState.UNKNOWN)
    if link.used_at is not None:
        return FoundLink(LinkState.USED, link)
    if link.expires_at <= now:
        return FoundLink(LinkState.EXPIRED, link)
    return FoundLink(LinkState.OK, link)


def redeem_link(session: Session, token: str, now: datetime) -> tuple[LinkState, str | None]:
    """Spend the link and start a session (caller's transaction): ``(OK, session id)``,
    or the link's refusal.  The conditional update lets exactly one of two concurrent
    POSTs through; a person who left the directory meanwhile gets UNKNOWN."""
    found = inspect_link(session, token, now)
    if found.state is not LinkState.OK or found.link is None:
        return found.state, None
    spent = session.execute(update(HubSignInLink).where(
        HubSignInLink.token_hash == found.link.token_hash, HubSignInLink.used_at.is_(None))
        .values(used_at=now))
    if getattr(spent, "rowcount", 0) != 1:
        return LinkState.USED, None
    if session.get(Person, found.link.email) is None:
        return LinkState.UNKNOWN, None
    return LinkState.OK, start_session(session, found.link.email, now)
