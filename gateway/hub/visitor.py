"""Who is looking at a hub page: resolved on the server from the session and the
directory, never from anything the page sends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.models import Person, Team

__all__ = ["HubVisitor", "visitor_of"]


@dataclass(frozen=True)
class HubVisitor:
    """A signed-in directory person, as the directory says now."""

    email: str
    name: str
    language: str
    team_id: str | None
    team_name: str
    is_admin: bool
    session_hash: str
    """The SHA-256 of the session id: what CSRF values of this session are bound to."""

    @property
    def label(self) -> str:
        return self.name or self.email


def visitor_of(session: Session, email: str, session_hash: str) -> HubVisitor | None:
    """The visitor for ``email``, or None when the directory no longer knows them."""
    person = session.get(Person, email)
    if person is None:
        return None
    team = session.get(Team, person.team_id) if person.team_id else None
    return HubVisitor(
        email=person.email, name=person.name, language=person.language,
        team_id=person.team_id, team_name=team.name if team is not None else "",
        is_admin=person.role == "admin" and person.team_id is not None,
        session_hash=session_hash)
