"""The words of the "was this helpful?" pages: every language has every key English has,
its own words (no silent English), and every page renders in it, escaped."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from markupsafe import escape

from gateway.grants.pages import PageRenderer
from outbound.render import LANGUAGES, default_templates_dir
from tests.satisfaction.conftest import LINK_RE

PAGES: dict[str, dict[str, Any]] = {
    "ask": {"ticket_number": 42, "subject": "<b>Sync</b>", "ratings": ("good", "bad"),
            "comment_limit": 2000, "csrf": "ab" * 32},
    "thanks": {"rating": "good"}}
MESSAGES = ("unknown", "used", "expired", "csrf", "badform")


def _words(language: str) -> dict[str, str]:
    path = default_templates_dir() / language / "pages" / "satisfaction.toml"
    with open(path, "rb") as handle:
        return {str(k): str(v) for k, v in tomllib.load(handle).items()}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_all_the_words_in_its_own_words(language: str) -> None:
    english, words = _words("en"), _words(language)
    assert set(words) == set(english)
    assert [k for k in words if words[k] == english[k]] == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_renders_escaped_and_self_contained(language: str) -> None:
    pages = PageRenderer(section="satisfaction")
    words = _words(language)
    rendered = [pages.render(name, language, context) for name, context in PAGES.items()]
    rendered += [pages.render("thanks", language, {"rating": "bad"})]
    rendered += [pages.render("message", language, {"key": key}) for key in MESSAGES]
    for html in rendered:
        assert f'<html lang="{language}">' in html and 'name="viewport"' in html
        assert "<script" not in html and " src=" not in html and not LINK_RE.search(html)
    ask = rendered[0]
    assert "&lt;b&gt;Sync&lt;/b&gt;" in ask and escape(words["question"]) in ask
    assert 'maxlength="2000"' in ask and ask.count('type="radio"') == 2
    assert escape(words["thanks_good"]) in rendered[1]
    assert escape(words["thanks_bad"]) in rendered[2]
