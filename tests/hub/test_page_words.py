"""The words of the hub's pages: every language has every key English has, in its own
words (no silent English), and every page renders in it, escaped and self-contained."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from markupsafe import escape

from gateway.hub.visitor import HubVisitor
from gateway.web.hub.pages import HubPages
from outbound.render import LANGUAGES, default_templates_dir

#: Words that are rightly the same as in English.
SAME_AS_ENGLISH = {"de": {"status_label"}, "nl": {"product_label", "text_label"}}
VISITOR = HubVisitor(email="anna@acme.example", name="<b>Anna</b>", language="en",
                     team_id="acme", team_name="Acme & Co", is_admin=True,
                     session_hash="ab" * 32)
LAYOUT: dict[str, Any] = {
    "visitor": VISITOR, "notice": "reply_received", "hub_url": "http://h/hub",
    "sign_out_url": "http://h/hub/sign-out", "csrf": "cd" * 32,
    "nav": [{"key": "tickets", "url": "http://h/hub/tickets", "label": "x", "current": True}]}
TICKET = {"number": 7, "subject": "<script>x</script>", "status": "solved",
          "requester": "max@acme.example", "own": False, "updated": "2026-12-05 10:00 UTC",
          "messages": [{"from": "Max", "role": "requester", "at": "2026-12-05 09:00",
                        "text": "<i onclick=x>hi</i>", "files": ["log.txt"]}],
          "replyable": True, "reopens": True, "reply_url": "http://h/hub/tickets/7/reply",
          "new_url": "http://h/hub/new", "text_limit": 100000, "attachment_limit_mb": 10}
PAGES: dict[str, dict[str, Any]] = {
    "tickets": {"team_scope": True, "statuses": ("new", "open", "pending", "solved",
                                                 "closed"),
                "wanted": {"status": "open", "since": "2026-01-01", "until": ""},
                "cutoff": "2024-12-11", "tickets": [{
                    "number": 7, "subject": "<script>x</script>", "status": "pending",
                    "updated": "2026-12-05 10:00 UTC", "requester": "max@acme.example",
                    "url": "http://h/hub/tickets/7"}],
                "list_url": "http://h/hub/tickets", "previous_url": "http://h/p",
                "next_url": "http://h/n", "page": 2},
    "ticket": TICKET,
    "new_request": {"products": [("files", "Files"), ("dash", "Dash")],
                    "categories": ["technical", "administrative", "commercial"],
                    "problem": "problem_product", "values": {
                        "subject": "<script>x</script>", "text": "t", "product": "dash",
                        "category": "commercial"},
                    "action": "http://h/hub/new", "subject_limit": 200, "text_limit": 100000,
                    "attachment_limit_mb": 10},
    "sign_in": {"form_csrf": "ef" * 32, "action": "http://h/hub/sign-in",
                "problem": "bad_address"},
    "sign_in_sent": {},
    "sign_in_confirm": {"link_csrf": "ef" * 32, "email": "<b>max</b>@acme.example"},
}
MESSAGES = ("not_found", "signed_out", "admins_only", "csrf", "too_large", "limited",
            "link_unknown", "link_used", "link_expired", "not_replyable")


def _words(language: str) -> dict[str, str]:
    path = default_templates_dir() / language / "pages" / "hub.toml"
    with open(path, "rb") as handle:
        return {str(k): str(v) for k, v in tomllib.load(handle).items()}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_all_the_words_in_its_own_words(language: str) -> None:
    english, words = _words("en"), _words(language)
    assert set(words) == set(english)
    same = {k for k in words if words[k] == english[k]}
    assert same == SAME_AS_ENGLISH.get(language, set())
    for key, text in words.items():  # the same {fields} as English
        assert re.findall(r"{\w+}", text) == re.findall(r"{\w+}", english[key]), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_renders_escaped_and_self_contained(language: str) -> None:
    pages = HubPages()
    rendered = {name: pages.render(name, language, {**LAYOUT, **context})
                for name, context in PAGES.items()}
    rendered.update({key: pages.render("message", language, {**LAYOUT, "key": key})
                     for key in MESSAGES})
    words = _words(language)
    for name, html in rendered.items():
        assert f'<html lang="{language}">' in html and 'name="viewport"' in html, name
        assert "<script" not in html and " src=" not in html, name
        assert "<main" in html and "<nav" in html and html.count("<h1>") == 1, name
        assert "&lt;b&gt;Anna&lt;/b&gt;" in html, name
    assert "&lt;i onclick=x&gt;hi&lt;/i&gt;" in rendered["ticket"]
    assert escape(words["reply_reopens"]) in rendered["ticket"]
    assert escape(words["reply_as_colleague"]) in rendered["ticket"]
    assert 'name="csrf" value="' + "cd" * 32 in rendered["ticket"]
    assert 'id="product"' in rendered["new_request"]
    assert escape(words["problem_product"]) in rendered["new_request"]
    for name in ("sign_in", "ticket", "new_request", "tickets"):  # every field has its label
        ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', rendered[name])
        assert ids and all(f'for="{i}"' in rendered[name] for i in ids), name
