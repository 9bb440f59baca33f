"""Named leases in the database: one holder at a time for a singleton job.

An IMAP poller per mailbox and the scheduler must run on one node only, even when
several ``gateway serve`` processes share a PostgreSQL database.  A lease is a row
(``name`` → ``holder``, ``expires_at``); the holder renews it well before it expires,
and a holder that died simply lets it lapse, so another node takes over after
``ttl`` seconds.  Works the same on SQLite (one writer at a time anyway) and
PostgreSQL (the row lock of ``SELECT … FOR UPDATE`` and the primary key settle races).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.db import Database
from gateway.models import Lease, utcnow

__all__ = ["holder_name", "release", "try_acquire", "current_holder"]


def holder_name() -> str:
    """A name for this process that is unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(database: Database, name: str, holder: str, ttl: float,
                *, now: datetime | None = None) -> bool:
    """Take or renew the lease ``name`` for ``ttl`` seconds; False if someone else holds it."""
    moment = now or utcnow()
    expires = moment + timedelta(seconds=ttl)
    try:
        with database.transaction() as session:
            lease = session.execute(
                select(Lease).where(Lease.name == name).with_for_update()).scalar_one_or_none()
            if lease is None:
                session.add(Lease(name=name, holder=holder, acquired_at=moment,
                                  expires_at=expires))
                return True
            if lease.holder != holder and lease.expires_at > moment:
                return False
            if lease.holder != holder:
                lease.acquired_at = moment
            lease.holder = holder
            lease.expires_at = expires
            return True
    except IntegrityError:
        return False  # another node inserted the row first


def release(database: Database, name: str, holder: str) -> None:
    """Give the lease up at once (a clean shutdown), if this holder still has it."""
    with database.transaction() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def current_holder(database: Database, name: str, *, now: datetime | None = None) -> str | None:
    """Who holds ``name`` right now (None when free or lapsed), for status output."""
    moment = now or utcnow()
    with database.reading() as session:
        lease = session.get(Lease, name)
        if lease is None or lease.expires_at <= moment:
            return None
        return lease.holder
