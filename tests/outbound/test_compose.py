"""Tests for outbound.compose: what a receiving mail client and an attacker would see."""

from __future__ import annotations

import email.policy
import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser, Parser
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from outbound.compose import (
    MAX_REFERENCES,
    Content,
    Envelope,
    compose,
    make_message_id,
    normalise_message_id,
)
from outbound.render import Renderer

INJECTION = "hi\r\nBcc: evil@example.com"


ENVELOPE_FIELDS = {f.name for f in fields(Envelope)}
CONTENT_FIELDS = {f.name for f in fields(Content)}


def build(**overrides: Any) -> EmailMessage:
    """compose() with a realistic message, the keyword arguments overriding any field."""
    arguments: dict[str, Any] = {
        "from_name": "Example Support",
        "from_address": "support@support.example",
        "to_address": "anna@acme.example",
        "to_name": "Anna Admin",
        "subject": "[#42] Sync stopped working",
        "text": "Hello Anna,\n\nwe received your request.\n",
        "html": "<p>Hello Anna,</p><p>we received your request.</p>\n",
        "message_id": "<abc123@support.example>",
        "reply_to": "support+TOKEN@support.example",
        "in_reply_to": "<orig-1@acme.example>",
        "references": ["<root@acme.example>"],
        "language": "en",
        "date": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    }
    arguments.update(overrides)
    envelope = {k: arguments.pop(k) for k in list(arguments) if k in ENVELOPE_FIELDS}
    content = {k: arguments.pop(k) for k in list(arguments) if k in CONTENT_FIELDS}
    return compose(Envelope(**envelope), Content(**content), **arguments)


