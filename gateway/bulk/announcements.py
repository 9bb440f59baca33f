"""Announcements (maintenance, procedure changes) to an audience, in batches, resumable.

Creating an announcement fixes its audience in one transaction (one ``pending`` row per
person).  Sending takes ``bulk_batch_size`` pending rows at a time, and in ONE transaction
queues their outbox rows and marks them ``queued``; batches are ``bulk_batch_interval``
seconds apart (a recipient whose mail cannot be made, say a template of their language
an operator broke, is marked ``failed`` in a savepoint and the batch goes on).  A crash
between batches or inside one therefore leaves every person either
queued (with exactly one outbox row) or still pending: sending again continues with the
pending ones only.  One sender at a time per announcement holds the lease
``announcement:<id>``; the scheduler resumes an announcement whose sender died.
People who left the "announcements" list are skipped, at creation and again per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway import leases
from gateway.bulk.sending import Pacer, queue_bulk_mail
from gateway.bulk.unsubscribe import unsubscribed
from gateway.db import Database
from gateway.errors import GatewayError
from gateway.job_items import JobItems
from gateway.models import (
    Announcement,
    AnnouncementRecipient,
    OutboxItem,
    OutboxStatus,
    Person,
    Team,
    utcnow,
)
from gateway.services import Services

__all__ = ["AnnouncementError", "PostedAnnouncement", "create_announcement",
           "list_announcements", "resume_unfinished", "send_announcement",
           "visible_announcements"]

log = logging.getLogger(__name__)

Deliver = Callable[[list[int]], None]
"""Hands committed outbox rows to delivery (now, or to the workers): given by the caller."""

LIST_NAME = "announcements"


class AnnouncementError(GatewayError):
    """A bad audience or translation; nothing was created."""


def _live_premium(team: Team, day: date) -> bool:
    return any((a.starts is None or a.starts <= day) and (a.ends is None or day < a.ends)
               for a in team.addons)


def audience_people(session: Session, audience: str, day: date) -> list[Person]:
    """``all`` | ``premium`` (teams with a live add-on) | ``team:ID``."""
    query = select(Person).order_by(Person.email)
    if audience == "all":
        return list(session.scalars(query))
    if audience == "premium":
        teams = [t.id for t in session.scalars(select(Team)) if _live_premium(t, day)]
        return list(session.scalars(query.where(Person.team_id.in_(teams))))
    kind, _, team_id = audience.partition(":")
    if kind == "team" and team_id:
        if session.get(Team, team_id) is None:
            raise AnnouncementError(f"audience {audience!r}: there is no team {team_id!r}")
        return list(session.scalars(query.where(Person.team_id == team_id)))
    raise AnnouncementError(f"audience {audience!r}: expected all, premium or team:ID")


def create_announcement(session: Session, *, subject: str, body: str, audience: str,
                        translations: dict[str, dict[str, str]], today: date) -> Announcement:
    """Record the announcement and its audience (minus the unsubscribed) in one go."""
    if not subject.strip() or not body.strip():
        raise AnnouncementError("an announcement needs a subject and a body")
    people = audience_people(session, audience, today)
    left = unsubscribed(session, LIST_NAME)
    announcement = Announcement(subject=subject.strip(), body=body, audience=audience,
                                translations=translations, status="sending",
                                created_at=utcnow())
    session.add(announcement)
    session.flush()
    session.add_all(AnnouncementRecipient(
        announcement_id=announcement.id, email=p.email, language=p.language,
        status="skipped" if p.email in left else "pending") for p in people)
    return announcement


def _batch(session: Session, services: Services, announcement: Announcement, number: int,
           size: int, items: JobItems) -> tuple[list[int], int]:
    """Queue the next ``size`` pending recipients; returns (outbox ids, how many taken).
    A recipient whose mail cannot be made (a broken template of their language) is
    ``failed``, named in ``items`` and the log; the batch goes on without them."""
    rows = list(session.scalars(
        select(AnnouncementRecipient).where(
            AnnouncementRecipient.announcement_id == announcement.id,
            AnnouncementRecipient.status == "pending")
        .order_by(AnnouncementRecipient.id).limit(size).with_for_update(skip_locked=True)))
    if not rows:
        return [], 0
    left = unsubscribed(session, LIST_NAME)
    names = dict(session.execute(select(Person.email, Person.name).where(
        Person.email.in_([r.email for r in rows]))).tuples().all())
    queued: list[int] = []
    now = utcnow()
    for row in rows:
        if row.email in left:
            row.status = "skipped"
            continue
        text = announcement.translations.get(row.language) or {
            "subject": announcement.subject, "body": announcement.body}
        language = row.language if row.language in announcement.translations else "en"
        failures = len(items.failures)
        with items.item(f"{row.email} (announcement {announcement.id})"), \
                session.begin_nested():  # a failure rolls back this recipient alone
            item = queue_bulk_mail(
                session, services, kind="announcement", list_name=LIST_NAME,
                to_address=row.email, to_name=names.get(row.email, ""), language=language,
                context={"announcement_subject": text["subject"],
                         "announcement_body": text["body"]})
        if len(items.failures) > failures:
            row.status, row.batch = "failed", number  # named in the log; never retaken
            continue
        row.status, row.batch, row.outbox_id, row.queued_at = "queued", number, item.id, now
        queued.append(item.id)
    return queued, len(rows)


def send_announcement(database: Database, services: Services, deliver: Deliver,
                      announcement_id: int, *, inline: bool,
                      progress: Callable[[str], None] | None = None,
                      items: JobItems | None = None) -> bool:
    """Send what is still pending; False if another sender holds the announcement.

    ``inline``: this process delivers itself (a command in embedded mode, no worker), so
    it also delivers rows a sender that died had queued but not handed over."""
    items = items or JobItems("announcements")
    lease_name = f"announcement:{announcement_id}"
    holder = leases.holder_name()
    settings = services.settings
    ttl = max(settings.bulk_lease_ttl, 3 * settings.bulk_batch_interval)
    if not leases.try_acquire(database, lease_name, holder, ttl):
        return False
    try:
        pacer = Pacer(settings.bulk_batch_interval)
        with database.reading() as session:
            number = (session.scalar(select(func.max(AnnouncementRecipient.batch)).where(
                AnnouncementRecipient.announcement_id == announcement_id)) or 0)
        while True:
            pacer.wait()
            if not leases.try_acquire(database, lease_name, holder, ttl):
                log.warning("announcement %s: lost its lease; stopping", announcement_id)
                return False
            number += 1
            with database.transaction() as session:
                announcement = session.get(Announcement, announcement_id)
                if announcement is None:
                    raise AnnouncementError(f"there is no announcement {announcement_id}")
                queued, taken = _batch(session, services, announcement, number,
                                       settings.bulk_batch_size, items)
                if taken == 0:
                    announcement.status, announcement.finished_at = "done", utcnow()
            if taken == 0:
                break
            if inline:
                _deliver_leftovers(database, deliver, announcement_id, queued)
            deliver(queued)
            if progress is not None:
                counts = counts_of(database, announcement_id)
                progress(f"announcement {announcement_id}: batch {number}: {len(queued)} "
                         f"queued; {counts['queued']} of {counts['recipients']} queued")
        if inline:
            _deliver_leftovers(database, deliver, announcement_id, [])
        return True
    finally:
        leases.release(database, lease_name, holder)


def _deliver_leftovers(database: Database, deliver: Deliver, announcement_id: int,
                       exclude: list[int]) -> None:
    """Outbox rows queued by a sender that died before handing them over (inline mode:
    otherwise the workers and the sweep own pending rows)."""
    with database.reading() as session:
        ids = [i for i in session.scalars(select(OutboxItem.id).join(
            AnnouncementRecipient, AnnouncementRecipient.outbox_id == OutboxItem.id).where(
            AnnouncementRecipient.announcement_id == announcement_id,
            OutboxItem.status == OutboxStatus.PENDING)) if i not in exclude]
    deliver(ids)


def counts_of(database: Database, announcement_id: int) -> dict[str, int]:
    with database.reading() as session:
        return _counts(session, announcement_id)


def _counts(session: Session, announcement_id: int) -> dict[str, int]:
    by_status = dict(session.execute(select(
        AnnouncementRecipient.status, func.count()).where(
        AnnouncementRecipient.announcement_id == announcement_id)
        .group_by(AnnouncementRecipient.status)).tuples().all())
    delivered = dict(session.execute(select(OutboxItem.status, func.count()).join(
        AnnouncementRecipient, AnnouncementRecipient.outbox_id == OutboxItem.id).where(
        AnnouncementRecipient.announcement_id == announcement_id)
        .group_by(OutboxItem.status)).tuples().all())
    return {
        "recipients": sum(by_status.values()),
        "pending": by_status.get("pending", 0),
        "queued": by_status.get("queued", 0),
        "skipped": by_status.get("skipped", 0),
        "sent": delivered.get(OutboxStatus.SENT, 0),
        "failed": delivered.get(OutboxStatus.DEAD, 0) + by_status.get("failed", 0),
    }


def list_announcements(session: Session) -> list[dict[str, Any]]:
    """Past announcements, newest first, with their counts (``announcements list``)."""
    views = []
    for a in session.scalars(select(Announcement).order_by(Announcement.id.desc())):
        views.append({
            "id": a.id, "subject": a.subject, "audience": a.audience, "status": a.status,
            "languages": ["en", *sorted(a.translations)],
            "created_at": a.created_at.isoformat(),
            "finished_at": a.finished_at.isoformat() if a.finished_at else None,
            **_counts(session, a.id),
        })
    return views


@dataclass(frozen=True)
class PostedAnnouncement:
    """An announcement as the hub shows it to one person, in their language if translated."""

    id: int
    subject: str
    body: str
    language: str
    created_at: datetime


def visible_announcements(session: Session, person: Person, today: date,
                          limit: int = 20) -> list[PostedAnnouncement]:
    """The newest announcements meant for ``person``: those whose audience they were part
    of (mailed, or skipped because they unsubscribed from the mail: the hub still shows
    them), and those whose audience includes them now (``all``, their team, ``premium``
    while their team's add-on is live) though they joined later."""
    audiences = ["all"]
    team = session.get(Team, person.team_id) if person.team_id else None
    if team is not None:
        audiences.append(f"team:{team.id}")
        if _live_premium(team, today):
            audiences.append("premium")
    received = select(AnnouncementRecipient.announcement_id).where(
        AnnouncementRecipient.email == person.email)
    rows = session.scalars(select(Announcement).where(or_(
        Announcement.audience.in_(audiences), Announcement.id.in_(received)))
        .order_by(Announcement.created_at.desc(), Announcement.id.desc()).limit(limit))
    posted = []
    for a in rows:
        text = a.translations.get(person.language)
        language = person.language if text else "en"
        text = text or {"subject": a.subject, "body": a.body}
        posted.append(PostedAnnouncement(a.id, text["subject"], text["body"], language,
                                         a.created_at))
    return posted


def resume_unfinished(database: Database, services: Services, deliver: Deliver,
                      items: JobItems | None = None) -> None:
    """Continue announcements whose sender died (their lease lapsed)."""
    with database.reading() as session:
        ids = list(session.scalars(select(Announcement.id).where(
            Announcement.status == "sending").order_by(Announcement.id)))
    for announcement_id in ids:
        if leases.current_holder(database, f"announcement:{announcement_id}") is None:
            log.info("resuming announcement %s", announcement_id)
            send_announcement(database, services, deliver, announcement_id, inline=False,
                              items=items)
