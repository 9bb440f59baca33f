"""Fixtures of the bulk-mail tests: the bulk directory on top of the test directory, a
gateway serving the web pages too, and reading what reached the maildir."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import cast

import pytest

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import FIXTURES, Processes, free_port, serve_in_process, wait_for
from tests.mail import delivery_order

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


def _files(settings: Settings) -> list[Path]:
    root = sent_dir(settings)
    return sorted((p for sub in ("new", "cur") if (root / sub).is_dir()
                   for p in (root / sub).iterdir()), key=lambda p: delivery_order(p.name))


def _headers(path: Path) -> Message:
    with open(path, "rb") as handle:
        return BytesHeaderParser(policy=policy.default).parse(handle)


def delivered(settings: Settings, to: str | None = None) -> list[EmailMessage]:
    """Messages in the outbound maildir (only those to ``to``), parsed with the modern policy."""
    paths = [p for p in _files(settings) if to is None or _headers(p)["Delivered-To"] == to]
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in paths]


def recipients(settings: Settings, subject_part: str | None = None) -> Counter[str]:
    """How many delivered mails each address got (only subjects containing ``subject_part``)."""
    counts: Counter[str] = Counter()
    for path in _files(settings):
        headers = _headers(path)
        if subject_part is None or subject_part in str(headers["Subject"]):
            to = cast(AddressHeader, headers["To"])  # policy.default parses the header
            counts[to.addresses[0].addr_spec] += 1
    return counts


def wait_delivered(settings: Settings, total: int, timeout: float = 120) -> None:
    """Wait until the maildir holds ``total`` messages (counting files, parsing nothing)."""
    wait_for(lambda: len(_files(settings)) >= total, timeout=timeout, interval=0.2,
             message=f"{total} mails in the maildir")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(cast(EmailMessage, part).get_content())


@pytest.fixture
def serving(bulk: Gateway, settings: Settings, processes: Processes) -> Iterator[GatewayServer]:
    """``serve`` in-process with SMTP *and* web on real sockets (worker as in ``running``)."""
    with serve_in_process(bulk, settings, processes, run_web=True) as server:
        yield server
