"""The mail of ``#merge`` and ``#assign``: ``ticket_merged`` in every language and both
directions (this ticket went into the other, the other came into this one), and the
English ``ticket_assigned`` for the assignee, with the real Renderer."""

from __future__ import annotations

import pytest

from outbound.render import LANGUAGES, Renderer

SUBJECT = "Sync <b>stopped</b>\r\nafter the update"
SUBJECT_LINE = "Sync <b>stopped</b> after the update"

# One phrase per language and direction that only that template says.
PHRASE: dict[str, tuple[str, str]] = {
    "en": ("handled together as request #41", "another request about the same matter"),
    "ja": ("受付番号 41 として", "別のお問い合わせ（受付番号 41）"),
    "de": ("gemeinsam als Anfrage\n#41 bearbeitet", "weitere Anfrage zum selben Anliegen"),
    "it": ("come richiesta #41", "un'altra richiesta sulla stessa questione"),
    "nl": ("samen behandeld als aanvraag\n#41", "nog een aanvraag over hetzelfde onderwerp"),
}


@pytest.mark.parametrize("merged", [True, False])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_merge_notice_names_the_other_ticket_by_number_only(language: str,
                                                                merged: bool) -> None:
    mail = Renderer().render("ticket_merged", language, {
        "support_name": "Example Support", "ticket_number": 57, "ticket_subject": SUBJECT,
        "requester_name": "Anna", "merged": merged, "other_number": 41})
    assert mail.language == language
    assert mail.subject == f"[#57] {SUBJECT_LINE}"
    assert PHRASE[language][0 if merged else 1] in mail.text
    assert "[#57]" in mail.text and "[#57]" in mail.html  # the tag to keep is their own
    assert "<b>stopped</b>" not in mail.html and "&lt;b&gt;stopped&lt;/b&gt;" in mail.html


def test_the_assignee_gets_the_ticket_in_english_with_the_customers_words_quoted() -> None:
    mail = Renderer().render("ticket_assigned", "en", {
        "support_name": "Example Support", "ticket_number": 57, "ticket_subject": SUBJECT,
        "assignee_name": "Lena", "assigned_by": "Kenji <kenji@support.example>",
        "requester_email": "anna@acme.example", "requester_name": "Anna Admin",
        "status": "open", "tier": "enhanced", "queue": "de", "first_response_due": None,
        "excerpt": "It fails.\n<script>x</script>"})
    assert mail.subject == f"[#57] Assigned to you: {SUBJECT_LINE}"
    assert "Kenji <kenji@support.example> assigned this ticket to you" in mail.text
    assert "> It fails.\n> <script>x</script>" in mail.text
    assert "First response due: (no target)" in mail.text
    assert "<script>" not in mail.html and "Anna Admin &lt;anna@acme.example&gt;" in mail.html
