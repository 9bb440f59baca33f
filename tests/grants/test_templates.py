"""Every grant mail and page exists in all five languages and words a department there."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from gateway.grants.pages import PageRenderer
from outbound.render import LANGUAGES, Renderer

KINDS = ("grant_activation", "grant_granted", "grant_revoked", "grant_expiring")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
CONTEXT = {"support_name": "Example Support", "recipient_name": "Anna", "team_name": "Acme",
           "agent_label": None, "department": "support", "asked_by": "", "reason": "Why\nnot",
           "export": True, "activate_url": "http://x/grants/activate/t", "link_expires": "soon",
           "overview_url": "http://x/grants/overview/o", "until": None, "granted_by": "Anna",
           "revoked_by": "Anna"}
DEPARTMENT = {"en": 'department "support"', "de": "Abteilung „support“",
              "it": "reparto «support»", "nl": 'afdeling "support"', "ja": "support 部門"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_mail_in_every_language(kind: str, language: str,
                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        mail = Renderer().render(kind, language, CONTEXT)
    assert mail.language == language and not caplog.records  # no fallback to English
    assert DEPARTMENT[language] in mail.subject
    assert DEPARTMENT[language] in mail.text
    assert "http://x/grants/overview/o" in mail.text
    agent = Renderer().render(kind, language, {**CONTEXT, "agent_label": "Kenji <k@s.example>",
                                               "department": None})
    assert "Kenji <k@s.example>" in agent.text and "Kenji &lt;k@s.example&gt;" in agent.html


def test_page_catalogs_have_every_word() -> None:
    def keys(language: str) -> set[str]:
        with open(TEMPLATES / language / "pages" / "grants.toml", "rb") as handle:
            return set(tomllib.load(handle))
    for language in LANGUAGES:
        assert keys(language) == keys("en"), language
    assert PageRenderer().render("message", "ja", {"key": "used"}).count("使用済み") >= 1
