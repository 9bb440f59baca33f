"""Fixtures of the hub tests: a gateway behind an MTA that authenticates senders, serving
SMTP and the web on real sockets (links point at that web listener), the test directory,
and the steps to a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from inbound.spool import HUB_SOURCE
from tests.conftest import FIXTURES, Processes, serve_in_process, settled, wait_for
from tests.e2e.test_conversations import AUTHSERV, body_text, mail_to
from tests.hub.http import Browser

LINK_RE = re.compile(r"https?://\S+/hub/sign-in/[A-Za-z0-9_-]+")
ANNA = "anna@acme.example"  # admin of acme (de)
MAX = "max@acme.example"  # member of acme (de)
GIULIA = "giulia@globex.example"  # admin of globex (it)
YUKI = "yuki@globex.example"  # member of globex (ja)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
             ) -> Settings:
    """``@pytest.mark.parametrize("settings", [{…}], indirect=True)`` adds overrides."""
    base = settings_factory()
    return settings_factory(web_listen=base.web_listen, smtp_listen=base.smtp_listen,
                            public_url=f"http://{base.web_listen}",
                            sender_authentication="authres", authserv_id=AUTHSERV,
                            **getattr(request, "param", {}))


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    gw = Gateway(settings)
    with gw.db.transaction() as session:
        load_directory_file(session, FIXTURES / "directory.toml")
    yield gw
    gw.close()


@pytest.fixture
def web(gateway: Gateway, settings: Settings, processes: Processes
        ) -> Iterator[GatewayServer]:
    """``serve`` in-process with SMTP and the web front end."""
    with serve_in_process(gateway, settings, processes, run_web=True) as server:
        yield server


@pytest.fixture
def hub(settings: Settings) -> str:
    return f"{settings.public_url}/hub"


def sign_in_links(settings: Settings, address: str) -> list[str]:
    """Every sign-in link mailed to ``address`` so far, oldest first."""
    links = []
    for message in mail_to(settings, address):
        found = LINK_RE.search(body_text(message))
        if found is not None:
            links.append(found.group(0))
    return links


def ask_for_link(browser: Browser, hub: str, address: str) -> int:
    """Fill in the sign-in form; returns the answer's status."""
    form = browser.get(f"{hub}/sign-in")
    assert form.status == 200, form.body
    return browser.post(f"{hub}/sign-in", {"email": address, "csrf": form.csrf()}).status


def mailed_link(settings: Settings, address: str, count: int = 1) -> str:
    """The newest of ``count`` sign-in links mailed to ``address`` (waits for delivery)."""
    links: list[str] = wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        sign_in_links(settings, address)), message=f"sign-in link to {address}")
    return links[-1]


def signed_in(settings: Settings, hub: str, address: str) -> Browser:
    """A browser that asked for a link, opened it and pressed the button."""
    browser = Browser()
    before = len(sign_in_links(settings, address))
    assert ask_for_link(browser, hub, address) == 200
    link = mailed_link(settings, address, before + 1)
    confirm = browser.get(link)
    assert confirm.status == 200, confirm.body
    done = browser.post(link, {"csrf": confirm.csrf()})
    assert done.status == 303, done.body
    assert done.location == f"{hub}/tickets"
    return browser


def hub_rows_done(gateway: Gateway, count: int) -> list[SpoolEntry]:
    """Wait until ``count`` messages the hub spooled are processed and their mail is out."""
    def done() -> list[SpoolEntry] | None:
        with gateway.db.reading() as session:
            rows = list(session.scalars(select(SpoolEntry).where(
                SpoolEntry.source == HUB_SOURCE).order_by(SpoolEntry.id)))
        finished = [r for r in rows if r.state != SpoolState.RECEIVED]
        return finished if len(finished) >= count and settled(gateway) else None
    rows: list[SpoolEntry] = wait_for(done, message=f"{count} hub messages processed")
    return rows
