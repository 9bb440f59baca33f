"""Bounce marks: which addresses our mail bounced from, and for how long we believe it.

A mark silences automatic answers (acknowledgements and the like) to an address, so it
must come only from a report about mail we really sent to that address: the report
names the Message-ID of one of our outbox rows, and the failed recipient is that row's
recipient (``guard-bounce``).  A stranger's report listing arbitrary addresses marks
nothing.  A mark lasts ``bounce_mark_days`` after the last bounce, and a verified
message from the address clears it at once (step ``bounce-clear``): a mailbox that
bounced last month may work today.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.models import BouncingAddress

__all__ = ["clear", "mark"]


def _aware(moment: datetime, like: datetime) -> datetime:
    """SQLite hands back naive datetimes for our UTC columns."""
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment


def mark(session: Session, address: str, *, hard: bool, reason: str, now: datetime,
         days: int) -> None:
    """Remember one bounce of ``address`` (caller's transaction); an expired mark starts
    over, so an old hard bounce does not harden a new soft one."""
    key = address.strip().lower()
    row = session.get(BouncingAddress, key)
    if row is None:
        row = BouncingAddress(address=key, bounces=0, hard=False, first_at=now)
        session.add(row)
    elif _aware(row.last_at, now) < now - timedelta(days=days):
        row.bounces, row.hard, row.first_at = 0, False, now
    row.bounces += 1
    row.hard = row.hard or hard
    row.last_at = now
    row.last_reason = reason[:2000]


def clear(session: Session, address: str) -> bool:
    """Forget the mark of ``address``; True if there was one."""
    row = session.get(BouncingAddress, address.strip().lower())
    if row is None:
        return False
    session.delete(row)
    return True
