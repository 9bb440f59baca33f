"""Singleton leases: one holder at a time, renewable, taken over once lapsed."""

from __future__ import annotations

from datetime import timedelta

from gateway.leases import current_holder, holder_name, release, try_acquire
from gateway.models import utcnow
from gateway.runtime.app import Gateway


def test_one_holder_at_a_time_until_the_lease_lapses(gateway: Gateway) -> None:
    db, now = gateway.db, utcnow()
    first, second = holder_name(), holder_name()
    assert first != second
    assert try_acquire(db, "imap:shared", first, 30, now=now)
    assert not try_acquire(db, "imap:shared", second, 30, now=now + timedelta(seconds=10))
    assert try_acquire(db, "imap:shared", first, 30, now=now + timedelta(seconds=20))  # renew
    # Renewal moved the expiry: still held 40 s after the start.
    assert not try_acquire(db, "imap:shared", second, 30, now=now + timedelta(seconds=40))
    assert current_holder(db, "imap:shared", now=now + timedelta(seconds=40)) == first
    # The holder died: after the renewed expiry the other node takes over.
    assert try_acquire(db, "imap:shared", second, 30, now=now + timedelta(seconds=51))
    assert current_holder(db, "imap:shared", now=now + timedelta(seconds=52)) == second
    # Other names are independent.
    assert try_acquire(db, "scheduler", first, 30, now=now + timedelta(seconds=52))


def test_release_frees_the_lease_only_for_its_holder(gateway: Gateway) -> None:
    db = gateway.db
    assert try_acquire(db, "scheduler", "a", 60)
    release(db, "scheduler", "b")
    assert current_holder(db, "scheduler") == "a"
    release(db, "scheduler", "a")
    assert current_holder(db, "scheduler") is None
    assert try_acquire(db, "scheduler", "b", 60)
