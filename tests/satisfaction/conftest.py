"""Fixtures of the satisfaction tests: a gateway behind an MTA that authenticates senders,
serving SMTP and its web pages on real sockets, with links pointing at that web listener;
and the steps to a solved ticket whose requester got the "was this helpful?" link."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from gateway.config import Settings
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import Processes, serve_in_process
from tests.e2e.test_conversations import AUTHSERV, body_text, deliver, mail_to, open_ticket, passed
from tests.mail import make_mail

LINK_RE = re.compile(r"https?://\S+/satisfaction/[A-Za-z0-9_-]+")
KENJI = "kenji@support.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    base = settings_factory()
    return settings_factory(web_listen=base.web_listen, smtp_listen=base.smtp_listen,
                            public_url=f"http://{base.web_listen}",
                            sender_authentication="authres", authserv_id=AUTHSERV)


@pytest.fixture
def web(gateway: Gateway, settings: Settings, processes: Processes
        ) -> Iterator[GatewayServer]:
    """``serve`` in-process with SMTP and the web front end."""
    with serve_in_process(gateway, settings, processes, run_web=True) as server:
        yield server


@dataclass(frozen=True)
class Solved:
    number: int
    mail: EmailMessage
    link: str


def solve(settings: Settings, gateway: Gateway, requester: str = "max@acme.example",
          body: str = "#status solved\nFixed in 2.4.1, closing.",
          subject: str = "VPN drops every hour") -> Solved:
    """A customer's request, then an agent's ``#status solved`` answer, over SMTP; the mail
    the requester got about it and the link in it."""
    number, _ = open_ticket(settings, gateway, sender=requester, subject=subject)
    deliver(settings, gateway, make_mail(
        sender=KENJI, sender_name="Kenji", subject=f"Re: [#{number}] {subject}", body=body,
        headers=passed("support.example")), mail_from=KENJI)
    mails = [m for m in mail_to(settings, requester) if LINK_RE.search(body_text(m))]
    assert len(mails) == 1, [body_text(m) for m in mail_to(settings, requester)]
    found = LINK_RE.search(body_text(mails[0]))
    assert found is not None
    return Solved(number, mails[0], found.group(0))


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())
