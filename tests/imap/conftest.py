"""Fixtures for the shared-mailbox tests: a private Dovecot and gateways that poll it.

``dovecot`` is a real IMAP server started for the test (``tests/imap/dovecot.py``);
``imap_gateway`` starts an in-process ``serve`` (a ``gateway worker`` process in
scale-out mode) with the given ``[[mailboxes]]`` tables, and stops it at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import ImapFolderState, SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import DIRECTORY, Processes, wait_for
from tests.imap.dovecot import Dovecot

SHARED = "support@support.example"
SHARED_PASSWORD = "shared-secret"
OTHER = "sales@support.example"
OTHER_PASSWORD = "sales-secret"

# Fast settings for tests: short backoff, short lease, quick polls.
FAST: dict[str, Any] = {"poll_interval": 1.0, "backoff_min": 0.2, "backoff_max": 1.0,
                        "lease_ttl": 3.0, "timeout": 10.0}


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path / "dovecot")
    server.add_user(SHARED, SHARED_PASSWORD)
    server.add_user(OTHER, OTHER_PASSWORD)
    server.start()
    yield server
    server.remove()


def mailbox(dovecot: Dovecot, name: str = "shared", user: str = SHARED,
            **values: Any) -> dict[str, Any]:
    """One ``[[mailboxes]]`` table for ``user`` on the test Dovecot."""
    return {"name": name, "url": dovecot.url(user), **FAST, **values}


class ImapGateways:
    """Starts gateways (same database) with given mailboxes; stops them all at the end."""

    def __init__(self, settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
        self.settings_factory = settings_factory
        self.tmp_path = tmp_path
        self.servers: list[GatewayServer] = []
        self.processes: list[Processes] = []

    def settings(self, mailboxes: list[dict[str, Any]], **overrides: Any) -> Settings:
        return self.settings_factory(mailboxes=mailboxes, **overrides)

    def start(self, mailboxes: list[dict[str, Any]], **overrides: Any) -> GatewayServer:
        settings = self.settings(mailboxes, **overrides)
        gateway = Gateway(settings)
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        scale_out = bool(settings.broker_url)
        if scale_out and not self.processes:
            logs = self.tmp_path / f"procs{len(self.processes)}"
            logs.mkdir()
            procs = Processes(settings, logs)
            procs.start("worker", name="worker")
            self.processes.append(procs)
        server = GatewayServer(gateway, run_worker=not scale_out, run_web=False)
        server.start()
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
        for procs in self.processes:
            procs.stop_all()


@pytest.fixture
def imap_gateways(settings_factory: Callable[..., Settings],
                  tmp_path: Path) -> Iterator[ImapGateways]:
    gateways = ImapGateways(settings_factory, tmp_path)
    yield gateways
    gateways.stop_all()


# -- assertions helpers ---------------------------------------------------------------
def folder_state(gateway: Gateway, mailbox_name: str, folder: str) -> ImapFolderState | None:
    with gateway.db.reading() as session:
        return session.scalar(select(ImapFolderState).where(
            ImapFolderState.mailbox == mailbox_name, ImapFolderState.folder == folder))


def wait_polled(gateway: Gateway, mailbox_name: str, folder: str = "INBOX",
                timeout: float = 30) -> ImapFolderState:
    """Wait until the poller has looked at ``folder`` once (its checkpoint exists)."""
    return wait_for(lambda: (s := folder_state(gateway, mailbox_name, folder)) is not None
                    and s.last_poll_at is not None and s, timeout,
                    message=f"a first poll of {mailbox_name}/{folder}")


def spool_count(gateway: Gateway, *, state: SpoolState | None = None) -> int:
    with gateway.db.reading() as session:
        query = select(func.count()).select_from(SpoolEntry)
        if state is not None:
            query = query.where(SpoolEntry.state == state)
        return int(session.scalar(query) or 0)


def wait_all_processed(gateway: Gateway, count: int, timeout: float = 120) -> None:
    """Wait until ``count`` rows are spooled and none is still ``received``."""
    wait_for(lambda: spool_count(gateway) >= count
             and spool_count(gateway, state=SpoolState.RECEIVED) == 0,
             timeout, interval=0.2, message=f"{count} messages spooled and processed")
