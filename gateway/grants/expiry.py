"""Tell a team's authorised users that a grant is about to end.

Only grants longer than a day are announced (a one-hour grant ending is no news),
each exactly once: the notice's outbox rows and the grant's ``expiry_notified_at``
commit together, one grant per transaction (one whose notice fails is left for the next
run and named; the others go out).  Run every ``sweep_interval`` seconds as the job
"expiring-grants" of the table in :mod:`gateway.runtime.jobs`, so only the node holding
the scheduler lease does the work; the conditional update still lets only one node
announce a grant should a takeover overlap a run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from gateway.db import Database
from gateway.grants.mail import authorised_people, grant_context, overview_url, queue_grant_mail
from gateway.job_items import JobItems
from gateway.models import AccessGrant
from gateway.services import Services

__all__ = ["notify_expiring", "notify_expiring_job"]

_LONGER_THAN = timedelta(days=1)


def notify_expiring(db: Database, services: Services, now: datetime,
                    items: JobItems | None = None) -> list[int]:
    """Queue the notices now due; return their outbox ids (deliver after this returns).

    Each grant in its own transaction: one whose notice cannot be made is kept in
    ``items`` (and announced by a later run), the others are announced now."""
    items = items or JobItems("expiring-grants")
    window = timedelta(seconds=services.settings.grant_expiry_notice)
    with db.reading() as session:
        due = [grant_id for grant_id, granted_at, expires_at in session.execute(
            select(AccessGrant.id, AccessGrant.granted_at, AccessGrant.expires_at).where(
                AccessGrant.expiry_notified_at.is_(None), AccessGrant.revoked_at.is_(None),
                AccessGrant.expires_at.is_not(None), AccessGrant.expires_at > now,
                AccessGrant.expires_at <= now + window).order_by(AccessGrant.id))
            if expires_at - granted_at > _LONGER_THAN]
    outbox_ids: list[int] = []
    for grant_id in due:
        with items.item(f"grant {grant_id}"):
            outbox_ids.extend(_notify_one(db, services, grant_id, now))
    return outbox_ids


def _notify_one(db: Database, services: Services, grant_id: int, now: datetime) -> list[int]:
    """Claim the grant's notice and queue it to every authorised user, in one transaction."""
    with db.transaction() as session:
        claimed = session.execute(update(AccessGrant).where(
            AccessGrant.id == grant_id, AccessGrant.expiry_notified_at.is_(None),
            AccessGrant.revoked_at.is_(None)).values(expiry_notified_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return []  # announced by another run, or revoked meanwhile
        grant = session.get(AccessGrant, grant_id)
        assert grant is not None
        context = grant_context(session, grant)
        return [queue_grant_mail(
            session, services, "grant_expiring", to_address=person.email,
            to_name=person.name, language=person.language, context={
                **context, "overview_url": overview_url(services, grant.team_id, person.email)}).id
            for person in authorised_people(session, grant.team_id)]


def notify_expiring_job(database: Database, services: Services,
                        deliver: Callable[[list[int]], None], now: datetime) -> None:
    """The scheduled job: queue the notices due at ``now``, then hand them to delivery
    (a grant that failed is named after that: the run fails, the others were done)."""
    items = JobItems("expiring-grants")
    deliver(notify_expiring(database, services, now, items))
    items.check()
