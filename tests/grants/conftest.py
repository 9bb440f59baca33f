"""Fixtures of the grant tests: the test directory plus grant people, a serving gateway
with its web front end on a real socket, and helpers to read the maildir."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.runtime.app import Gateway
from tests.conftest import FIXTURES, Processes, serve_in_process, wait_for
from tests.mail import maildir_messages

GRANTS_DIRECTORY = FIXTURES / "grants_directory.toml"
API_KEY = "test-grants-api-key-0123456789"
LINK_RE = re.compile(r"https?://\S+/grants/activate/[A-Za-z0-9_-]+")
OVERVIEW_RE = re.compile(r"https?://\S+/grants/overview/[A-Za-z0-9_.-]+")


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Grant tests need public_url to point at the web listener and an API key."""
    base = settings_factory()
    return settings_factory(web_listen=base.web_listen, smtp_listen=base.smtp_listen,
                            public_url=f"http://{base.web_listen}", grant_api_key=API_KEY)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    gw = Gateway(settings)
    with gw.db.transaction() as session:
        load_directory_file(session, FIXTURES / "directory.toml")
        load_directory_file(session, GRANTS_DIRECTORY)
    yield gw
    gw.close()


@pytest.fixture
def web(gateway: Gateway, settings: Settings, processes: Processes) -> Iterator[str]:
    """``serve`` in-process with the web front end; yields its base URL."""
    with serve_in_process(gateway, settings, processes, run_web=True):
        yield f"http://{settings.web_listen}"


def sent_mail(settings: Settings) -> list[EmailMessage]:
    path = Path(settings.outbound_url.split(":", 1)[1])
    return [message_from_bytes(m.as_bytes(), policy=policy.default)
            for m in maildir_messages(path)]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def wait_for_mail(settings: Settings, count: int, **match: str) -> list[EmailMessage]:
    """Wait until ``count`` delivered messages match the given headers (To=…, Subject=…)."""
    def found() -> list[EmailMessage] | None:
        hits = [m for m in sent_mail(settings)
                if all(value.lower() in str(m[name]).lower() for name, value in match.items())]
        return hits if len(hits) >= count else None
    result: Any = wait_for(found, timeout=60, message=f"{count} mails matching {match}")
    return list(result)


def activation_link(message: EmailMessage) -> str:
    found = LINK_RE.search(text_of(message))
    assert found, text_of(message)
    return found.group(0)


def overview_link(message: EmailMessage) -> str:
    found = OVERVIEW_RE.search(text_of(message))
    assert found, text_of(message)
    return found.group(0)
