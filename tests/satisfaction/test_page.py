"""The "was this helpful?" page over a real socket (DESIGN §13): a GET only shows the
question, a POST with the page's CSRF value records good or bad and a comment once, and
wrong, expired, used or forged requests are refused with a clear page, recording nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from gateway.config import Settings
from gateway.models import SatisfactionLink, SatisfactionRating, Ticket, utcnow
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.satisfaction import token_hash
from gateway.views import ticket_view
from tests.grants.http import Answer, request
from tests.satisfaction.conftest import solve
from tests.uploads import private_tempdir, small_form_is_bounded


def _satisfaction(gateway: Gateway, number: int) -> Any:
    """The ticket JSON's ``satisfaction``."""
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket_view(ticket, with_messages=False)["satisfaction"]


def _used_at(gateway: Gateway, link: str) -> Any:
    with gateway.db.reading() as session:
        row = session.get(SatisfactionLink, token_hash(link.rsplit("/", 1)[1]))
        assert row is not None
        return row.used_at


def _kind(answer: Answer) -> str:
    marker = 'id="message" data-kind="'
    assert marker in answer.body, answer.body
    return answer.body.split(marker, 1)[1].split('"', 1)[0]


def _secure(answer: Answer) -> None:
    """The grant pages' headers, and nothing the page would fetch from elsewhere."""
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in answer.body and "<link" not in answer.body
    assert " src=" not in answer.body and "url(" not in answer.body


def test_a_get_shows_the_question_and_records_nothing(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    # When a mail scanner opens the link three times
    for _ in range(3):
        page = request("GET", solved.link)
        assert page.status == 200, page.body
        _secure(page)
        # Then Max sees the question in German, about his ticket
        assert page.headers["content-language"] == "de"
        assert "Hat Ihnen das geholfen?" in page.body
        assert f"[#{solved.number}] VPN drops every hour" in page.body
        assert 'name="rating" value="good"' in page.body
        assert 'name="rating" value="bad"' in page.body
        assert 'name="comment"' in page.body and 'name="csrf"' in page.body
    # And nothing is recorded, nor the link used
    assert _satisfaction(gw, solved.number) is None
    assert _used_at(gw, solved.link) is None


def test_a_post_records_once_and_a_second_changes_nothing(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    csrf = request("GET", solved.link).csrf()
    # When Max answers good, with a comment that tries some HTML
    answer = request("POST", solved.link, {"csrf": csrf, "rating": "good",
                                           "comment": "  Quick <b>fix</b>, thanks!  "})
    assert answer.status == 200 and _kind(answer) == "recorded"
    assert "Vielen Dank" in answer.body
    _secure(answer)
    # Then the ticket shows it
    recorded = _satisfaction(gw, solved.number)
    assert recorded["rating"] == "good" and recorded["comment"] == "Quick <b>fix</b>, thanks!"
    assert recorded["at"].endswith("Z")
    # When the form is posted again, now saying bad
    again = request("POST", solved.link, {"csrf": csrf, "rating": "bad", "comment": "no"})
    # Then a clear page says it was recorded already, and nothing changed
    assert again.status == 410 and _kind(again) == "used"
    assert "bereits eine Antwort erfasst" in again.body
    _secure(again)
    assert _satisfaction(gw, solved.number) == recorded
    # And the link now only says so
    page = request("GET", solved.link)
    assert page.status == 410 and _kind(page) == "used" and 'name="rating"' not in page.body


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "other link"])
def test_a_post_without_the_pages_csrf_value_is_refused(
        web: GatewayServer, gw: Gateway, settings: Settings, csrf: str | None) -> None:
    solved = solve(settings, gw)
    if csrf == "other link":  # the CSRF value of another ticket's page fits no other link
        other = solve(settings, gw, requester="anna@acme.example", subject="Printer")
        csrf = request("GET", other.link).csrf()
    form = {"rating": "good"} | ({"csrf": csrf} if csrf is not None else {})
    answer = request("POST", solved.link, form)
    assert answer.status == 403 and _kind(answer) == "csrf"
    _secure(answer)
    assert _satisfaction(gw, solved.number) is None and _used_at(gw, solved.link) is None
    # The link still works with its own page's value
    page = request("GET", solved.link)
    assert request("POST", solved.link, {"csrf": page.csrf(), "rating": "bad"}).status == 200
    assert _satisfaction(gw, solved.number)["rating"] == "bad"


@pytest.mark.parametrize("rating", [None, "", "excellent", "GOOD"])
def test_a_post_without_a_valid_rating_records_nothing(
        web: GatewayServer, gw: Gateway, settings: Settings, rating: str | None) -> None:
    solved = solve(settings, gw)
    csrf = request("GET", solved.link).csrf()
    form = {"csrf": csrf, "comment": "hm"} | ({"rating": rating} if rating is not None else {})
    answer = request("POST", solved.link, form)
    assert answer.status == 400 and _kind(answer) == "badform"
    assert _satisfaction(gw, solved.number) is None and _used_at(gw, solved.link) is None


def test_a_wrong_token_is_unknown_and_records_nothing(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    base, token = solved.link.rsplit("/", 1)
    csrf = request("GET", solved.link).csrf()
    for wrong in (token[:-1], token + "x", token.upper(), "x"):
        for method, form in (("GET", None), ("POST", {"csrf": csrf, "rating": "good"})):
            answer = request(method, f"{base}/{wrong}", form,
                             headers={"Accept-Language": "ja,en;q=0.5"})
            assert answer.status == 404 and _kind(answer) == "unknown", (method, wrong)
            assert answer.headers["content-language"] == "ja"  # nobody known: the browser's
            _secure(answer)
    with gw.db.reading() as session:
        assert list(session.scalars(select(SatisfactionRating))) == []


def test_an_expired_link_records_nothing(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    solved = solve(settings, gw)
    csrf = request("GET", solved.link).csrf()
    with gw.db.transaction() as session:
        session.execute(update(SatisfactionLink).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    page = request("GET", solved.link)
    assert page.status == 410 and _kind(page) == "expired" and 'name="rating"' not in page.body
    answer = request("POST", solved.link, {"csrf": csrf, "rating": "good"})
    assert answer.status == 410 and _kind(answer) == "expired"
    assert "Link abgelaufen" in answer.body
    assert _satisfaction(gw, solved.number) is None and _used_at(gw, solved.link) is None


def test_the_page_is_in_the_requesters_language(
        web: GatewayServer, gw: Gateway, settings: Settings) -> None:
    # Yuki reads Japanese (directory), whatever her browser says
    solved = solve(settings, gw, requester="yuki@globex.example", subject="同期エラー")
    page = request("GET", solved.link, headers={"Accept-Language": "en"})
    assert page.status == 200 and page.headers["content-language"] == "ja"
    assert "今回の対応はお役に立ちましたか" in page.body and 'lang="ja"' in page.body
    done = request("POST", solved.link, {"csrf": page.csrf(), "rating": "bad"})
    assert done.status == 200 and "お役に立てず申し訳ございません" in done.body


def test_an_oversized_or_file_carrying_form_is_refused_unread(
        web: GatewayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        settings: Settings) -> None:
    # A declared 100 MB body answered unread (413), a chunked one cut off at 64 KB (413),
    # a file refused at once (400): nothing lands on disk, whatever the token
    private_tempdir(monkeypatch, tmp_path)
    small_form_is_bounded(f"{settings.public_url}/satisfaction/nonexistent")
