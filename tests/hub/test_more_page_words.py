"""The words of the insights, recommendations, announcements and call-back pages
(``templates/<lang>/pages/hub_more.toml``): every language has every key English has, in its
own words, and every page renders in it, escaped, with a label for every field."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from markupsafe import escape

from gateway.callbacks import Refusal
from gateway.web.hub.callback import ZONES
from gateway.web.hub.pages import HubPages
from outbound.render import LANGUAGES, default_templates_dir
from tests.hub.test_page_words import LAYOUT

#: Words that are rightly the same as in English.
SAME_AS_ENGLISH = {"de": {"insights_tickets"}, "nl": {"insights_open", "insights_products"},
                   "it": set()}
EVIL = "<script>x</script>"
BOOKED = {"id": 7, "window": "2026-12-08 14:00–16:00 Europe/Berlin", "phone": "+49 221 1",
          "topic": EVIL}
FORM: dict[str, Any] = {
    "problem": "", "action": "http://h/hub/callback", "zones": ZONES, "hours": range(25),
    "topic_max": 300, "first_day": "2026-12-07", "last_day": "2027-01-06",
    "values": {"topic": EVIL, "phone": "", "day": "2026-12-08", "start": "9", "end": "11",
               "timezone": "Asia/Tokyo"}}
PAGES: dict[str, dict[str, Any]] = {
    "insights": {"open_tickets": 2, "total": 3, "duplicates": 1,
                 "products": [{"key": "files", "name": EVIL, "tickets": 2},
                              {"key": "unknown", "name": "", "tickets": 1}],
                 "issue_types": [{"key": EVIL, "name": "", "tickets": 3}],
                 "categories": [{"key": "technical", "name": "", "tickets": 3}],
                 "satisfaction": {"good": 1, "rated": 2, "percent": 50},
                 "first_response": {"days": 1, "hours": 2, "minutes": 3}},
    "recommendations": {"articles": [{"id": "a", "title": EVIL, "url": "https://h/a",
                                      "for_history": True}], "tailored": True},
    "announcements": {"announcements": [{"id": 1, "subject": EVIL, "body": EVIL,
                                         "language": "en", "date": "2026-12-05"}]},
    "callback": {**FORM, "booked": None},
    "callback_booked": {**FORM, "booked": BOOKED, "problem": "callback_refused_already_booked"},
}


def _words(language: str) -> dict[str, str]:
    path = default_templates_dir() / language / "pages" / "hub_more.toml"
    with open(path, "rb") as handle:
        return {str(k): str(v) for k, v in tomllib.load(handle).items()}


def test_every_refusal_has_its_sentence() -> None:
    assert {f"callback_refused_{r.value}" for r in Refusal} <= set(_words("en"))


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_all_the_words_in_its_own_words(language: str) -> None:
    english, words = _words("en"), _words(language)
    assert set(words) == set(english)
    same = {k for k in words if words[k] == english[k]}
    assert same == SAME_AS_ENGLISH.get(language, set())
    for key, text in words.items():  # the same {fields} as English
        assert sorted(re.findall(r"{\w+}", text)) == sorted(re.findall(r"{\w+}",
                                                                       english[key])), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_renders_escaped_labelled_and_self_contained(language: str) -> None:
    pages = HubPages()
    words = _words(language)
    for name, context in PAGES.items():
        html = pages.render(name.removesuffix("_booked"), language, {**LAYOUT, **context})
        assert f'<html lang="{language}">' in html and html.count("<h1>") == 1, name
        assert "<script" not in html and " src=" not in html, name
        assert "&lt;script&gt;" in html, name
        ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html)
        assert all(f'for="{i}"' in html for i in ids), name
    booked = pages.render("callback", language, {**LAYOUT, **PAGES["callback_booked"]})
    assert escape(words["callback_refused_already_booked"].format(number=7)) in booked
    assert 'id="callback-form"' not in booked
