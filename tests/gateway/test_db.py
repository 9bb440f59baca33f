"""Database setup: SQLite commits that precede an SMTP 250 are durable (WAL, FULL sync)."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import text

from gateway.db import alembic_config
from gateway.runtime.app import Gateway
from tests.conftest import PG_URL


def test_sqlite_commits_before_a_250_are_fully_synchronous(gateway: Gateway) -> None:
    # The spool (and anything else that says "durable") commits with synchronous=FULL.
    with gateway.db.durable_engine.connect() as connection:
        if PG_URL:
            assert connection.execute(text("SHOW synchronous_commit")).scalar() == "on"
            return
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_upgrade_is_idempotent(gateway: Gateway) -> None:
    gateway.db.upgrade()
    gateway.db.upgrade()
    with gateway.db.engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = ScriptDirectory.from_config(alembic_config(gateway.db.url)).get_current_head()
    assert head is not None and version == head
