"""Tests for the conversation mail kinds: every kind in every language, with the real Renderer.

Kinds: colleague_reply, reply_refused, agent_reply, reopened, duplicate_notice,
team_ticket_copy, status_notice. What is checked is what a reader of the mail would check:
the subject is exactly ``[#N] original subject`` on one line (DESIGN §8), user text is
shown (quoted where it is someone else's words, as written for an agent's answer) and
escaped in HTML, the mail is really in the requested language (no silent fallback to
English), and statuses and refusal reasons are worded as they should be.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from markupsafe import escape

from outbound.render import LANGUAGES, RenderedMail, Renderer

KINDS = (
    "colleague_reply",
    "reply_refused",
    "agent_reply",
    "reopened",
    "duplicate_notice",
    "team_ticket_copy",
    "status_notice",
)

SUBJECT = "Sync stopped working\r\nafter the update"  # a customer subject with a line break
SUBJECT_LINE = "Sync stopped working after the update"
REPLY_SUBJECT = "Our licence count"  # what a refused sender wrote, prefixes and tag removed
USER_TEXT = (
    "Hi Max,\n\nI restarted the <script>alert(1)</script> service.\nPlease check again & tell me."
)
USER_TEXT_QUOTED = (
    "> Hi Max,\n>\n> I restarted the <script>alert(1)</script> service.\n"
    "> Please check again & tell me."
)
USER_TEXT_ESCAPED = "I restarted the &lt;script&gt;alert(1)&lt;/script&gt; service."
AGENT_TEXT = "Thank you for the logs.\n\nPlease install version 2.4.1 <b>today</b>."

# One sentence per kind and language that only that language's template says.
KIND_PHRASE: dict[str, dict[str, str]] = {
    "colleague_reply": {
        "en": "an administrator of your team",
        "ja": "チーム管理者",
        "de": "aus der Administration Ihres Teams",
        "it": "amministratore del Suo team",
        "nl": "beheerder van uw team",
    },
    "reply_refused": {
        "en": "We have kept your message",
        "ja": "当方で保管しております",
        "de": "Wir haben Ihre Nachricht aufbewahrt",
        "it": "Abbiamo conservato il Suo messaggio",
        "nl": "Wij hebben uw bericht bewaard",
    },
    "agent_reply": {
        "en": "Simply reply to this email to respond",
        "ja": "本メールにご返信いただいた内容は",
        "de": "Antworten Sie einfach auf diese E-Mail",
        "it": "Per replicare, è sufficiente rispondere",
        "nl": "Beantwoord gewoon deze e-mail om te reageren",
    },
    "reopened": {
        "en": "so we have reopened it",
        "ja": "お問い合わせを再開し",
        "de": "wir haben sie daher wieder geöffnet",
        "it": "l'abbiamo quindi riaperta",
        "nl": "wij hebben deze daarom heropend",
    },
    "duplicate_notice": {
        "en": "keeps its place in our queue",
        "ja": "対応順はそのまま維持されます",
        "de": "die ihren Platz in unserer Warteschlange behält",
        "it": "mantiene la propria posizione nella nostra coda",
        "nl": "die haar plaats in onze wachtrij behoudt",
    },
    "team_ticket_copy": {
        "en": "as a colleague's reply",
        "ja": "同じチームの方からの返信として",
        "de": "als Antwort aus Ihrem Team",
        "it": "come risposta di un membro del team",
        "nl": "als reactie van een collega",
    },
    "status_notice": {
        "en": "waiting for information from you",
        "ja": "お客様からの情報をお待ちしております",
        "de": "warten wir auf Informationen von Ihnen",
        "it": "attendiamo alcune informazioni da parte Sua",
        "nl": "wachten wij op informatie van u",
    },
}

# The greeting when the recipient's name is unknown.
GENERIC_GREETING = {
    "en": "Hello,",
    "ja": "お客様",
    "de": "Guten Tag,",
    "it": "Gentile cliente,",
    "nl": "Geachte heer/mevrouw,",
}
GENERIC_GREETING_FOR = {
    # Not necessarily a customer of ours: a neutral greeting.
    ("it", "reply_refused"): "Buongiorno,",
    ("it", "team_ticket_copy"): "Buongiorno,",
    ("ja", "team_ticket_copy"): "ご担当者様",
}

# The name keys of each kind (all optional).
NAME_KEYS = {
    "colleague_reply": ("requester_name", "colleague_name"),
    "reply_refused": ("recipient_name",),
    "agent_reply": ("requester_name", "agent_name"),
    "reopened": ("requester_name",),
    "duplicate_notice": ("requester_name",),
    "team_ticket_copy": ("admin_name", "requester_name"),
    "status_notice": ("requester_name",),
}

# Kinds whose subject carries the ticket's subject (duplicate_notice: the original's).
SUBJECT_KINDS = ("colleague_reply", "agent_reply", "reopened", "team_ticket_copy",
                 "status_notice", "duplicate_notice")

# The subject's text when the ticket (or the refused mail) has none: per kind and language.
YOUR_REQUEST = {"en": "Your request", "ja": "お問い合わせの件", "de": "Ihre Anfrage",
                "it": "La Sua richiesta", "nl": "Uw aanvraag"}
FALLBACK_SUBJECT: dict[str, dict[str, str]] = {
    **{kind: YOUR_REQUEST for kind in ("colleague_reply", "agent_reply", "reopened",
                                       "status_notice", "duplicate_notice")},
    "team_ticket_copy": {"en": "No subject", "ja": "件名なし", "de": "Ohne Betreff",
                         "it": "Senza oggetto", "nl": "Geen onderwerp"},
    "reply_refused": {
        "en": "Your reply could not be added to this request",
        "ja": "ご返信をお問い合わせに追加できませんでした",
        "de": "Ihre Antwort konnte der Anfrage nicht hinzugefügt werden",
        "it": "Non è stato possibile aggiungere la Sua risposta alla richiesta",
        "nl": "Uw reactie kon niet aan de aanvraag worden toegevoegd",
    },
}
# The key that holds the subject shown after the tag.
SUBJECT_KEY = {**{kind: "ticket_subject" for kind in KINDS},
               "duplicate_notice": "original_subject", "reply_refused": "reply_subject"}

# What agent_reply says below the signature for each status.
AGENT_STATUS: dict[str, dict[str, str]] = {
    "en": {
        "solved": "marked your request as solved",
        "closed": "We have closed your request",
        "pending": "We are waiting for your answer",
        "days": "within 7 days",
        "no_days": "new request linked to this one",
        "reply": "will be added to request [#4711]",
    },
    "ja": {
        "solved": "「解決済み」",
        "closed": "「終了」",
        "pending": "ご返信をお待ちしております",
        "days": "7日以内",
        "no_days": "関連付けた新しいお問い合わせ",
        "reply": "お問い合わせ[#4711]に追記",
    },
    "de": {
        "solved": "als gelöst markiert",
        "closed": "Anfrage geschlossen",
        "pending": "Wir warten auf Ihre Rückmeldung",
        "days": "innerhalb von 7 Tagen",
        "no_days": "neue, mit dieser verknüpfte Anfrage",
        "reply": "der Anfrage [#4711] hinzugefügt",
    },
    "it": {
        "solved": "come risolta",
        "closed": "Abbiamo chiuso la Sua richiesta",
        "pending": "Attendiamo un Suo riscontro",
        "days": "entro 7 giorni",
        "no_days": "nuova richiesta collegata a questa",
        "reply": "aggiunta alla richiesta [#4711]",
    },
    "nl": {
        "solved": "als opgelost gemarkeerd",
        "closed": "aanvraag gesloten",
        "pending": "Wij wachten op uw reactie",
        "days": "binnen 7 dagen",
        "no_days": "nieuwe aanvraag die aan deze aanvraag is gekoppeld",
        "reply": "aan aanvraag [#4711] toegevoegd",
    },
}

# What status_notice says for each status.
NOTICE_STATUS: dict[str, dict[str, str]] = {
    "en": {
        "solved": "We have marked your request as solved",
        "closed": "We have closed your request",
        "pending": "waiting for information from you",
        "days": "within 7 days",
        "no_days": "open a new request linked to this one",
        "reopen": "reopened",
    },
    "ja": {
        "solved": "「解決済み」とさせていただきました",
        "closed": "「終了」とさせていただきました",
        "pending": "お客様からの情報をお待ちしております",
        "days": "7日以内",
        "no_days": "関連付けた新しいお問い合わせ",
        "reopen": "再開いたします",
    },
    "de": {
        "solved": "als gelöst markiert",
        "closed": "Ihre Anfrage geschlossen",
        "pending": "warten wir auf Informationen von Ihnen",
        "days": "innerhalb von 7 Tagen",
        "no_days": "neue, mit dieser verknüpfte Anfrage",
        "reopen": "wieder geöffnet",
    },
    "it": {
        "solved": "come risolta",
        "closed": "Abbiamo chiuso la Sua richiesta",
        "pending": "attendiamo alcune informazioni",
        "days": "entro 7 giorni",
        "no_days": "nuova richiesta collegata a questa",
        "reopen": "riaperta",
    },
    "nl": {
        "solved": "als opgelost gemarkeerd",
        "closed": "uw aanvraag gesloten",
        "pending": "wachten wij op informatie van u",
        "days": "binnen 7 dagen",
        "no_days": "nieuwe aanvraag die aan deze aanvraag is gekoppeld",
        "reopen": "heropend",
    },
}
# "1 day" in the singular, and the plural that must not be used for it (none in Japanese).
ONE_DAY: dict[str, tuple[str, str | None]] = {
    "en": ("1 day", "1 days"),
    "ja": ("1日以内", None),
    "de": ("1 Tag ", "1 Tagen"),
    "it": ("1 giorno", "1 giorni"),
    "nl": ("1 dag ", "1 dagen"),
}

# The explanation reply_refused gives for each reason ("other": an unknown reason).
REFUSAL: dict[str, dict[str, str]] = {
    "en": {
        "not_admin": "Only your team's administrators",
        "before_cutoff": "cut-off date for team requests",
        "not_participant": "does not take part in this request",
        "other": "Replies from your address cannot be added",
    },
    "ja": {
        "not_admin": "チームの管理者の方に限られております",
        "before_cutoff": "チームお問い合わせの基準日",
        "not_participant": "関係者として登録されていない",
        "other": "ご送信元のメールアドレスからのご返信は",
    },
    "de": {
        "not_admin": "mit Administratorrechten",
        "before_cutoff": "Stichtag für Team-Anfragen",
        "not_participant": "an dieser Anfrage nicht beteiligt",
        "other": "Antworten von Ihrer Adresse können",
    },
    "it": {
        "not_admin": "Solo gli amministratori del Suo team",
        "before_cutoff": "data limite per le richieste di team",
        "not_participant": "non risulta tra i partecipanti",
        "other": "Le risposte provenienti dal Suo indirizzo",
    },
    "nl": {
        "not_admin": "Alleen de beheerders van uw team",
        "before_cutoff": "peildatum voor teamaanvragen",
        "not_participant": "niet bij deze aanvraag betrokken",
        "other": "Reacties vanaf uw adres kunnen niet",
    },
}


def context(kind: str, **overrides: Any) -> dict[str, Any]:
    """A complete, realistic context for ``kind`` (every documented key present)."""
    base: dict[str, Any] = {"support_name": "Example Support", "ticket_number": 4711}
    per_kind: dict[str, dict[str, Any]] = {
        "colleague_reply": {
            "ticket_subject": SUBJECT,
            "requester_name": "Max Member",
            "colleague_name": "Anna Admin",
            "colleague_email": "anna@acme.example",
            "text": USER_TEXT,
        },
        "reply_refused": {
            "ticket_subject": SUBJECT,
            "reply_subject": REPLY_SUBJECT,
            "recipient_name": "Max Member",
            "reason": "not_admin",
            "cutoff_date": "2024-12-11",
            "support_address": "support@support.example",
        },
        "agent_reply": {
            "ticket_subject": SUBJECT,
            "requester_name": "Max Member",
            "agent_name": "Bob Agent",
            "text": AGENT_TEXT,
            "status": "pending",
            "reopen_days": 7,
        },
        "reopened": {"ticket_subject": SUBJECT, "requester_name": "Max Member"},
        "duplicate_notice": {
            "ticket_number": 4712,
            "original_number": 4711,
            "original_subject": SUBJECT,
            "requester_name": "Max Member",
            "excerpt": USER_TEXT,
        },
        "team_ticket_copy": {
            "ticket_subject": SUBJECT,
            "admin_name": "Anna Admin",
            "requester_name": "Max Member",
            "requester_email": "max@acme.example",
            "team_name": "Acme GmbH",
            "text": USER_TEXT,
        },
        "status_notice": {
            "ticket_subject": SUBJECT,
            "requester_name": "Max Member",
            "status": "pending",
            "reopen_days": 7,
        },
    }
    result = {**base, **per_kind[kind]}
    result.update(overrides)
    return result


def flat(value: str) -> str:
    """Whitespace (line wrapping) collapsed to single spaces, for phrase checks."""
    return re.sub(r"\s+", " ", value)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(
    renderer: Renderer,
    kind: str,
    language: str,
    caplog: pytest.LogCaptureFixture,
    **overrides: Any,
) -> RenderedMail:
    """Render and assert that the requested language was used, without any warning."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="outbound.render"):
        mail = renderer.render(kind, language, context(kind, **overrides))
    assert mail.language == language
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    return mail


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_language(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, kind: str, language: str
) -> None:
    # Given a complete context for the kind
    # When it is rendered in the language
    mail = render(renderer, kind, language, caplog)
    number = 4712 if kind == "duplicate_notice" else 4711

    # Then the subject is one line starting with the ticket tag (a duplicate's: the tag of
    # the request it was linked to, where replies go), and the HTML title repeats it
    assert mail.subject.startswith("[#4711] ")
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert f"<title>{escape(mail.subject)}</title>" in mail.html

    # And it really is that language: its own phrase, and no other language's
    for body in (flat(mail.text), flat(mail.html)):
        assert KIND_PHRASE[kind][language] in body
        for other in LANGUAGES:
            if other != language:
                assert KIND_PHRASE[kind][other] not in body
    assert f'<html lang="{language}"' in mail.html

    # And the usual frame: signature delimiter, support name, nothing leaked or loaded
    assert "\n-- \n" in mail.text
    for body in (mail.text, mail.html):
        assert "Example Support" in body
        assert "None" not in body
        assert f"{number}" in body
    for forbidden in ("<script", "<link", "<img", "src=", "<style", "url("):
        assert forbidden not in mail.html
    assert mail.html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_subject_is_the_tag_and_the_original_subject(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, kind: str, language: str
) -> None:
    # Given a ticket with a subject, and one without
    mail = render(renderer, kind, language, caplog)
    bare = render(renderer, kind, language, caplog, **{SUBJECT_KEY[kind]: None})

    # Then the subject is "[#N] original subject", nothing before or after it (a refusal:
    # the refused mail's own subject, never the ticket's), and the fallback without one
    original = REPLY_SUBJECT if kind == "reply_refused" else SUBJECT_LINE
    assert mail.subject == f"[#4711] {original}"
    assert bare.subject == f"[#4711] {FALLBACK_SUBJECT[kind][language]}"
    assert f"<title>{escape(bare.subject)}</title>" in bare.html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", SUBJECT_KINDS)
