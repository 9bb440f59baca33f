"""Database setup: SQLite commits that precede an SMTP 250 are durable (WAL, FULL sync)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gateway import db
from gateway.db import HEAD_REVISION, Database, alembic_config
from gateway.runtime.app import Gateway
from tests.conftest import PG_URL

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres() -> Iterator[Database]:
    """The pool of a PostgreSQL database, in both modes: these tests need a real server
    (this machine kind runs one; a missing one fails the test) but no schema."""
    database = Database(PG_URL or LOCAL_POSTGRES)
    try:
        yield database
    finally:
        database.dispose()


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
    assert head is not None and version == head == HEAD_REVISION


def test_a_database_one_revision_behind_is_still_upgraded(tmp_path: Path) -> None:
    """Upgrading skips Alembic only for a schema already at the newest revision."""
    from alembic import command

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        config = alembic_config(database.url)
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0022")
        database.upgrade()
        with database.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            columns = {row[1] for row in connection.execute(text("PRAGMA table_info(outbox)"))}
        assert version == HEAD_REVISION and "for_verified" in columns
    finally:
        database.dispose()


def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(
        postgres: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ping at every checkout (issue 18), but one that sat idle is pinged first: a
    connection the server dropped meanwhile (a restart, an idle timeout) never reaches a
    transaction."""
    with postgres.engine.connect() as other:  # a second connection ends the first
        with postgres.transaction() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    # The pool hands out the first connection back first (FIFO): the dead one.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough
    with postgres.transaction() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_a_connection_in_use_a_moment_ago_is_not_pinged(
        postgres: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load every checkout found a connection returned milliseconds before: no
    round trip for it (``pool_pre_ping`` made one each time)."""
    dialect = postgres.engine.dialect
    pings: list[Any] = []
    ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    for _ in range(3):
        with postgres.transaction() as session:
            session.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    with postgres.transaction() as session:
        session.execute(text("SELECT 1"))
    assert len(pings) == 1


def _sqlite(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'begin.sqlite3'}")


def test_sqlite_writers_take_the_write_lock_at_begin_and_readers_do_not(
        tmp_path: Path) -> None:
    database, other = _sqlite(tmp_path), sqlite3.connect(tmp_path / "begin.sqlite3",
                                                         timeout=0, isolation_level=None)
    try:
        for writing in (database.writing(), database.engine.begin()):
            with writing as connection:  # nothing run yet: BEGIN IMMEDIATE alone holds it
                assert connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
        with database.transaction() as session:
            session.connection()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with database.read_engine.begin() as connection:  # BEGIN DEFERRED: no lock
            assert connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        database.dispose()


def test_a_failed_sqlite_begin_is_sqlalchemys_operational_error(tmp_path: Path) -> None:
    # Given a pooled connection that will not wait, and another writer holding the lock
    database = _sqlite(tmp_path)
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(tmp_path / "begin.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        # Then the BEGIN fails as every other statement's failure does (callers retry on it)
        with pytest.raises(OperationalError, match="locked"), database.writing():
            pass
    finally:
        other.close()
        database.dispose()
