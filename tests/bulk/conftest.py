"""Fixtures of the bulk-mail tests: the bulk directory on top of the test directory, a
gateway serving the web pages too, and reading what reached the maildir."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.server import GatewayServer
from tests.conftest import FIXTURES, Processes, free_port, wait_for, wait_for_port
from tests.mail import maildir_messages

BULK_DIRECTORY = FIXTURES / "bulk_directory.toml"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Links in mail point at this test's own web listener."""
    web = f"127.0.0.1:{free_port()}"
    return settings_factory(web_listen=web, public_url=f"http://{web}")


@pytest.fixture
def bulk(gateway: Gateway) -> Gateway:
    """The gateway with the bulk directory (more teams, features, usage, articles) loaded."""
    with gateway.db.transaction() as session:
        load_directory_file(session, BULK_DIRECTORY)
    return gateway


def sent_dir(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def delivered(settings: Settings) -> list[EmailMessage]:
    """Every message in the outbound maildir, parsed with the modern policy."""
    return [cast(EmailMessage, message_from_bytes(m.as_bytes(), policy=policy.default))
            for m in maildir_messages(sent_dir(settings))]


def recipients(settings: Settings, kind_subject: str | None = None) -> Counter[str]:
    """How many delivered mails each address got (optionally only subjects containing ...)."""
    counts: Counter[str] = Counter()
    for message in delivered(settings):
        if kind_subject is None or kind_subject in str(message["Subject"]):
            counts[message["To"].addresses[0].addr_spec] += 1
    return counts


def wait_delivered(settings: Settings, total: int, timeout: float = 120) -> list[EmailMessage]:
    wait_for(lambda: len(maildir_messages(sent_dir(settings))) >= total, timeout=timeout,
             interval=0.2, message=f"{total} mails in the maildir")
    return delivered(settings)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(cast(EmailMessage, part).get_content())


@pytest.fixture
def serving(bulk: Gateway, settings: Settings, processes: Processes) -> Iterator[GatewayServer]:
    """``serve`` in-process with SMTP *and* web on real sockets (worker as in ``running``)."""
    scale_out = bool(settings.broker_url)
    if scale_out:
        processes.start("worker", name="worker")
    server = GatewayServer(bulk, run_worker=not scale_out, run_web=True)
    server.start()
    host, port = settings.web_listen.rsplit(":", 1)
    wait_for_port(host, int(port))
    yield server
    server.stop()
