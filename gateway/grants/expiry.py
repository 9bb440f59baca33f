"""Tell a team's authorised users that a grant is about to end.

Only grants longer than a day are announced (a one-hour grant ending is no news),
each exactly once: the notice's outbox rows and the grant's ``expiry_notified_at``
commit together.  Run every ``sweep_interval`` seconds as the job "expiring-grants" of
the table in :mod:`gateway.runtime.jobs`, so only the node holding the scheduler lease
does the work; the conditional update still lets only one node announce a grant should
a takeover overlap a run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from gateway.db import Database
from gateway.grants.mail import authorised_people, grant_context, overview_url, queue_grant_mail
from gateway.models import AccessGrant
from gateway.services import Services

__all__ = ["notify_expiring", "notify_expiring_job"]

_LONGER_THAN = timedelta(days=1)


def notify_expiring(db: Database, services: Services, now: datetime) -> list[int]:
    """Queue the notices now due; return their outbox ids (deliver after this returns)."""
    window = timedelta(seconds=services.settings.grant_expiry_notice)
    outbox_ids: list[int] = []
    with db.transaction() as session:
        due = session.scalars(select(AccessGrant).where(
            AccessGrant.expiry_notified_at.is_(None), AccessGrant.revoked_at.is_(None),
            AccessGrant.expires_at.is_not(None), AccessGrant.expires_at > now,
            AccessGrant.expires_at <= now + window).order_by(AccessGrant.id)).all()
        for grant in due:
            assert grant.expires_at is not None
            if grant.expires_at - grant.granted_at <= _LONGER_THAN:
                continue
            claimed = session.execute(update(AccessGrant).where(
                AccessGrant.id == grant.id, AccessGrant.expiry_notified_at.is_(None))
                .values(expiry_notified_at=now))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            context = grant_context(session, grant)
            for person in authorised_people(session, grant.team_id):
                outbox_ids.append(queue_grant_mail(
                    session, services, "grant_expiring", to_address=person.email,
                    to_name=person.name, language=person.language, context={
                        **context,
                        "overview_url": overview_url(services, grant.team_id, person.email)}).id)
    return outbox_ids


def notify_expiring_job(database: Database, services: Services,
                        deliver: Callable[[list[int]], None], now: datetime) -> None:
    """The scheduled job: queue the notices due at ``now``, then hand them to delivery."""
    deliver(notify_expiring(database, services, now))
