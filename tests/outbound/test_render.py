"""Tests for outbound.render: the shipped templates in every language, and the renderer's rules."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jinja2
import pytest

from outbound.render import LANGUAGES, RenderedMail, Renderer, UnknownKindError

# What each language says when no response promise is given ("as soon as possible").
ASAP = {
    "en": "as soon as possible",
    "ja": "できるだけ早く",
    "de": "so schnell wie möglich",
    "it": "il prima possibile",
    "nl": "zo snel mogelijk",
}
# The subject used when the customer's subject is empty.
FALLBACK_SUBJECT = {
    "en": "Your request",
    "ja": "お問い合わせの件",
    "de": "Ihre Anfrage",
    "it": "La Sua richiesta",
    "nl": "Uw aanvraag",
}


def ack_context(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "support_name": "Example Support",
        "ticket_number": 4711,
        "ticket_subject": "Sync stopped working",
        "requester_name": "Anna Admin",
        "excerpt": "Hello,\n\nsince this morning nothing syncs.",
        "promise": "PROMISE-SENTENCE.",
    }
    context.update(overrides)
    return context


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def write_kind(root: Path, language: str, kind: str, files: dict[str, str]) -> None:
    folder = root / language / kind
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")


PING = {
    "subject.txt.j2": "ping {{ n }}",
    "body.txt.j2": "text {{ n }}",
    "body.html.j2": "<p>html {{ n }}</p>",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_acknowledgement_renders_in_every_language(renderer: Renderer, language: str) -> None:
    # Given a complete acknowledgement context
    # When it is rendered in the language
    mail = renderer.render("acknowledgement", language, ack_context())

    # Then it is that language, and subject, text and HTML all carry the number and subject
    assert isinstance(mail, RenderedMail)
    assert mail.language == language
    assert mail.subject == "[#4711] Sync stopped working"
    for body in (mail.text, mail.html):
        assert "4711" in body
        assert "Sync stopped working" in body
        assert "[#4711]" in body  # the "keep [#N] in the subject" hint
        assert "Anna Admin" in body
        assert "PROMISE-SENTENCE." in body
        assert "since this morning nothing syncs." in body
        assert "Example Support" in body
    assert "> since this morning nothing syncs." in mail.text
    assert f'<html lang="{language}"' in mail.html
    # The footer's signature delimiter, with its trailing space
    assert "\n-- \n" in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_acknowledgement_without_optional_values(renderer: Renderer, language: str) -> None:
    # Given a context where every optional value is missing (None) or empty
    for empty in (None, ""):
        context = ack_context(
            ticket_subject=empty, requester_name=empty, excerpt=empty, promise=empty
        )

        # When it is rendered
        mail = renderer.render("acknowledgement", language, context)

        # Then the fallbacks are used and no "None" or stray quote marker leaks through
        assert mail.subject == f"[#4711] {FALLBACK_SUBJECT[language]}"
        assert ASAP[language] in mail.text
        assert ASAP[language] in mail.html
        assert "None" not in mail.text
        assert "None" not in mail.html
        assert "\n>" not in mail.text
        assert "<blockquote" not in mail.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_escapes_user_text_but_text_part_does_not(renderer: Renderer, language: str) -> None:
    # Given user text containing markup in the subject, name and excerpt
    evil = "<script>alert(1)</script>"
    context = ack_context(ticket_subject=evil, requester_name=evil, excerpt=evil)

    # When the acknowledgement is rendered
    mail = renderer.render("acknowledgement", language, context)

    # Then the HTML contains it only escaped, while subject and text keep it verbatim
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert evil in mail.text
    assert "&lt;" not in mail.text
    assert mail.subject == f"[#4711] {evil}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_subject_is_one_line(renderer: Renderer, language: str) -> None:
    # Given a customer subject with CR, LF, tab and Unicode line separators
    subject = "Line one\r\nBcc: evil@example.com\n\tline three\u2028end"

    # When the acknowledgement is rendered
    mail = renderer.render("acknowledgement", language, ack_context(ticket_subject=subject))

    # Then the subject is a single stripped line
    assert mail.subject == "[#4711] Line one Bcc: evil@example.com line three end"


def test_html_layout_is_self_contained(renderer: Renderer) -> None:
    # Given a rendered HTML alternative
    html = renderer.render("acknowledgement", "en", ack_context()).html

    # Then it loads nothing from outside and needs no stylesheet
    for forbidden in ("<script", "<link", "<img", "src=", "<style", "url("):
        assert forbidden not in html
    assert html.lstrip().startswith("<!DOCTYPE html>")


def test_unknown_language_falls_back_to_english_with_warning(
    renderer: Renderer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a language we do not have
    # When rendering in it
    with caplog.at_level(logging.WARNING, logger="outbound.render"):
        mail = renderer.render("acknowledgement", "xx", ack_context())

    # Then the English mail is produced and a warning names the language
    assert mail == renderer.render("acknowledgement", "en", ack_context())
    assert mail.language == "en"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'xx'" in warnings[0].getMessage()


def test_region_subtags_select_the_language_without_warning(
    renderer: Renderer, caplog: pytest.LogCaptureFixture
) -> None:
    # Given language tags with a region or odd case
    with caplog.at_level(logging.WARNING, logger="outbound.render"):
        # When rendering
        ja = renderer.render("acknowledgement", "ja-JP", ack_context())
        de = renderer.render("acknowledgement", "DE_de", ack_context())

    # Then the primary language is used and nothing is logged
    assert (ja.language, de.language) == ("ja", "de")
    assert caplog.records == []


def test_kind_missing_in_a_language_falls_back_to_english(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a kind complete in en, and only partly translated into de
    write_kind(tmp_path, "en", "ping", PING)
    write_kind(tmp_path, "de", "ping", {"subject.txt.j2": "DEUTSCH {{ n }}"})
    renderer = Renderer(tmp_path)

    # When rendering it in de
    with caplog.at_level(logging.WARNING, logger="outbound.render"):
        mail = renderer.render("ping", "de", {"n": 3})

    # Then the whole mail is English (never mixed) and the fallback is logged
    assert mail == RenderedMail(
        subject="ping 3", text="text 3", html="<p>html 3</p>", language="en"
    )
    assert any("ping" in r.getMessage() and "'de'" in r.getMessage() for r in caplog.records)


def test_translated_kind_is_used(tmp_path: Path) -> None:
    # Given a kind translated into nl
    write_kind(tmp_path, "en", "ping", PING)
    write_kind(tmp_path, "nl", "ping", {k: "NL " + v for k, v in PING.items()})

    # When rendering it in nl
    mail = Renderer(tmp_path).render("ping", "nl", {"n": 1})

    # Then the Dutch templates are used
    assert (mail.subject, mail.text, mail.language) == ("NL ping 1", "NL text 1", "nl")


@pytest.mark.parametrize("kind", ["no_such_kind", "../en/acknowledgement", "Acknowledgement", ""])
def test_unknown_kind_raises(renderer: Renderer, kind: str) -> None:
    # Given a kind without templates (or not a kind name at all)
    # When rendering it, Then a clear error names it
    with pytest.raises(UnknownKindError, match="kind"):
        renderer.render(kind, "en", ack_context())


def test_strict_undefined_catches_missing_variable(tmp_path: Path) -> None:
    # Given a template that uses a variable the caller does not pass
    write_kind(
        tmp_path,
        "en",
        "ping",
        dict(PING, **{"body.txt.j2": "Hello {{ name }}, {{ missing_variable }}"}),
    )

    # When rendering, Then it fails instead of printing an empty string
    with pytest.raises(jinja2.UndefinedError, match="missing_variable"):
        Renderer(tmp_path).render("ping", "en", {"n": 1, "name": "x"})


def test_shipped_templates_require_every_context_key(renderer: Renderer) -> None:
    # Given an acknowledgement context that forgets "promise"
    context = ack_context()
    del context["promise"]

    # When rendering, Then StrictUndefined reports it
    with pytest.raises(jinja2.UndefinedError, match="promise"):
        renderer.render("acknowledgement", "en", context)


def test_autoescape_applies_to_html_templates_only(tmp_path: Path) -> None:
    # Given the same markup printed by a text and an HTML template
    write_kind(
        tmp_path,
        "en",
        "ping",
        {"subject.txt.j2": "{{ v }}", "body.txt.j2": "{{ v }}", "body.html.j2": "{{ v }}"},
    )

    # When rendering
    mail = Renderer(tmp_path).render("ping", "en", {"v": "a < b & c"})

    # Then only the HTML part is escaped
    assert mail.subject == "a < b & c"
    assert mail.text == "a < b & c"
    assert mail.html == "a &lt; b &amp; c"


def test_default_templates_dir_is_the_repository_templates() -> None:
    # Given the renderer's default location
    renderer = Renderer()

    # Then it is <repo>/templates, holding every language
    repo_templates = Path(__file__).resolve().parents[2] / "templates"
    assert renderer.templates_dir == repo_templates
    for language in LANGUAGES:
        assert (repo_templates / language / "_base" / "layout.html.j2").is_file()
        assert (repo_templates / language / "_base" / "footer.txt.j2").is_file()
