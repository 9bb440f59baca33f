"""Sign-in by mail: one-time links to the hub, and the limits on asking for them.

Why links and no passwords: every hub user is a directory person with a mailbox, and a
link mailed there proves what a password would, with nothing to leak or reset.  A link
carries 256 random bits, only its SHA-256 is stored, it works once and for
``hub_link_ttl`` seconds; the mail is sealed in the outbox (``outbound/sealing.py``), so
no live link lies in the database.

Asking for a link answers the same whether or not the address is a directory person
(nothing is mailed to strangers), so the page tells nobody who is a customer.  Every
request counts against two hourly limits, known address or not:

- per client (IP address, ``hub_sign_in_per_client``): over it, nothing is mailed and the
  client is told so (429); it says nothing about any address, only about the asker;
- per address (``hub_sign_in_per_address``): anyone may ask for anyone's address, so this
  limit must not lock the person out.  Over it, a link is mailed only when the person has
  no live one (unused, unexpired): whoever keeps asking, the mailbox holds at most one
  more live link per ``hub_link_ttl``, and the person always has one that works.  The
  page is the same either way (``HELD`` looks like ``SENT`` and ``UNKNOWN``), so it tells
  nobody how often an address was asked for, nor whether it is known.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

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
    """What asking for a link did; ``SENT``, ``HELD`` and ``UNKNOWN`` show the same page."""

    SENT = "sent"
    HELD = "held"  # over the address's limit with a live link: nothing new mailed
    UNKNOWN = "unknown"
    LIMITED = "limited"  # over the client's limit


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


def _attempts(session: Session, column: InstrumentedAttribute[str], value: str,
              now: datetime) -> int:
    """Requests of the last hour with ``column == value`` (an address or a client)."""
    return session.scalar(select(func.count()).select_from(HubSignInAttempt).where(
        column == value, HubSignInAttempt.at >= now - _HOUR)) or 0


def _has_live_link(session: Session, email: str, now: datetime) -> bool:
    """Whether a link mailed to ``email`` still works (unused, unexpired)."""
    return session.scalar(select(HubSignInLink.token_hash).where(
        HubSignInLink.email == email, HubSignInLink.used_at.is_(None),
        HubSignInLink.expires_at > now).limit(1)) is not None


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
    """Count the request and, for a directory person within the limits (see the module),
    queue the mail (caller's transaction).  Returns what happened and the outbox id to
    deliver."""
    email, client, settings = _normal(email), client[:128], services.settings
    _prune(session, services, now)
    by_client = _attempts(session, HubSignInAttempt.client, client, now)
    if by_client >= settings.hub_sign_in_per_client:
        return Requested.LIMITED, None
    by_address = _attempts(session, HubSignInAttempt.email, email, now)
    over = by_address >= settings.hub_sign_in_per_address
    session.add(HubSignInAttempt(email=email, client=client, at=now))
    person = session.get(Person, email)
    if person is None:
        return Requested.UNKNOWN, None
    if over and _has_live_link(session, person.email, now):
        return Requested.HELD, None  # the person has a link that works: no new mail
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
