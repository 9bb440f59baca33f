"""The ``ticket_list`` answer (``#tickets``) in every language, with the real Renderer:
really in that language (no fallback to English), one line per ticket as
``[#N] subject — status — date``, customer subjects escaped in HTML, a note when cut."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from outbound.render import LANGUAGES, Renderer

TICKETS = [
    {"number": 12, "subject": "Sync <b>stopped</b>", "status": "pending", "updated": "2026-11-20"},
    {"number": 3, "subject": "", "status": "closed", "updated": "2025-02-01"},
]
SUBJECT = {"en": "Your tickets", "de": "Ihre Anfragen", "it": "Le Sue richieste",
           "nl": "Uw verzoeken", "ja": "お問い合わせ一覧"}
CLOSED = {"en": "closed", "de": "geschlossen", "it": "chiusa", "nl": "gesloten", "ja": "終了"}


def context(**overrides: Any) -> dict[str, Any]:
    return {"support_name": "Example Support", "recipient_name": "Max", "tickets": TICKETS,
            "more": 0, "include_old": False, "since": None, **overrides}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_lists_the_tickets_in_its_own_words(
        language: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        mail = Renderer().render("ticket_list", language, context(more=7))
    assert not caplog.records  # no fallback
    assert (mail.language, mail.subject) == (language, SUBJECT[language])
    lines = [line for line in mail.text.splitlines() if line.startswith("[#")]
    assert lines[0].startswith("[#12] Sync <b>stopped</b> — ")
    assert lines[1].startswith("[#3] ") and lines[1].endswith(f" — {CLOSED[language]} — 2025-02-01")
    assert len(lines) == 2 and "7" in mail.text  # the cut is said
    assert "Sync &lt;b&gt;stopped&lt;/b&gt;" in mail.html and "<b>stopped" not in mail.html
    assert "#tickets all" in mail.text  # how to see older ones


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_tickets_gives_the_empty_answer(language: str) -> None:
    empty = Renderer().render("ticket_list", language, context(tickets=[], include_old=True))
    full = Renderer().render("ticket_list", language, context(include_old=True))
    assert "[#" not in empty.text
    assert empty.text != full.text
    if language == "en":
        assert "No tickets found for this address." in empty.text
