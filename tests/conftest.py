"""Shared fixtures: a real database (SQLite file or PostgreSQL), a real broker, real sockets.

The backend comes from the environment, so the same suite runs in both modes:

- default: SQLite file per test, in-process dramatiq worker (embedded mode);
- ``GATEWAY_TEST_DATABASE_URL=postgresql://…`` and ``GATEWAY_TEST_BROKER_URL=redis://…``:
  a fresh PostgreSQL database for the session, Redis as broker, and the end-to-end
  fixtures run a separate ``gateway worker`` process.

A configured service that is absent makes the tests fail, never skip.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gateway.config import Settings
from gateway.db import Database, normalise_url
from gateway.directory import load_directory_file
from gateway.models import OutboxItem, OutboxStatus, SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer

pytest_plugins = ["tests.browser"]  # the Chromium fixture, for every browser test

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIRECTORY = FIXTURES / "directory.toml"
TEST_SECRET = "test-secret-key-0123456789abcdef"

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BROKER_URL = os.environ.get("GATEWAY_TEST_BROKER_URL", "")

T = TypeVar("T")


# -- ports -----------------------------------------------------------------------
# A test server listens on a port that free_port() found free a moment before.  Ports the
# kernel hands out (bind to 0, and every outgoing connection) come from the ephemeral range,
# so under parallel tests (pytest-xdist workers, both CI modes at once) another process could
# take such a port in between.  Test ports therefore come from below that range, from a block
# of its own per pytest process: the block is claimed with a lock file that the kernel
# releases when the process ends, so two processes never hand out the same port.
PORT_BLOCK_SIZE = 400
PORT_BLOCKS = range(10_000, 30_000, PORT_BLOCK_SIZE)
_PORT_LOCKS = Path(tempfile.gettempdir()) / "gateway-test-ports"


class _PortBlock:
    """The ports of this process, handed out in turn, each one checked free before."""

    def __init__(self) -> None:
        self._lock: IO[bytes] | None = None
        self._ports: Iterator[int] | None = None
        self._claimed = False

    def _claim(self) -> Iterator[int] | None:
        _PORT_LOCKS.mkdir(exist_ok=True)
        for start in PORT_BLOCKS:
            handle = open(_PORT_LOCKS / f"{start}.lock", "ab")  # noqa: SIM115 - held till exit
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self._lock = handle
            return itertools.cycle(range(start, start + PORT_BLOCK_SIZE))
        return None  # every block is taken: fall back to the kernel's choice

    def next(self) -> int:
        if not self._claimed:
            self._ports, self._claimed = self._claim(), True
        if self._ports is not None:
            for _ in range(PORT_BLOCK_SIZE):
                port = next(self._ports)
                if _bindable(port):
                    return port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    """Free now, with no connection of an earlier test lingering on it (no SO_REUSEADDR)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_PORTS = _PortBlock()


def free_port() -> int:
    """A port on 127.0.0.1 that no other test of any concurrent run is given meanwhile."""
    return _PORTS.next()


