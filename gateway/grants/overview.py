"""What the overviews show: activations of the last six months, and logins.

The same views feed ``gateway grants list/logins --json`` and the overview page, so
the command line and the page cannot disagree.  JSON fields may be added, never
renamed or removed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import AccessGrant, AccessLogin
from gateway.views import iso

__all__ = ["ACTIVATIONS_WINDOW", "activations", "grant_state", "grant_view", "login_view",
           "logins"]

ACTIVATIONS_WINDOW = timedelta(days=183)
"""Six months, as the overview promises (MISSION section 4)."""


def grant_state(grant: AccessGrant, now: datetime) -> str:
    if grant.revoked_at is not None and grant.revoked_at <= now:
        return "revoked"
    if grant.expires_at is not None and grant.expires_at <= now:
        return "expired"
    return "live"


def grant_view(grant: AccessGrant, now: datetime) -> dict[str, Any]:
    return {
        "id": grant.id,
        "team": grant.team_id,
        "agent": grant.agent_email,
        "department": grant.department,
        "export": grant.export,
        "reason": grant.reason,
        "duration": grant.duration,
        "requested_by": grant.requested_by,
        "granted_by": grant.granted_by,
        "granted_at": iso(grant.granted_at),
        "expires_at": iso(grant.expires_at),
        "revoked_at": iso(grant.revoked_at),
        "revoked_by": grant.revoked_by,
        "state": grant_state(grant, now),
    }


def login_view(login: AccessLogin) -> dict[str, Any]:
    return {"id": login.id, "team": login.team_id, "agent": login.agent_email,
            "at": iso(login.at), "reason": login.reason, "grant": login.grant_id}


def activations(session: Session, team_id: str, now: datetime) -> list[AccessGrant]:
    """Grants given in the last six months, newest first."""
    return list(session.scalars(select(AccessGrant).where(
        AccessGrant.team_id == team_id, AccessGrant.granted_at >= now - ACTIVATIONS_WINDOW)
        .order_by(AccessGrant.granted_at.desc(), AccessGrant.id.desc())))


def logins(session: Session, team_id: str, now: datetime) -> list[AccessLogin]:
    """Logins of the last six months with exact time and reason, newest first."""
    return list(session.scalars(select(AccessLogin).where(
        AccessLogin.team_id == team_id, AccessLogin.at >= now - ACTIVATIONS_WINDOW)
        .order_by(AccessLogin.at.desc(), AccessLogin.id.desc())))