def test_subject_with_line_break_stays_one_line(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, kind: str, language: str
) -> None:
    # Given a ticket subject containing CR LF
    # When the mail is rendered
    mail = render(renderer, kind, language, caplog)

    # Then subject and HTML show it on one line, and so does the text part of a notice (an
    # agent's answer is plain: greeting, answer, signature; its subject is enough)
    assert mail.subject.startswith("[#4711] ")
    assert mail.subject.endswith(SUBJECT_LINE)
    assert SUBJECT_LINE in mail.html
    assert (SUBJECT_LINE in mail.text) == (kind != "agent_reply")
    assert "Sync stopped working\n" not in mail.text + mail.html


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ("colleague_reply", "team_ticket_copy", "duplicate_notice"))
def test_someone_elses_words_are_quoted_in_text_and_escaped_in_html(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, kind: str, language: str
) -> None:
    # Given user text (a colleague's reply, a requester's message, an excerpt) with markup,
    # a blank line and an ampersand
    # When the mail is rendered
    mail = render(renderer, kind, language, caplog)

    # Then the text part quotes it line by line, verbatim
    assert USER_TEXT_QUOTED in mail.text
    assert "&lt;" not in mail.text
    # And the HTML part shows it escaped, in a blockquote, with its line breaks kept
    assert "<script" not in mail.html
    assert USER_TEXT_ESCAPED in mail.html
    assert "Please check again &amp; tell me." in mail.html
    assert "Hi Max,<br>\n<br>\nI restarted" in mail.html
    assert "<blockquote" in mail.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_text_is_shown_as_written(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    # Given an agent's answer with markup and a blank line, and surrounding blank lines
    text = "\n\n" + AGENT_TEXT + "\n\n"

    # When it is relayed to the requester
    mail = render(renderer, "agent_reply", language, caplog, text=text)

    # Then the text part has it as written (not quoted), the HTML part escaped, not quoted
    assert AGENT_TEXT in mail.text
    assert "> Thank you" not in mail.text
    assert "\n\n\n" not in mail.text.split("\n-- \n")[0]
    assert "<b>" not in mail.html
    assert "Thank you for the logs.<br>\n<br>\nPlease install version 2.4.1 &lt;b&gt;today" in (
        mail.html
    )
    assert "<blockquote" not in mail.html
    # And it is signed by the agent and the support
    for body in (mail.text, mail.html):
        assert "Bob Agent" in body
        assert "Example Support" in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_without_names(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, kind: str, language: str
) -> None:
    for empty in (None, ""):
        # Given a context where every name is missing (None) or empty
        overrides = {key: empty for key in NAME_KEYS[kind]}

        # When the mail is rendered
        mail = render(renderer, kind, language, caplog, **overrides)

        # Then a generic greeting is used (an agent's reply has the agent's own: none of
        # ours) and nothing like "None" or "()" leaks through
        greeting = GENERIC_GREETING_FOR.get((language, kind), GENERIC_GREETING[language])
        for body in (mail.text, mail.html):
            if kind != "agent_reply":
                assert greeting in body
            assert "None" not in body
            assert "()" not in body and "（）" not in body
            assert "Max Member" not in body
        assert mail.text.lstrip().startswith(greeting if kind != "agent_reply" else AGENT_TEXT[:20])


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_reply_carries_only_the_agents_salutation(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    # Given an agent's answer that greets the requester itself
    mail = render(renderer, "agent_reply", language, caplog, text="Hi Max,\n\nfixed in 4.2.")

    # Then the mail starts with the agent's salutation, and ours is nowhere
    assert mail.text.lstrip().startswith("Hi Max,")
    assert "Hi Max,<br>" in mail.html
    assert GENERIC_GREETING[language] not in (line.strip() for line in mail.text.splitlines())
    assert f">{GENERIC_GREETING[language]}</p>" not in mail.html
    for body in (mail.text, mail.html):
        assert "Max Member" not in body  # the requester's name only where the agent wrote it


@pytest.mark.parametrize("language", LANGUAGES)
def test_colleague_reply_names_the_colleague(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    # Given a colleague's reply, with and without the colleague's name
    named = render(renderer, "colleague_reply", language, caplog)
    unnamed = render(renderer, "colleague_reply", language, caplog, colleague_name=None)

    # Then the reader sees who replied: name and address, or at least the address
    for body in (named.text, named.html):
        assert "Anna Admin" in body
        assert "anna@acme.example" in body
        assert "[#4711]" in body  # the "keep [#N] in the subject" hint
    for body in (unnamed.text, unnamed.html):
        assert "Anna Admin" not in body
        assert "anna@acme.example" in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_team_ticket_copy_names_requester_and_team(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    # Given a copy of a team ticket for the team's administrator
    mail = render(renderer, "team_ticket_copy", language, caplog)
    anonymous = render(renderer, "team_ticket_copy", language, caplog, requester_name="")

    # Then it says who opened it, for which team, and greets the administrator
    for body in (mail.text, mail.html):
        assert "Max Member" in body
        assert "max@acme.example" in body
        assert "Acme GmbH" in body
        assert "Anna Admin" in body
    for body in (anonymous.text, anonymous.html):
        assert "max@acme.example" in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_duplicate_notice_points_to_the_original(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    # Given a new request (4712) linked to the open request 4711
    mail = render(renderer, "duplicate_notice", language, caplog)
    bare = render(renderer, "duplicate_notice", language, caplog, original_subject=None, excerpt="")

    # Then the subject carries the original's tag and subject (replies go there), and the
    # body names both requests
    assert mail.subject == f"[#4711] {SUBJECT_LINE}"
    for body in (mail.text, mail.html):
        assert "4712" in body
        assert SUBJECT_LINE in body
        assert "[#4711]" in body and "[#4712]" not in body  # the tag to keep is the original's
    # And without subject and excerpt, nothing is quoted and nothing leaks
    assert "\n>" not in bare.text
    assert "<blockquote" not in bare.html
    assert "None" not in bare.text + bare.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_reopened_names_the_ticket(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    mail = render(renderer, "reopened", language, caplog, ticket_subject=None)

    # Then the subject falls back to the generic title and the body keeps the tag hint
    assert mail.subject.startswith("[#4711] ")
    for body in (mail.text, mail.html):
        assert "[#4711]" in body
        assert "None" not in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", ("not_admin", "before_cutoff", "not_participant", "other"))
def test_reply_refused_explains_the_reason(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str, reason: str
) -> None:
    # Given a reply refused for the reason
    mail = render(renderer, "reply_refused", language, caplog, reason=reason)

    # Then the mail gives that reason and no other
    for body in (flat(mail.text), flat(mail.html)):
        assert REFUSAL[language][reason] in body
        for other, phrase in REFUSAL[language].items():
            if other != reason:
                assert phrase not in body
        # And names the ticket, and says where to write for help of one's own
        assert ("受付番号4711" if language == "ja" else "[#4711]") in body
        assert "support@support.example" in body
    if reason == "before_cutoff":
        assert "2024-12-11" in mail.text
        assert "2024-12-11" in mail.html
    # And never shows the subject of a ticket the recipient may not see, only their own
    for part in (mail.subject, mail.text, mail.html):
        assert "Sync stopped" not in part
    assert mail.subject == f"[#4711] {REPLY_SUBJECT}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_reply_refused_before_cutoff_without_date(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    mail = render(
        renderer, "reply_refused", language, caplog, reason="before_cutoff", cutoff_date=None
    )

    for body in (flat(mail.text), flat(mail.html)):
        assert REFUSAL[language]["before_cutoff"] in body
        assert "None" not in body
        assert "()" not in body and "（）" not in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", (None, "pending", "solved", "closed"))
def test_agent_reply_mentions_the_status(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str, status: str | None
) -> None:
    # Given an agent's answer that set the status (reopening window: 7 days)
    mail = render(renderer, "agent_reply", language, caplog, status=status, reopen_days=7)
    words = AGENT_STATUS[language]

    # Then exactly that status is mentioned, and a reply is said to go to the ticket
    for body in (flat(mail.text), flat(mail.html)):
        for name in ("solved", "closed", "pending"):
            assert (words[name] in body) == (name == status), name
        assert (words["days"] in body) == (status in ("solved", "closed"))
        assert words["no_days"] not in body
        assert words["reply"] in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", ("solved", "closed"))
@pytest.mark.parametrize("reopen_days", (None, 0))
def test_agent_reply_without_reopening_window(
    renderer: Renderer,
    caplog: pytest.LogCaptureFixture,
    language: str,
    status: str,
    reopen_days: int | None,
) -> None:
    # Given a solved/closed ticket that cannot be reopened by a reply
    mail = render(renderer, "agent_reply", language, caplog, status=status, reopen_days=reopen_days)
    words = AGENT_STATUS[language]

    # Then a reply is said to open a new linked request, not to be added to this one
    for body in (flat(mail.text), flat(mail.html)):
        assert words[status] in body
        assert words["no_days"] in body
        assert words["reply"] not in body
        assert "None" not in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("status", ("pending", "solved", "closed"))
def test_status_notice_mentions_the_status(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str, status: str
) -> None:
    # Given a status change without text (reopening window: 7 days)
    mail = render(renderer, "status_notice", language, caplog, status=status, reopen_days=7)
    words = NOTICE_STATUS[language]

    # Then the subject is the ticket's own; the body says the status and what a reply does
    assert mail.subject == f"[#4711] {SUBJECT_LINE}"
    for body in (flat(mail.text), flat(mail.html)):
        for name in ("solved", "closed", "pending"):
            assert (words[name] in body) == (name == status), name
        closing = status in ("solved", "closed")
        assert (words["days"] in body) == closing
        assert (words["reopen"] in body) == closing
        assert words["no_days"] not in body
        assert "[#4711]" in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reopen_days", (None, 0))
def test_status_notice_without_reopening_window(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str, reopen_days: int | None
) -> None:
    # Given a solved ticket that cannot be reopened by a reply
    mail = render(
        renderer, "status_notice", language, caplog, status="solved", reopen_days=reopen_days
    )
    words = NOTICE_STATUS[language]

    # Then a reply is said to open a new request linked to this one
    for body in (flat(mail.text), flat(mail.html)):
        assert words["solved"] in body
        assert words["no_days"] in body
        assert words["reopen"] not in body
        assert "None" not in body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ("agent_reply", "status_notice"))
def test_one_day_is_singular(
    renderer: Renderer, caplog: pytest.LogCaptureFixture, language: str, kind: str
) -> None:
    # Given a reopening window of one day
    mail = render(renderer, kind, language, caplog, status="closed", reopen_days=1)

    # Then "day" is in the singular
    singular, plural = ONE_DAY[language]
    for body in (flat(mail.text), flat(mail.html)):
        assert singular in body
        assert plural is None or plural not in body


def documented_keys(kind: str) -> set[str]:
    """The context keys listed in the comment at the top of en/<kind>/body.txt.j2."""
    path = Renderer().templates_dir / "en" / kind / "body.txt.j2"
    comment = path.read_text(encoding="utf-8").split("#}", 1)[0]
    block = comment.split("Context", 1)[1]
    return set(re.findall(r"^ {4}([a-z_]+) {2,}", block, flags=re.MULTILINE))


@pytest.mark.parametrize("kind", KINDS)
def test_documented_context_is_what_callers_pass(kind: str) -> None:
    # Given the context documented at the top of the English text template
    # Then it lists exactly the keys these tests pass (all of them, nothing more)
    assert documented_keys(kind) == set(context(kind))
