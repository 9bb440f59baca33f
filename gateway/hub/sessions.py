"""Hub sessions: a random id in the visitor's cookie, only its SHA-256 in ``hub_sessions``.

A session ends at sign-out, after ``hub_session_idle`` seconds without a request, or
``hub_session_lifetime`` seconds after sign-in, whichever comes first; an ended session
is never revived.  The last-seen time is written at most once a minute, so reading pages
costs no write per request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.grants.tokens import hash_token
from gateway.hub.visitor import HubVisitor, visitor_of
from gateway.models import HubSession

__all__ = ["SessionCheck", "end_session", "resolve_session", "start_session", "touch_session"]

_TOUCH_EVERY = timedelta(seconds=60)


def start_session(session: Session, email: str, now: datetime) -> str:
    """A new session for ``email``; returns the id for the cookie (not stored)."""
    session_id = secrets.token_urlsafe(32)
    session.add(HubSession(id_hash=hash_token(session_id), email=email, created_at=now,
                           last_seen_at=now))
    return session_id


@dataclass(frozen=True)
class SessionCheck:
    visitor: HubVisitor | None
    touch: bool = False
    """True when the last-seen time should be written (see :func:`touch_session`)."""



def resolve_session(session: Session, session_id: str, settings: Settings,
                    now: datetime) -> SessionCheck:
    """The visitor of a live session (reads only), or none."""
    if not session_id:
        return SessionCheck(None)
    row = session.get(HubSession, hash_token(session_id))
    if row is None or row.ended_at is not None:
        return SessionCheck(None)
    if now - row.last_seen_at > timedelta(seconds=settings.hub_session_idle):
        return SessionCheck(None)
    if now - row.created_at > timedelta(seconds=settings.hub_session_lifetime):
        return SessionCheck(None)
    visitor = visitor_of(session, row.email, row.id_hash)
    return SessionCheck(visitor, touch=now - row.last_seen_at >= _TOUCH_EVERY)


def touch_session(session: Session, session_hash: str, now: datetime) -> None:
    """Record that the session was used (keeps it from going idle)."""
    session.execute(update(HubSession).where(HubSession.id_hash == session_hash,
                                             HubSession.ended_at.is_(None))
                    .values(last_seen_at=now))


def end_session(session: Session, session_hash: str, now: datetime) -> None:
    session.execute(update(HubSession).where(HubSession.id_hash == session_hash,
                                             HubSession.ended_at.is_(None))
                    .values(ended_at=now))
