"""SMTP intake's group commit on SQLite puts each batch on disk before anyone hears 250, and
does the slow part (the fsync) without holding the writer lane, so processing keeps writing.

SQLite-specific by nature (PostgreSQL has no lane and syncs in its own server): these tests
make their own SQLite database file whatever database the suite runs on.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.errors import StorageError
from gateway.models import SpoolEntry
from inbound.intake_priority import LanedDatabase
from inbound.spool import SpoolWriter
from tests.mail import make_mail


@pytest.fixture
def laned(tmp_path: Path) -> Iterator[LanedDatabase]:
    database = LanedDatabase(f"sqlite:///{tmp_path / 'gateway.db'}", first=True)
    database.upgrade()
    yield database
    database.dispose()


def _lane_is_free(database: LanedDatabase) -> bool:
    """Could another process take the writer lane right now?  (``flock`` conflicts
    between two open descriptions of the file, even in one process.)"""
    assert database.lane is not None
    probe = os.open(database.lane.path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(probe)  # drops the probe's lock, if it got one
    return True


def _watch_wal_fsyncs(monkeypatch: pytest.MonkeyPatch, database: LanedDatabase,
                      fail: bool = False) -> list[bool]:
    """Record, for each fsync of the WAL file, whether the lane was free meanwhile."""
    seen: list[bool] = []
    real_fsync: Callable[[int], None] = os.fsync

    def fsync(descriptor: int) -> None:
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith("gateway.db-wal"):
            seen.append(_lane_is_free(database))
            if fail:
                raise OSError(5, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _stored(database: LanedDatabase) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(SpoolEntry)) or 0)


def test_a_batch_is_fsynced_outside_the_lane_before_its_250(
        laned: LanedDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = _watch_wal_fsyncs(monkeypatch, laned)
    writer = SpoolWriter(laned)
    try:
        futures = [writer.submit(make_mail(subject=f"request {n}",
                                           message_id=f"<sync-{n}@acme.example>"),
                                 source="smtp", mail_from="anna@acme.example",
                                 rcpt_tos=["support@support.example"], peer="127.0.0.1")
                   for n in range(5)]
        stored = [future.result(timeout=30) for future in futures]
        # Every waiter was answered only after the WAL holding its row was fsynced ...
        assert syncs, "the WAL was never fsynced before the 250"
        # ... and no fsync of the WAL held the lane (processing could write meanwhile).
        assert all(syncs), f"the WAL was fsynced while holding the writer lane: {syncs}"
        assert len({entry.spool_id for entry in stored}) == 5
        assert _stored(laned) == 5
        # SQLite itself does not fsync inside the commit (that would hold the lane again).
        assert writer._sqlite._connection.execute("PRAGMA synchronous").fetchone()[0] == 1
    finally:
        writer.close()


def test_a_failed_fsync_answers_451_and_the_retry_is_stored_once(
        laned: LanedDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    mail = make_mail(subject="please help", message_id="<unsynced@acme.example>")
    envelope = {"source": "smtp", "mail_from": "anna@acme.example",
                "rcpt_tos": ["support@support.example"], "peer": "127.0.0.1"}
    _watch_wal_fsyncs(monkeypatch, laned, fail=True)
    writer = SpoolWriter(laned)
    try:
        with pytest.raises(StorageError):  # SMTP answers 451: the client keeps the mail
            writer.submit(mail, **envelope).result(timeout=30)
        monkeypatch.undo()  # the disk is back
        again = writer.submit(mail, **envelope).result(timeout=30)
        assert again.duplicate  # the row committed before the failed fsync is the one kept
        assert _stored(laned) == 1
    finally:
        writer.close()