def reparse(msg: EmailMessage) -> EmailMessage:
    """Serialise as the transport would and parse back as a receiving client would."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def reparse_utf8(msg: EmailMessage) -> EmailMessage:
    """Parse as a client reads an SMTPUTF8 message (RFC 6532: the header bytes are UTF-8)."""
    parsed = Parser(policy=email.policy.default).parsestr(msg.as_bytes().decode("utf-8"))
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def body_lines(part: MIMEPart) -> list[str]:
    content = part.get_content()
    assert isinstance(content, str)
    return content.splitlines()


def test_all_headers_survive_a_round_trip() -> None:
    # Given a fully specified acknowledgement
    msg = build(extra_headers={"X-Gateway-Ticket": "42"})

    # When it is serialised and parsed back with the default policy
    parsed = reparse(msg)

    # Then every header reads back as intended
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Example Support", "support@support.example")
    (recipient,) = parsed["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("Anna Admin", "anna@acme.example")
    assert parsed["Reply-To"].addresses[0].addr_spec == "support+TOKEN@support.example"
    assert parsed["Subject"] == "[#42] Sync stopped working"
    assert parsedate_to_datetime(parsed["Date"]) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert parsed["Message-ID"] == "<abc123@support.example>"
    assert parsed["In-Reply-To"] == "<orig-1@acme.example>"
    assert parsed["References"] == "<root@acme.example> <orig-1@acme.example>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Content-Language"] == "en"
    assert parsed["X-Gateway-Ticket"] == "42"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.defects == []


def test_text_then_html_alternatives() -> None:
    # Given text and HTML bodies
    parsed = reparse(build())

    # Then the message is multipart/alternative with text/plain first, text/html second
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert body_lines(parts[0]) == ["Hello Anna,", "", "we received your request."]
    assert body_lines(parts[1]) == ["<p>Hello Anna,</p><p>we received your request.</p>"]
    # and the language header is on the whole message, not moved into a part
    assert parts[0]["Content-Language"] is None
    # and MIME-Version is said once, on top (RFC 2045 §4), not again in a part
    assert parsed["MIME-Version"] == "1.0"
    assert [p["MIME-Version"] for p in parts] == [None, None]


def test_without_html_the_message_is_plain_text() -> None:
    # Given no HTML alternative
    parsed = reparse(build(html=None))

    # Then the message is a single text/plain part
    assert parsed.get_content_type() == "text/plain"
    assert not parsed.is_multipart()
    assert body_lines(parsed) == ["Hello Anna,", "", "we received your request."]


def test_japanese_mail_decodes_exactly_and_travels_as_ascii() -> None:
    # Given a rendered Japanese acknowledgement with a Japanese sender name and subject
    rendered = Renderer().render(
        "acknowledgement",
        "ja",
        {
            "support_name": "サポート窓口",
            "ticket_number": 42,
            "ticket_subject": "ログインできません",
            "requester_name": "山田 太郎",
            "excerpt": "パスワードを再設定してもエラーが表示されます。",
            "promise": "1時間以内にご回答いたします。",
        },
    )
    msg = build(
        from_name="サポート窓口",
        to_name="山田 太郎",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        language=rendered.language,
    )

    # When serialised and parsed back
    raw = msg.as_bytes()
    parsed = reparse(msg)

    # Then the wire form is 7-bit ASCII and the decoded text is exactly what was rendered
    assert raw.isascii()
    assert parsed["Subject"] == "[#42] ログインできません"
    assert parsed["From"].addresses[0].display_name == "サポート窓口"
    assert parsed["To"].addresses[0].display_name == "山田 太郎"
    assert parsed["Content-Language"] == "ja"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert body_lines(plain) == rendered.text.splitlines()
    assert body_lines(html) == rendered.html.splitlines()
    assert "山田 太郎 様" in plain.get_content()


def test_short_non_ascii_bodies_are_also_encoded_for_7bit_transport() -> None:
    # Given short UTF-8 lines (the stdlib would send these as raw 8bit under plain SMTP policy)
    msg = build(text="Grüße\n短い本文です。\n", html="<p>Grüße</p>\n")

    # When serialised
    raw = msg.as_bytes()

    # Then no part needs 8BITMIME, and the text decodes back exactly
    assert raw.isascii()
    parsed = reparse(msg)
    assert {p["Content-Transfer-Encoding"] for p in parsed.iter_parts()} <= {
        "quoted-printable",
        "base64",
    }
    plain = parsed.get_body(("plain",))
    assert isinstance(plain, EmailMessage)
    assert body_lines(plain) == ["Grüße", "短い本文です。"]


def test_no_line_exceeds_998_octets() -> None:
    # Given bodies with one very long line, in ASCII and in Japanese
    long_ascii = "x" * 5000
    long_japanese = "長" * 5000
    msg = build(text=long_ascii + "\n" + long_japanese + "\n", html=f"<p>{long_ascii}</p>\n")

    # When serialised
    raw = msg.as_bytes()

    # Then every line fits the SMTP limit and the content still decodes in full
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    plain = reparse(msg).get_body(("plain",))
    assert isinstance(plain, EmailMessage)
    assert body_lines(plain) == [long_ascii, long_japanese]


def test_header_injection_through_subject_names_and_extra_headers_fails() -> None:
    # Given an attacker's CR/LF sequences in every free-text header input
    msg = build(
        subject=INJECTION,
        from_name=INJECTION,
        to_name=INJECTION,
        extra_headers={"X-Customer-Note": INJECTION},
    )

    # When the message is serialised
    raw = msg.as_bytes()
    parsed = reparse(msg)

    # Then no header line introduces a Bcc, and the text stayed inside its own header
    assert not any(line.lower().startswith(b"bcc") for line in header_lines(raw))
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "hi Bcc: evil@example.com"
    assert parsed["X-Customer-Note"] == "hi Bcc: evil@example.com"
    assert [a.addr_spec for a in parsed["From"].addresses] == ["support@support.example"]
    assert parsed["From"].addresses[0].display_name == "hi Bcc: evil@example.com"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["anna@acme.example"]
    assert len(parsed.get_all("To") or []) == 1


@pytest.mark.parametrize(
    "field", ["from_address", "to_address", "reply_to"], ids=["from", "to", "reply-to"]
)
def test_addresses_with_line_breaks_are_rejected(field: str) -> None:
    # Given an address carrying a header injection
    # When composing, Then it is refused rather than sent
    with pytest.raises(ValueError, match="address"):
        build(**{field: "anna@acme.example\r\nBcc: evil@example.com"})


@pytest.mark.parametrize("bad", ["not-an-address", "a@b@c.example", "anna @acme.example", ""])
def test_malformed_recipient_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        build(to_address=bad)


@pytest.mark.parametrize(
    "name",
    ["X Bad", "X-Bad:", "X-Bad\r\nBcc", "", "Bcc", "Subject", "FROM", "Content-Type", "Content-ID"],
)
def test_extra_header_names_are_validated(name: str) -> None:
    # Given an invalid header name, or one compose() owns
    # When composing, Then it is refused
    with pytest.raises(ValueError, match="header"):
        build(extra_headers={name: "value"})


def test_display_names_with_commas_quotes_and_accents_stay_one_address() -> None:
    # Given display names that would break naive "Name <addr>" concatenation
    name = 'Support, "Team" Zürich <ops@evil.example>'
    parsed = reparse(build(from_name=name, to_name="Doe, Jane"))

    # Then each header still holds exactly one address with the name intact
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (name, "support@support.example")
    (recipient,) = parsed["To"].addresses
    assert (recipient.display_name, recipient.addr_spec) == ("Doe, Jane", "anna@acme.example")


def test_message_ids_get_angle_brackets_whether_given_or_not() -> None:
    # Given ids with and without angle brackets
    parsed = reparse(
        build(
            message_id="ours-1@support.example",
            in_reply_to="parent@acme.example",
            references=["<root@acme.example>", "middle@acme.example"],
        )
    )

    # Then all are written as <id>, with the parent last in References
    assert parsed["Message-ID"] == "<ours-1@support.example>"
    assert parsed["In-Reply-To"] == "<parent@acme.example>"
    assert parsed["References"] == (
        "<root@acme.example> <middle@acme.example> <parent@acme.example>"
    )


def test_parent_already_last_is_not_repeated_and_moves_last_otherwise() -> None:
    already_last = reparse(build(in_reply_to="<p@x>", references=["<a@x>", "p@x"]))
    assert already_last["References"] == "<a@x> <p@x>"

    earlier = reparse(build(in_reply_to="<p@x>", references=["<p@x>", "<a@x>", "<a@x>"]))
    assert earlier["References"] == "<a@x> <p@x>"


def test_long_message_ids_are_folded_between_ids_never_encoded() -> None:
    # Given Outlook-style ids longer than a 78-character header line
    outlook = "<AM0PR07MB1234567890ABCDEF1234567890ABCDEF@AM0PR07MB1234.eurprd07.prod.outlook.com>"
    older = outlook.replace("AM0", "DB9")

    # When replying to it
    msg = build(in_reply_to=outlook, references=[older, "<short@acme.example>"])
    raw = msg.as_bytes()
    parsed = reparse(msg)

    # Then the ids travel verbatim (no RFC 2047 words), lines stay legal, and they read back
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in header_lines(raw)) <= 998
    assert parsed["In-Reply-To"] == outlook
    assert parsed["References"] == f"{older} <short@acme.example> {outlook}"


def test_ascii_extra_headers_keep_long_urls_intact() -> None:
    # Given a List-Unsubscribe header with a long tokenised URL (RFC 8058 bulk mail)
    url = "https://support.example/unsubscribe/" + "t0k3n" * 30
    unsubscribe = f"<{url}>, <mailto:unsubscribe@support.example>"
    msg = build(
        extra_headers={
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Team": "Grüße aus Zürich",
        }
    )

    # When serialised and parsed back
    raw = msg.as_bytes()
    parsed = reparse(msg)

    # Then the URL is on the wire as it is, and non-ASCII values are still properly encoded
    assert f"List-Unsubscribe: <{url}>,".encode() in raw
    assert parsed["List-Unsubscribe"] == unsubscribe
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-Team"] == "Grüße aus Zürich"
    assert raw.isascii()


def test_extra_header_word_too_long_for_a_line_is_rejected() -> None:
    with pytest.raises(ValueError, match="longer"):
        build(extra_headers={"List-Unsubscribe": "<https://x.example/" + "a" * 1000 + ">"})


def test_references_are_capped_keeping_root_and_latest() -> None:
    # Given a very long thread
    references = [f"<r{i}@acme.example>" for i in range(60)]

    # When replying to its last message
    parsed = reparse(build(references=references, in_reply_to="<last@acme.example>"))

    # Then References keeps the root and the most recent ids, ending with the parent
    ids = parsed["References"].split()
    assert len(ids) == MAX_REFERENCES
    assert ids[0] == "<r0@acme.example>"
    assert ids[-1] == "<last@acme.example>"
    assert ids[1:-1] == references[-(MAX_REFERENCES - 2) :]


def test_unusable_ids_from_outside_are_dropped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    # Given a customer's mail whose ids are garbage or carry an injection
    parsed = reparse(
        build(
            in_reply_to="two words@x",
            references=["<ok@acme.example>", "<a@x>\r\nBcc: evil@example.com", "ü@x", "<>"],
        )
    )

    # Then only the valid id is kept, the rest is logged, and no Bcc appears
    assert parsed["In-Reply-To"] is None
    assert parsed["References"] == "<ok@acme.example>"
    assert parsed["Bcc"] is None
    assert len([r for r in caplog.records if "dropping" in r.getMessage()]) == 4


def test_no_thread_headers_without_ids() -> None:
    parsed = reparse(build(in_reply_to=None, references=()))
    assert parsed["In-Reply-To"] is None
    assert parsed["References"] is None


def test_our_own_message_id_must_be_valid() -> None:
    with pytest.raises(ValueError, match="message id"):
        build(message_id="<a@b>\r\nBcc: evil@example.com")


def test_mail_written_by_a_person_is_not_marked_automatic() -> None:
    # Given auto_submitted=None (an agent's reply, say)
    parsed = reparse(build(auto_submitted=None))

    # Then neither automatic-mail header is present
    assert parsed["Auto-Submitted"] is None
    assert parsed["X-Auto-Response-Suppress"] is None


def test_auto_generated_mail() -> None:
    parsed = reparse(build(auto_submitted="auto-generated", language=None))
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Content-Language"] is None


def test_invalid_language_tag_is_rejected() -> None:
    with pytest.raises(ValueError, match="Content-Language"):
        build(language="en\r\nBcc: evil@example.com")


def test_date_defaults_to_now_and_naive_dates_are_utc() -> None:
    # Given no date
    before = datetime.now(UTC).replace(microsecond=0)
    parsed_now = reparse(build(date=None))
    after = datetime.now(UTC)

    # Then Date is the current time with a zone
    now = parsedate_to_datetime(parsed_now["Date"])
    assert before <= now <= after + timedelta(seconds=1)

    # Given a naive datetime (as SQLite returns), Then it is taken as UTC
    naive = reparse(build(date=datetime(2026, 1, 5, 8, 0)))
    assert parsedate_to_datetime(naive["Date"]) == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_make_message_id_is_random_and_in_our_domain() -> None:
    # When making many ids
    ids = {make_message_id("Support.Example") for _ in range(1000)}

    # Then they are unique, bracketed, in our (lower-cased) domain, with >= 128 random bits
    assert len(ids) == 1000
    for message_id in ids:
        match = re.fullmatch(r"<([0-9a-f]+)@support\.example>", message_id)
        assert match is not None
        assert len(match.group(1)) * 4 >= 128
        assert normalise_message_id(message_id) == message_id


def test_make_message_id_encodes_international_domains() -> None:
    assert make_message_id("bücher.example").endswith("@xn--bcher-kva.example>")


@pytest.mark.parametrize("domain", ["", "exa mple.com", "a@b.example", "-bad.example", "x\r\ny"])
def test_make_message_id_rejects_bad_domains(domain: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        make_message_id(domain)


def test_smtputf8_mail_encodes_subject_and_names_and_keeps_only_the_mailbox_raw() -> None:
    # Given mail to an internationalised mailbox (RFC 6531), with a Japanese subject and names
    subject = "[#7] 同期が止まりました：共有フォルダのファイルが相手側に表示されません"
    msg = build(to_address="用户@例子.example", to_name="山田 太郎", from_name="サポート窓口",
                subject=subject, extra_headers={"X-Team": "株式会社エーシーエムイー"})

    # When serialised as the transport sends it
    raw = msg.as_bytes()
    header = raw.split(b"\r\n\r\n", 1)[0]

    # Then the only non-ASCII bytes are the mailbox itself; every text is an encoded-word
    assert header.replace("用户@例子.example".encode(), b"").isascii()
    assert "<用户@例子.example>".encode() in header
    to_line = next(line for line in header_lines(raw) if line.startswith(b"To:"))
    assert b"=?utf-8?" in to_line and "山田".encode() not in to_line
    assert b"Subject: [#7] =?utf-8?" in header
    assert b"From: =?utf-8?" in header
    assert all(len(line) <= 998 for line in header_lines(raw))

    # And a reader with the default policy (of a UTF-8 message, RFC 6532) gets every value back
    parsed = reparse_utf8(msg)
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.username, to.domain) == ("山田 太郎", "用户", "例子.example")
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "サポート窓口"
    assert parsed["X-Team"] == "株式会社エーシーエムイー"
    body = parsed.get_body(("plain",))
    assert body is not None and "we received your request." in body.get_content()


def test_smtputf8_display_names_with_specials_stay_one_quoted_address() -> None:
    # Given a display name with a comma and quotes, to an internationalised mailbox
    parsed = reparse_utf8(build(to_address="josé@bücher.example", to_name='Müller, "Jo"'))

    # Then it is still exactly one address with that name
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ('Müller, "Jo"', "josé@bücher.example")


@pytest.mark.parametrize("team", ["Acme GmbH", "Acme Corporation International Holdings",
                                  "Müller & Söhne", "A", "Beispiel AG Zweigniederlassung Köln"])
def test_german_quarterly_subject_has_no_double_space_at_its_fold(team: str) -> None:
    # Given the German quarterly subject, whose last word needs an encoded-word
    subject = f"Drei Funktionen, von denen Ihr Team {team} mehr haben könnte"

    # When it is folded into the header and read back
    raw = build(subject=subject).as_bytes()
    parsed = reparse(build(subject=subject))

    # Then it reads exactly as written: no second space where the line was folded
    assert parsed["Subject"] == subject
    assert not re.search(rb"[ \t]\r\n", raw.split(b"\r\n\r\n", 1)[0])


def test_subjects_of_every_length_survive_folding() -> None:
    # Given subjects whose fold falls before, inside and after an encoded word
    for n in range(40, 120, 3):
        subject = f"{'x' * (n % 17 + 1)} " + " ".join(["wort"] * (n // 5)) + " Grüße"
        assert reparse(build(subject=subject))["Subject"] == subject, n


@pytest.mark.parametrize("content_type", [
    "message/delivery-status", "message/rfc822", "message/global", "message/partial",
    "message/disposition-notification", "message/global-headers", "multipart/mixed", "x",
])
def test_a_senders_message_or_multipart_file_travels_as_bytes(content_type: str) -> None:
    # A customer's file, relayed as received: the standard library cannot write raw bytes
    # as message/delivery-status (the whole mail failed) and would base64 a message/rfc822
    data = b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n"
    name = "report" if content_type.startswith("message/") else "file.bin"
    parsed = reparse(build(attachments=[(name, content_type, data)]))
    (part,) = list(parsed.iter_attachments())
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_content() == data
    expected = "report.eml" if content_type in {"message/rfc822", "message/global"} else name
    assert part.get_filename() == expected
