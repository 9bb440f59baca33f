"""The mail that tells a requester their ticket is solved carries the "was this helpful?"
link (DESIGN §13): over real SMTP for an agent's ``#status solved`` answer and for a bare
``#status solved``; the link's secret is never readable in the database; other statuses
and internal notes ask nothing; and the two mail kinds say it in all five languages."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway.config import Settings
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.render import LANGUAGES, Renderer
from tests.conftest import run_gateway, wait_for
from tests.e2e.test_conversations import (
    body_text,
    deliver,
    mail_to,
    open_ticket,
    outbox_kinds,
    passed,
)
from tests.grants.http import request
from tests.mail import make_mail
from tests.satisfaction.conftest import KENJI, LINK_RE, html_of, solve
from tests.secrets_scan import files_holding, rows_holding

QUESTION = {
    "en": "Did this solve your problem?",
    "de": "Hat Ihnen das geholfen?",
    "it": "Le è stato utile?",
    "nl": "Heeft dit u geholpen?",
    "ja": "今回の対応はお役に立ちましたでしょうか。",
}
URL = "https://support.example.com/satisfaction/" + "Ab3-_x" * 7


def test_an_agents_solving_answer_over_smtp_carries_the_link(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    mail = solved.mail
    # The agent's words are relayed, with the question below them, in Max's German
    assert mail["Auto-Submitted"] is None and mail["Content-Language"] == "de"
    text = body_text(mail)
    assert "Fixed in 2.4.1, closing." in text and QUESTION["de"] in text
    assert solved.link.startswith(f"{settings.public_url}/satisfaction/")
    assert f'href="{solved.link}"' in html_of(mail)
    assert outbox_kinds(gw, "max@acme.example") == ["acknowledgement", "agent_reply"]
    # The link opens the question; the ticket JSON says nothing was rated yet
    assert request("GET", solved.link).status == 200
    shown = run_gateway(settings, "tickets", "show", str(solved.number), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["satisfaction"] is None


def test_a_bare_status_solved_notice_carries_the_link_and_the_answer_shows_in_json(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw, requester="giulia@globex.example", body="#status solved")
    assert solved.mail["Auto-Submitted"] == "auto-generated"
    assert QUESTION["it"] in body_text(solved.mail)
    page = request("GET", solved.link)
    assert request("POST", solved.link, {"csrf": page.csrf(), "rating": "good",
                                         "comment": "Grazie!"}).status == 200
    listed = run_gateway(settings, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (view,) = [t for t in json.loads(listed.stdout) if t["number"] == solved.number]
    assert view["satisfaction"]["rating"] == "good"
    assert view["satisfaction"]["comment"] == "Grazie!"


def test_the_links_secret_is_not_readable_in_the_database(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    token = solved.link.rsplit("/", 1)[1]
    assert rows_holding(gw, token) == [] and files_holding(gw, token) == []


@pytest.mark.parametrize("body", ["#status pending\nWhich client version do you use?",
                                  "#status closed\nClosing as agreed.",
                                  "Please install 2.4.1.", "#note\n#status solved\nAsk Lena."])
def test_mail_that_does_not_solve_the_ticket_carries_no_link(
        web: GatewayServer, gw: Gateway, settings: Settings, body: str) -> None:
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, make_mail(
        sender=KENJI, subject=f"Re: [#{number}] VPN drops every hour", body=body,
        headers=passed("support.example")), mail_from=KENJI)
    wait_for(lambda: mail_to(settings, "max@acme.example"), message="the acknowledgement")
    assert not any(LINK_RE.search(body_text(m)) for m in mail_to(settings, "max@acme.example"))


# -- the templates, every language -----------------------------------------------------

def _render(kind: str, language: str, caplog: pytest.LogCaptureFixture, **extra: Any
            ) -> tuple[str, str]:
    context: dict[str, Any] = {
        "support_name": "Example Support", "ticket_number": 42, "ticket_subject": "Sync",
        "requester_name": "Max", "status": "solved", "reopen_days": 7, **extra}
    if kind == "agent_reply":
        context |= {"agent_name": "Kenji", "text": "Fixed in 2.4.1."}
    with caplog.at_level(logging.WARNING):
        mail = Renderer().render(kind, language, context)
    assert not caplog.records  # no fallback to English
    return mail.text, mail.html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["agent_reply", "status_notice"])
def test_the_solved_mail_asks_in_every_language(
        kind: str, language: str, caplog: pytest.LogCaptureFixture) -> None:
    text, html = _render(kind, language, caplog, satisfaction_url=URL)
    assert QUESTION[language] in text and URL in text
    assert text.index(QUESTION[language]) < text.index(URL)
    assert html.count(f'href="{URL}"') == 2 and 'id="satisfaction"' in html
    # Without a link (any other status, or rated already) nothing is asked
    for extra in ({}, {"satisfaction_url": None}):
        text, html = _render(kind, language, caplog, **extra)
        assert QUESTION[language] not in text and "/satisfaction/" not in html
