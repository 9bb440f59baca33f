"""Request, activate, check, log in under and revoke support access grants.

Every function works in the caller's transaction and returns the outbox ids it
queued, so the caller enqueues delivery only after its commit (as the pipeline
does).  Refusals raise :class:`GrantError` with one sentence for the user.

Who may activate: only the person the activation link was mailed to, and only while
the directory still says that person belongs to the team and holds
``can_grant_access``; this is checked again at the moment of the POST.  A link is
spent by its first use, and one activation answers the whole request (the other
recipients' links are then spent too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gateway.errors import GatewayError
from gateway.grants.durations import DURATIONS, grant_end
from gateway.grants.mail import (
    agent_language,
    agents_of,
    authorised_people,
    format_time,
    grant_context,
    overview_url,
    queue_grant_mail,
    subject_label,
    who_context,
)
from gateway.grants.tokens import hash_token, new_token
from gateway.models import (
    AccessGrant,
    AccessLink,
    AccessLogin,
    AccessRequest,
    Agent,
    Person,
    Team,
)
from gateway.services import Services

__all__ = [
    "GrantError",
    "LinkLookup",
    "LinkRefused",
    "LinkStatus",
    "activate",
    "inspect_link",
    "live_grant",
    "record_login",
    "request_access",
    "revoke",
]


class GrantError(GatewayError):
    """A grant operation was refused; the message says why in one sentence."""


class LinkStatus(enum.StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class LinkLookup:
    status: LinkStatus
    link: AccessLink | None = None
    request: AccessRequest | None = None
    person: Person | None = None


def request_access(session: Session, services: Services, team_id: str, *,
                   agent_email: str | None = None, department: str | None = None,
                   reason: str, export: bool = False, requested_by: str = "",
                   via: str = "cli") -> list[int]:
    """Mail an activation link to every authorised user of the team; return outbox ids."""
    team = session.get(Team, team_id)
    if team is None:
        raise GrantError(f"there is no team {team_id!r} in the directory")
    if bool(agent_email) == bool(department):
        raise GrantError("name either one agent or one department, not both or neither")
    reason = reason.strip()
    if not reason:
        raise GrantError("a reason is required: the customer sees it in the activation mail")
    if agent_email:
        agent_email = agent_email.strip().lower()
        if session.get(Agent, agent_email) is None:
            raise GrantError(f"{agent_email} is not a support agent in the directory")
    elif not agents_of(session, None, department):
        raise GrantError(f"no agent of the directory belongs to department {department!r}")
    people = authorised_people(session, team_id)
    if not people:
        raise GrantError(f"nobody in team {team_id!r} may grant access (can_grant_access)")
    now = services.now()
    request = AccessRequest(team_id=team_id, agent_email=agent_email or None,
                            department=department or None, reason=reason, export=export,
                            requested_by=(requested_by or agent_email or "").lower(), via=via,
                            created_at=now)
    session.add(request)
    session.flush()
    asker = subject_label(session, request.requested_by, None) if request.requested_by else ""
    base = services.settings.public_url.rstrip("/")
    expires = now + timedelta(seconds=services.settings.grant_link_ttl)
    outbox_ids: list[int] = []
    for person in people:
        token, digest = new_token()
        session.add(AccessLink(request_id=request.id, recipient=person.email, token_hash=digest,
                               created_at=now, expires_at=expires))
        item = queue_grant_mail(session, services, "grant_activation", to_address=person.email,
                                to_name=person.name, language=person.language, context={
                                    "team_name": team.name,
                                    **who_context(session, agent_email, department),
                                    "asked_by": asker, "reason": reason, "export": export,
                                    "activate_url": f"{base}/grants/activate/{token}",
                                    "link_expires": format_time(expires),
                                    "overview_url": overview_url(services, team_id, person.email),
                                })
        outbox_ids.append(item.id)
    return outbox_ids


def _may_grant(session: Session, email: str, team_id: str) -> Person | None:
    person = session.get(Person, email, populate_existing=True)
    if person is None or person.team_id != team_id or not person.can_grant_access:
        return None
    return person


def inspect_link(session: Session, token: str, now: datetime) -> LinkLookup:
    """What an activation link is worth right now; reads only (a GET must change nothing)."""
    link = session.scalars(select(AccessLink).where(
        AccessLink.token_hash == hash_token(token))).one_or_none()
    if link is None:
        return LinkLookup(LinkStatus.UNKNOWN)
    request = session.get(AccessRequest, link.request_id)
    assert request is not None
    if link.used_at is not None or request.answered_at is not None:
        return LinkLookup(LinkStatus.USED, link, request)
    if link.expires_at <= now:
        return LinkLookup(LinkStatus.EXPIRED, link, request)
    person = _may_grant(session, link.recipient, request.team_id)
    if person is None:
        return LinkLookup(LinkStatus.FORBIDDEN, link, request)
    return LinkLookup(LinkStatus.OK, link, request, person)


class LinkRefused(GrantError):
    def __init__(self, status: LinkStatus) -> None:
        super().__init__(f"the activation link cannot be used: {status.value}")
        self.status = status


def activate(session: Session, services: Services, token: str, *, duration: str,
             export: bool, now: datetime) -> tuple[AccessGrant, list[int]]:
    """Turn a valid link into a grant that starts now; raise :class:`LinkRefused` if not."""
    if duration not in DURATIONS:
        raise GrantError(f"unknown duration {duration!r}")
    found = inspect_link(session, token, now)
    if found.status is not LinkStatus.OK:
        raise LinkRefused(found.status)
    assert found.link is not None and found.request is not None and found.person is not None
    link, request, person = found.link, found.request, found.person
    # Spend the link and answer the request with conditional updates: of two concurrent
    # POSTs (or two recipients) exactly one sees a row change.
    spent = session.execute(update(AccessLink).where(
        AccessLink.id == link.id, AccessLink.used_at.is_(None)).values(used_at=now))
    answered = session.execute(update(AccessRequest).where(
        AccessRequest.id == request.id, AccessRequest.answered_at.is_(None))
        .values(answered_at=now))
    if spent.rowcount != 1 or answered.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkRefused(LinkStatus.USED)
    grant = AccessGrant(
        team_id=request.team_id, agent_email=request.agent_email, department=request.department,
        export=export, reason=request.reason, duration=duration, request_id=request.id,
        requested_by=request.requested_by, granted_by=person.email, granted_at=now,
        expires_at=grant_end(duration, now, services.settings.grant_timezone))
    session.add(grant)
    session.flush()
    context = {**grant_context(session, grant), "granted_by": person.name or person.email}
    outbox_ids = []
    for agent in agents_of(session, grant.agent_email, grant.department):
        item = queue_grant_mail(session, services, "grant_granted", to_address=agent.email,
                                to_name=agent.name, language=agent_language(agent),
                                context={**context, "overview_url": None})
        outbox_ids.append(item.id)
    item = queue_grant_mail(session, services, "grant_granted", to_address=person.email,
                            to_name=person.name, language=person.language, context={
                                **context,
                                "overview_url": overview_url(services, grant.team_id,
                                                             person.email)})
    outbox_ids.append(item.id)
    return grant, outbox_ids


def _covers(agent_email: str, departments: list[str]) -> object:
    clauses = [AccessGrant.agent_email == agent_email]
    if departments:
        clauses.append(AccessGrant.department.in_(departments))
    return or_(*clauses)


def live_grant(session: Session, team_id: str, agent_email: str, *, export: bool = False,
               at: datetime) -> AccessGrant | None:
    """The grant that lets ``agent_email`` into ``team_id`` at ``at``, if any.

    A department grant covers every agent the directory puts in that department now.
    """
    agent_email = agent_email.strip().lower()
    agent = session.get(Agent, agent_email)
    departments = [str(d) for d in (agent.departments or [])] if agent is not None else []
    query = select(AccessGrant).where(
        AccessGrant.team_id == team_id,
        _covers(agent_email, departments),  # type: ignore[arg-type]
        AccessGrant.granted_at <= at,
        or_(AccessGrant.expires_at.is_(None), AccessGrant.expires_at > at),
        or_(AccessGrant.revoked_at.is_(None), AccessGrant.revoked_at > at),
    ).order_by(AccessGrant.granted_at.desc())
    if export:
        query = query.where(AccessGrant.export.is_(True))
    return session.scalars(query).first()


def record_login(session: Session, team_id: str, agent_email: str, reason: str,
                 at: datetime) -> AccessLogin:
    """Record a login with its exact time and reason; refused without a live grant."""
    reason = reason.strip()
    if not reason:
        raise GrantError("a reason is required for every login")
    grant = live_grant(session, team_id, agent_email, at=at)
    if grant is None:
        raise GrantError(f"{agent_email} has no live access grant for team {team_id!r}; "
                         "login refused")
    login = AccessLogin(team_id=team_id, agent_email=agent_email.strip().lower(), reason=reason,
                        at=at, grant_id=grant.id)
    session.add(login)
    session.flush()
    return login


def revoke(session: Session, services: Services, grant_id: int, *, team_id: str, by: str,
           now: datetime) -> list[int]:
    """End a live grant of ``team_id`` at once; tell the agents and the authorised users."""
    grant = session.get(AccessGrant, grant_id, with_for_update=True)
    if grant is None or grant.team_id != team_id:
        raise GrantError(f"team {team_id!r} has no grant {grant_id}")
    if grant.revoked_at is not None or (grant.expires_at is not None and grant.expires_at <= now):
        raise GrantError(f"grant {grant_id} has already ended")
    grant.revoked_at, grant.revoked_by = now, by
    revoker = session.get(Person, by)
    context = {**grant_context(session, grant),
               "revoked_by": (revoker.name if revoker is not None and revoker.name else by)}
    outbox_ids = []
    for agent in agents_of(session, grant.agent_email, grant.department):
        outbox_ids.append(queue_grant_mail(
            session, services, "grant_revoked", to_address=agent.email, to_name=agent.name,
            language=agent_language(agent), context={**context, "overview_url": None}).id)
    for person in authorised_people(session, team_id):
        outbox_ids.append(queue_grant_mail(
            session, services, "grant_revoked", to_address=person.email, to_name=person.name,
            language=person.language, context={
                **context, "overview_url": overview_url(services, team_id, person.email)}).id)
    return outbox_ids
