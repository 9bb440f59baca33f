"""Engine, sessions and schema upgrades.

SQLite is the embedded default: WAL so readers never block the writer, and
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing
half-way.  Commits that precede an SMTP 250 (``transaction(durable=True)``) run
with ``synchronous=FULL`` and are on disk when they return; the others
(processing, delivery bookkeeping) use ``synchronous=NORMAL``, which survives a
crash of the process and loses at most the newest of them on power loss, when
the job simply runs again.  The next FULL commit syncs everything before it.
PostgreSQL (psycopg 3) is used for scale-out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["Database", "flush_if_pending", "normalise_url", "no_flush_unless_pending",
           "upgrade_schema"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest revision in ``migrations/versions`` (a test holds it to Alembic's head): a
#: database already there is not handed to Alembic, whose import and reading of every
#: migration script cost each short-lived command (an MTA's ``ingest``) ~0.3 s of CPU.
HEAD_REVISION = "0023"
SQLITE_BUSY_TIMEOUT_S = 60


def normalise_url(url: str) -> str:
    """Pick psycopg 3 for PostgreSQL URLs written without a driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine, begin: str, synchronous: str = "NORMAL") -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    # The dialect's own hook, set on this engine's dialect alone (each engine has one).
    engine.dialect.do_begin = _beginning_with(begin)  # type: ignore[method-assign,assignment]


def _beginning_with(begin: str) -> Callable[[PoolProxiedConnection], None]:
    """A ``do_begin`` that sends ``begin`` (``BEGIN IMMEDIATE``/``DEFERRED``) on the DB-API
    connection itself.

    Why not the ``"begin"`` event with ``exec_driver_sql`` (SQLAlchemy's recipe): that runs
    the whole statement machinery (execution context, cursor events) for one word, about
    a fifth of the CPU of the small write transactions every message has (the attempt
    counter, delivery's settlement), in the writer lane.  ``Connection`` calls
    ``do_begin`` inside its error handling, so a failure is still SQLAlchemy's
    ``OperationalError`` (busy, a read-only file) and a lost connection is invalidated."""
    def do_begin(dbapi_connection: PoolProxiedConnection) -> None:
        dbapi_connection.execute(begin)
    return do_begin


PING_AFTER_IDLE_S = 1.0
"""A pooled PostgreSQL connection idle at least this long is pinged before it is used."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle (``PING_AFTER_IDLE_S``).

    Why: ``pool_pre_ping`` pinged at every checkout, a round trip and about 0.1 ms of
    CPU for each of the five or so transactions of every message; under load a
    connection comes back within milliseconds and is alive.  One idle for longer (a
    quiet spell, a database restart meanwhile) is pinged as before; a dead one is
    replaced before anyone uses it (``DisconnectionError``: the pool reconnects).  A
    restart within the last second can still fail the one transaction that meets it, as
    it fails the transactions in flight: the job is retried, SMTP answers 451."""
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get("checked_in")
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_S:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 - any failure: a fresh connection
            raise DisconnectionError(f"stale pooled connection: {error}") from error


def _private_file(path: Path) -> None:
    """Create the SQLite file 0600 (in a directory created 0700) before SQLite opens it.

    SQLite gives its -wal and -shm files the mode of the database file, so they are
    private too: the database holds mail, tickets and hashed tokens."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.chmod(0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process created it first
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """One engine and its session factory for the life of a process."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # A ``file:…?uri=true`` database is SQLite's URI form (e.g. ``mode=ro``): its path
        # is not a file name.
        self.sqlite_file: Path | None = (
            Path(parsed.database) if self.is_sqlite and parsed.database
            and parsed.database != ":memory:" and "uri" not in parsed.query else None)
        """The SQLite database file on disk (None: PostgreSQL, memory or a URI)."""
        if self.is_sqlite:
            if self.sqlite_file is not None:
                _private_file(self.sqlite_file)
            arguments: dict[str, Any] = {
                "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
                "pool_size": 8, "max_overflow": 16}
            self.engine = create_engine(self.url, **arguments)
            _configure_sqlite(self.engine, "BEGIN IMMEDIATE")
            self.durable_engine = create_engine(self.url, **arguments)
            _configure_sqlite(self.durable_engine, "BEGIN IMMEDIATE", synchronous="FULL")
            # Readers take no lock up front: in WAL mode they never wait for the writer.
            self.read_engine = create_engine(self.url, **arguments)
            _configure_sqlite(self.read_engine, "BEGIN DEFERRED")
        else:
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20,
                                        pool_timeout=30)
            _ping_when_idle(self.engine)
            self.read_engine = self.durable_engine = self.engine
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.durable_sessions = sessionmaker(self.durable_engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception.

        ``durable``: the commit is fsynced before this returns (use before a 250)."""
        factory = self.durable_sessions if durable else self.sessions
        session = factory()
        try:
            with session.begin():
                yield session
        except OperationalError:
            if self.is_sqlite:
                # A connection opened while the file was unwritable stays read-only for
                # good: drop the pooled connections so the next try opens fresh ones.
                session.close()
                (self.durable_engine if durable else self.engine).dispose()
            raise
        finally:
            session.close()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on a bare connection, for a few Core statements: commit on
        success, roll back on any exception.

        Why: a Session and its transaction cost about as much CPU as the one or two
        statements of the small bookkeeping transactions (the attempt counter, an outbox
        row's claim and settlement), which run for every message."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError:
            if self.is_sqlite:  # as in transaction(): a read-only connection stays so
                self.engine.dispose()
            raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads; nothing is committed."""
        session = self.read_sessions()
        try:
            yield session
        finally:
            session.close()  # ends the transaction; loaded objects stay readable

    def upgrade(self) -> None:
        upgrade_schema(self)

    def dispose(self) -> None:
        for engine in {self.engine, self.read_engine, self.durable_engine}:
            engine.dispose()


@contextmanager
def no_flush_unless_pending(session: Session, *models: type[Any]) -> Iterator[None]:
    """Query without flushing first, unless a change of one of ``models`` waits in the
    session (which the query must see).

    Every query autoflushes, and each flush runs the whole unit of work; the pipeline's
    checks that read other tables would flush the rows ``record`` just added one query
    early, and the outbox row's flush right after would run the unit of work again.
    """
    if _pending(session, models):
        yield
        return
    with session.no_autoflush:
        yield


def _pending(session: Session, models: tuple[type[Any], ...]) -> bool:
    """Does a new, changed or deleted row of one of ``models`` wait in the session?"""
    return any(isinstance(row, models)
               for row in (*session.new, *session.dirty, *session.deleted))


def flush_if_pending(session: Session, *models: type[Any]) -> None:
    """Before a Core read (which never autoflushes): flush only when a change of one of
    ``models`` waits in the session, as an ORM query's autoflush would have shown it."""
    if _pending(session, models):
        session.flush()


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(database: Database) -> None:
    """Create or migrate the schema to the newest revision (idempotent)."""
    if _at_head(database):
        return
    from alembic import command

    config = alembic_config(database.url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database schema is at the newest revision")


def _at_head(database: Database) -> bool:
    """Whether the schema is at :data:`HEAD_REVISION` (False when there is none yet, or
    the question cannot be asked: Alembic then says why)."""
    try:
        with database.engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return False
    return [tuple(row) for row in versions] == [(HEAD_REVISION,)]