def wait_for(predicate: Callable[[], T | Literal[False, 0, ""] | None], timeout: float = 30.0,
             interval: float = 0.05, message: str = "condition") -> T:
    """Poll until ``predicate()`` is truthy; fail the test with ``message`` on timeout.

    Returns the truthy value, typed without the falsy ``None``/``False``/``0``/``""``
    a predicate such as ``row is not None and row.x`` may give while waiting."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def settled(gateway: Gateway) -> bool:
    """Nothing left to process or to deliver: no spool row ``received``, no outbox row
    pending or being sent."""
    with gateway.db.reading() as session:
        spool_busy = session.scalar(select(SpoolEntry.id).where(
            SpoolEntry.state == SpoolState.RECEIVED).limit(1))
        outbox_busy = session.scalar(select(OutboxItem.id).where(
            OutboxItem.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])).limit(1))
    return spool_busy is None and outbox_busy is None


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the fixtures, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_") and not name.startswith("GATEWAY_TEST_"):
            monkeypatch.delenv(name)


# -- database ------------------------------------------------------------------
@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    admin_url = normalise_url(PG_URL)
    name = f"gw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "gateway.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


def _empty_postgres(url: str) -> None:
    """Leave every table empty and every id sequence at its start, as after ``upgrade``.

    Only the tables the last test wrote to (rows in them, or an id handed out) are
    truncated: a TRUNCATE of all of them took most of the time of a short test."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            tables = [r[0] for r in connection.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"))]
            written = {r[0] for r in connection.execute(text(" UNION ALL ".join(
                f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM \"{table}\")"
                for table in tables)))} if tables else set()
            written |= {r[0] for r in connection.execute(text(
                "SELECT owner.relname FROM pg_sequences AS used "
                "JOIN pg_class AS seq ON seq.relname = used.sequencename "
                "JOIN pg_namespace AS ns ON ns.oid = seq.relnamespace "
                "AND ns.nspname = used.schemaname "
                "JOIN pg_depend AS dep ON dep.objid = seq.oid AND dep.deptype IN ('a', 'i') "
                "JOIN pg_class AS owner ON owner.oid = dep.refobjid "
                "WHERE used.schemaname = 'public' AND used.last_value IS NOT NULL"))}
            if written:
                names = ", ".join(f'"{table}"' for table in sorted(written))
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    postgres = request.getfixturevalue("_postgres_database")
    if postgres:
        _empty_postgres(postgres)
        return str(postgres)
    target = tmp_path / "var" / "gateway.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(request.getfixturevalue("_sqlite_template"), target)
    return f"sqlite:///{target}"


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    namespace = f"gwtest-{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "broker_url": BROKER_URL,
            "broker_namespace": namespace,
            "smtp_listen": f"127.0.0.1:{free_port()}",
            "web_listen": f"127.0.0.1:{free_port()}",
            "outbound_url": f"maildir:{tmp_path / 'sent'}",
            "var_dir": tmp_path / "var",
            "secret_key": TEST_SECRET,
            "sweep_interval": 1.0,
            "stuck_after": 5.0,
            "delivery_min_backoff": 0.2,
            "delivery_max_backoff": 1.0,
            "worker_threads": 4,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A copy of ``templates/`` that a test may edit (an operator's change); a module's
    ``settings`` fixture points ``templates_dir`` at it."""
    copy = tmp_path / "templates"
    shutil.copytree(REPO / "templates", copy)
    return copy


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    """A gateway with the test directory loaded; no worker, no listeners."""
    gw = Gateway(settings)
    with gw.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    yield gw
    gw.close()


@pytest.fixture
def gw(gateway: Gateway) -> Gateway:
    """A gateway with the conversations directory (teams with admins and members, agents)
    loaded over the test directory: the cast of the conversation and sender-trust tests."""
    with gateway.db.transaction() as session:
        load_directory_file(session, FIXTURES / "conversations.toml")
    return gateway


# -- processes -------------------------------------------------------------------
def gateway_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a ``gateway`` subprocess with exactly the settings of a fixture."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"GATEWAY_{name.upper()}"] = (json.dumps(value) if isinstance(value, list | dict)
                                          else str(value))
    env.update(extra)
    return env


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


@dataclass(frozen=True)
class BrokenTemplate:
    """An operator's copy of our templates with one subject template that fails to render."""

    settings: Settings
    """The test's settings with ``templates_dir`` pointing at the copy."""
    path: Path
    good: str
    """The file's text before it was broken (to mend it again)."""

    def mend(self) -> None:
        self.path.write_text(self.good, encoding="utf-8")


def broken_template(settings: Settings, tmp_path: Path, language: str, kind: str
                    ) -> BrokenTemplate:
    """Settings whose templates are a copy of ours where ``language/kind``'s subject calls a
    method its value has not: rendering it raises, for that language only (a real fault an
    operator's edit causes, not a stub)."""
    templates = tmp_path / "templates"
    if not templates.exists():
        shutil.copytree(REPO / "templates", templates)
    subject = templates / language / kind / "subject.txt.j2"
    good = subject.read_text(encoding="utf-8")
    subject.write_text("{{ support_name.no_such_method() }}", encoding="utf-8")
    return BrokenTemplate(settings.model_copy(update={"templates_dir": templates}), subject,
                          good)


def run_gateway(settings: Settings, *args: str, input: bytes | None = None,
                cwd: Path | None = None, timeout: float = 120
                ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(gateway_command(*args), env=gateway_env(settings), input=input,
                          capture_output=True, cwd=cwd or REPO, timeout=timeout, check=False)


def wait_for_port(host: str, port: int, timeout: float = 30.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    def ready() -> bool:
        if process is not None and process.poll() is not None:
            pytest.fail(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(ready, timeout, message=f"{host}:{port} to accept connections")


class Processes:
    """Gateway subprocesses started by a test, killed at its end."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(gateway_command(*args), env=gateway_env(self.settings),
                                   stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        self.started.append(process)
        return process

    def serve(self) -> subprocess.Popen[bytes]:
        """``gateway serve``, plus a separate ``gateway worker`` when a broker is configured."""
        scale_out = bool(self.settings.broker_url)
        if scale_out:
            self.start("worker", name="worker")
        process = self.start("serve", *(["--no-worker"] if scale_out else []), name="serve")
        host, port = self.settings.smtp_listen.rsplit(":", 1)
        wait_for_port(host, int(port), process=process, timeout=60)
        return process

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(settings, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def worker_process(settings: Settings, processes: Processes) -> None:
    """Scale-out mode: commands like `ingest` only enqueue, so a `gateway worker` runs."""
    if settings.broker_url:
        processes.start("worker", name="worker")


@contextmanager
def serve_in_process(gateway: Gateway, settings: Settings, processes: Processes, *,
                     run_web: bool = False) -> Iterator[GatewayServer]:
    """An in-process ``serve`` (SMTP, and the web front end if asked, on real sockets); the
    worker runs in-process in embedded mode and as a separate ``gateway worker`` process in
    scale-out mode."""
    scale_out = bool(settings.broker_url)
    if scale_out:
        processes.start("worker", name="worker")
    server = GatewayServer(gateway, run_worker=not scale_out, run_web=run_web)
    server.start()
    if run_web:
        host, port = settings.web_listen.rsplit(":", 1)
        wait_for_port(host, int(port))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def running(gateway: Gateway, settings: Settings, processes: Processes) -> Iterator[GatewayServer]:
    """``serve`` in-process without the web front end (see ``serve_in_process``)."""
    with serve_in_process(gateway, settings, processes) as server:
        yield server
