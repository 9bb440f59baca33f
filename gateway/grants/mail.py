"""The mails of the grant process, rendered from templates and put in the outbox.

Kinds (``templates/<lang>/<kind>/``): ``grant_activation`` (to each authorised user
of the team), ``grant_granted`` (to the agent or every agent of the department, and a
copy to the person who granted), ``grant_revoked`` and ``grant_expiring``.  Mail to a
team's authorised users always carries their signed overview link.

``Auto-Submitted: auto-generated`` (RFC 3834 section 5): these mails are produced by
the gateway, not written by a person, and they are not answers to the recipient's
own message (``auto-replied`` would be wrong: the activation mail goes to a customer
who wrote nothing).  The header keeps out-of-office replies away from us; a person
still reads and clicks the mail as usual.  The grant kinds' rows in
``outbound/mail_kinds.py`` say so; :func:`outbound.mail.queue_mail` writes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.grants.tokens import make_overview_token
from gateway.models import AccessGrant, Agent, OutboxItem, Person, Team
from gateway.services import Services
from outbound.mail import Mail, MailKind, queue_mail

__all__ = [
    "agent_language",
    "agents_of",
    "authorised_people",
    "format_time",
    "grant_context",
    "overview_url",
    "queue_grant_mail",
    "subject_label",
    "who_context",
]

def format_time(moment: datetime | None) -> str | None:
    """A time as people read it in mail and pages (UTC, to the minute)."""
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def overview_url(services: Services, team_id: str, person: str) -> str:
    token = make_overview_token(services.secret, team_id, person)
    return f"{services.settings.public_url.rstrip('/')}/grants/overview/{token}"


def subject_label(session: Session, agent_email: str | None, department: str | None) -> str:
    """Who is (to be) allowed in: ``Kenji <kenji@…>`` or ``department "support"``."""
    if agent_email:
        agent = session.get(Agent, agent_email)
        name = agent.name if agent is not None and agent.name else ""
        return f"{name} <{agent_email}>" if name else agent_email
    return f'department "{department}"'


def queue_grant_mail(session: Session, services: Services, kind: str, *, to_address: str,
                     to_name: str, language: str, context: dict[str, Any]) -> OutboxItem:
    """Render ``kind`` in ``language`` and queue it from the support identity."""
    return queue_mail(session, services.renderer, Mail(
        MailKind(kind), to_address, {"recipient_name": to_name, **context}, to_name=to_name,
        language=language), secret=services.secret)


def who_context(session: Session, agent_email: str | None,
                department: str | None) -> dict[str, Any]:
    """``agent_label`` or ``department``: templates word the department in their language."""
    return {"agent_label": subject_label(session, agent_email, None) if agent_email else None,
            "department": None if agent_email else department}


def grant_context(session: Session, grant: AccessGrant) -> dict[str, Any]:
    team = session.get(Team, grant.team_id)
    return {
        "team_name": team.name if team is not None else grant.team_id,
        **who_context(session, grant.agent_email, grant.department),
        "reason": grant.reason,
        "export": grant.export,
        "until": format_time(grant.expires_at),
    }


def agents_of(session: Session, grant_agent: str | None, department: str | None) -> list[Agent]:
    """The agents a grant speaks to: the one agent, or every agent of the department."""
    if grant_agent:
        agent = session.get(Agent, grant_agent)
        return [agent] if agent is not None else []
    return [a for a in session.scalars(select(Agent).order_by(Agent.email))
            if department in (a.departments or [])]


def authorised_people(session: Session, team_id: str) -> list[Person]:
    return list(session.scalars(select(Person).where(
        Person.team_id == team_id, Person.can_grant_access.is_(True)).order_by(Person.email)))


def agent_language(agent: Agent) -> str:
    return str((agent.languages or ["en"])[0])
