"""With the database unavailable during DATA the client hears 451 4.3.0, and its retry
after recovery is stored once.

The fault is real: for SQLite the database file, its WAL and its folder are made
immutable (``chattr +i``: even root cannot write them); for PostgreSQL the
database stops accepting connections.
"""

from __future__ import annotations

import smtplib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.db import Database, normalise_url
from gateway.directory import load_directory_file
from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import DIRECTORY, PG_URL
from tests.mail import make_mail, send


class Fault(Protocol):
    """A way to make the database unavailable and available again."""

    def break_(self) -> None: ...

    def repair(self) -> None: ...


class SqliteImmutable:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _targets(self) -> list[str]:
        # The -shm file stays writable: SQLite maps it into memory.
        files = [p for p in self.folder.iterdir() if not p.name.endswith("-shm")]
        return [str(p) for p in files] + [str(self.folder)]

    def break_(self) -> None:
        subprocess.run(["chattr", "+i", *self._targets()], check=True)

    def repair(self) -> None:
        subprocess.run(["chattr", "-i", *self._targets()], check=True)


class PostgresRefusing:
    def __init__(self, url: str) -> None:
        self.name = make_url(url).database
        self.admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")

    def break_(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
                )
            )

    def repair(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))


@pytest.fixture
def fragile(tmp_path: Path, settings_factory: Callable[..., Settings]
            ) -> Iterator[tuple[Settings, Fault]]:
    if PG_URL:
        settings = settings_factory()
        yield settings, PostgresRefusing(settings.database_url)
        return
    folder = tmp_path / f"db-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    fault = SqliteImmutable(folder)
    try:
        yield settings_factory(database_url=f"sqlite:///{folder / 'gateway.db'}"), fault
    finally:
        subprocess.run(["chattr", "-R", "-i", str(folder)], check=False)


def test_database_outage_answers_451_and_retry_is_stored_once(
    fragile: tuple[Settings, Fault],
) -> None:
    settings, fault = fragile
    database = Database(settings.database_url)
    database.upgrade()
    with database.transaction() as session:
        load_directory_file(session, DIRECTORY)
    database.dispose()
    server = GatewayServer(Gateway(settings), run_worker=False, run_web=False)
    server.start()
    raw = make_mail(subject="During the outage")
    try:
        fault.break_()
        try:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(settings.smtp_listen, raw)
        finally:
            fault.repair()
        assert refused.value.smtp_code == 451
        error = refused.value.smtp_error
        assert isinstance(error, bytes)
        answer = error.decode()
        assert answer.startswith("4.3.0")
        for leak in ("Error", "sqlite", "psycopg", "Traceback", "OperationalError"):
            assert leak not in answer
        # After recovery the MTA retries: stored, once.
        assert send(settings.smtp_listen, raw) == {}
        assert send(settings.smtp_listen, raw) == {}
        with server.gateway.db.reading() as session:
            assert session.scalar(select(func.count()).select_from(SpoolEntry)) == 1
    finally:
        server.stop()
