"""Every message of the shared real-world corpus goes through the parsing layer.

Given each corpus file, when it is parsed (rfc822) or split (body text), then
it returns within a time bound, with text that can be stored, and with the
facts the corpus index records (threading ids, charsets, same result whatever
the line endings).
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import pytest

from inbound.parsing.message import ParsedMail, normalize_message_id, parse_message
from inbound.parsing.reply_text import split_reply
from tests.corpus import corpus_available, corpus_dir, load_index

CATEGORIES = ("replies", "multilingual", "autoreplies", "bounces", "malformed", "threads")
#: Generous per-message bound (it catches hangs, not slowness): the slowest corpus
#: message, 3 MB of nested enclosures, takes about 1 s on an idle machine.
PARSE_SECONDS = 10.0
SPLIT_SECONDS = 2.0


def _entries(*, fmt: str | None = None, folders: tuple[str, ...] = CATEGORIES) -> list[Any]:
    if not corpus_available():  # one placeholder that fails in corpus_dir()
        return [pytest.param("missing", {"file": "missing"}, id="corpus-missing")]
    params = []
    for folder in folders:
        for entry in load_index(folder)["entries"]:
            if fmt is None or entry["format"] == fmt:
                params.append(pytest.param(folder, entry, id=f"{folder}/{entry['file']}"))
    return params


def _raw(folder: str, entry: dict[str, Any]) -> bytes:
    path = corpus_dir() / folder / str(entry["file"])
    return path.read_bytes()


def _parse_timed(raw: bytes) -> tuple[ParsedMail, float]:
    started = time.perf_counter()
    parsed = parse_message(raw)
    return parsed, time.perf_counter() - started


def _storable(value: str) -> bool:
    """UTF-8 encodable (no lone surrogates) and free of NUL, as databases require."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def test_corpus_has_every_category() -> None:
    # Given the corpus index files, then each category is present and non-empty.
    for folder in CATEGORIES:
        index = load_index(folder)
        assert index["entries"], folder
        assert index["count"] == len(index["entries"]), folder


@pytest.mark.parametrize(("folder", "entry"), _entries(fmt="rfc822"))
def test_rfc822_message_parses_within_bounds(folder: str, entry: dict[str, Any]) -> None:
    # Given a complete message from the corpus, when it is parsed,
    parsed, elapsed = _parse_timed(_raw(folder, entry))

    # then it comes back quickly, without falling into the last-resort path,
    assert elapsed < PARSE_SECONDS, f"parse took {elapsed:.2f}s"
    assert not [d for d in parsed.defects if d.startswith("parser failure")], parsed.defects
    # with storable, normalised text
    assert "\r" not in parsed.text
    assert "\x1b" not in parsed.text + parsed.subject, "undecoded ISO-2022 escape sequences"
    header_values = [value for values in parsed.headers.values() for value in values]
    for value in (parsed.subject, parsed.text, parsed.from_name, *header_values):
        assert _storable(value)
    assert parsed.date is None or parsed.date.utcoffset() == timedelta(0)
    assert parsed.content_type == parsed.content_type.lower() and "/" in parsed.content_type
    # and attachments that describe their data.
    for attachment in parsed.attachments:
        assert attachment.filename.strip() and _storable(attachment.filename)
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert attachment.size == len(attachment.data)
        assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
        assert attachment.content_type == attachment.content_type.lower()

    # When the parsed body goes on to the reply splitter, that is quick too.
    started = time.perf_counter()
    parts = split_reply(parsed.text)
    assert time.perf_counter() - started < SPLIT_SECONDS
    if parsed.text.strip() and not parts.visible:
        assert parts.quoted, "text vanished: neither visible nor quoted"


@pytest.mark.parametrize(("folder", "entry"), _entries(fmt="body-text"))
def test_body_text_splits_within_bounds(folder: str, entry: dict[str, Any]) -> None:
    # Given a decoded reply body, when it is split,
    text = _raw(folder, entry).decode("utf-8")
    limit = float(entry.get("expected_max_parse_seconds", SPLIT_SECONDS))
    started = time.perf_counter()
    parts = split_reply(text)
    elapsed = time.perf_counter() - started

    # then it finishes in time and never loses the sender's text entirely.
    assert elapsed < limit, f"split took {elapsed:.2f}s (limit {limit}s)"
    if text.strip() and not parts.visible:
        assert parts.quoted, "text vanished: neither visible nor quoted"


_SAME_AS = [
    param
    for param in _entries(folders=("malformed",))
    if "expected_same_as" in param.values[1] or param.id == "corpus-missing"
]


@pytest.mark.parametrize(("folder", "entry"), _SAME_AS)
def test_line_endings_do_not_change_the_result(folder: str, entry: dict[str, Any]) -> None:
    # Given a bounce stored with CRLF or CR-only line endings and its LF copy,
    other = corpus_dir() / str(entry.get("expected_same_as"))
    converted = parse_message(_raw(folder, entry))
    original = parse_message(other.read_bytes())

    # when both are parsed, then what a user sees is the same.
    for name in ("subject", "text", "html", "from_address", "message_id", "date", "to"):
        assert getattr(converted, name) == getattr(original, name), name
    assert converted.content_type == original.content_type
    assert converted.report_type == original.report_type
    names = [(a.filename, a.content_type) for a in converted.attachments]
    assert names == [(a.filename, a.content_type) for a in original.attachments]


@pytest.mark.parametrize(("folder", "entry"), _entries(folders=("threads",)))
def test_thread_ids_match_the_index(folder: str, entry: dict[str, Any]) -> None:
    # Given an archived list message with its known place in the thread,
    parsed = parse_message(_raw(folder, entry))

    # then its own id is read, and its declared parent follows the rule
    # "the single In-Reply-To id, else the last References id".
    assert parsed.message_id == normalize_message_id(entry["message_id"])
    parent: str | None = None
    if len(parsed.in_reply_to) == 1:
        parent = parsed.in_reply_to[0]
    elif parsed.references:
        parent = parsed.references[-1]
    assert parent == normalize_message_id(entry.get("expected_parent_message_id"))


def _multilingual(name: str) -> ParsedMail:
    return parse_message((corpus_dir() / "multilingual" / name).read_bytes())


def test_iso_2022_jp_headers_and_body_decode() -> None:
    parsed = _multilingual("mikel-mail/japanese_iso_2022.eml")
    assert parsed.subject == "まみむめも"
    assert parsed.text == "すみません。"
    assert parsed.to == ("raasdnil@gmail.com",)


def test_shift_jis_body_decodes() -> None:
    parsed = _multilingual("mikel-mail/japanese_shift_jis.eml")
    assert parsed.text.startswith("あいうえお\n\nこのメールはテスト用のメールです。")


def test_ks_c_5601_body_decodes() -> None:
    parsed = _multilingual("mikel-mail/ks_c_5601-1987.eml")
    assert parsed.text == "스티해"
    assert not [d for d in parsed.defects if "charset" in d]


def test_rfc6532_utf8_headers_decode() -> None:
    parsed = _multilingual("mikel-mail/utf8_headers.eml")
    assert parsed.subject == "Säying Hello"
    assert parsed.from_address == "jdöe@mächine.example"
    assert parsed.from_name == "Jöhn Doe"
    assert parsed.to == ("märy@exämple.net",)


def test_long_rfc2231_japanese_attachment_name_decodes() -> None:
    parsed = _multilingual("mikel-mail/japanese_attachment_long_name.eml")
    assert [a.filename for a in parsed.attachments] == ["かきくけこ" * 5 + ".txt"]
    assert parsed.subject == "まみむめも" * 10


def test_raw_utf8_attachment_name_is_not_mangled() -> None:
    parsed = _multilingual("flanker/russian-attachment-yahoo.eml")
    (picture,) = parsed.attachments
    assert picture.filename.startswith("Картинка с очень, очень длинным")
    assert picture.content_type == "image/png"
    assert picture.data.startswith(b"\x89PNG")


def test_mislabelled_euc_jp_bounce_is_read() -> None:
    # Given a Japanese carrier bounce labelled ISO-2022-JP that is really EUC-JP,
    parsed = parse_message((corpus_dir() / "bounces/sisimai/lhost-ezweb-02.eml").read_bytes())
    # then the text is readable and the mislabel is recorded.
    assert parsed.text.startswith("次のあて先へのメッセージはエラーのため送信できませんでした。")
    assert any("euc_jp" in d for d in parsed.defects)
    assert parsed.report_type == "delivery-status"


@pytest.mark.parametrize(
    ("folder", "entry"),
    _entries(fmt="rfc822", folders=("multilingual",)),
)
def test_multilingual_messages_decode_without_replacement(
    folder: str, entry: dict[str, Any]
) -> None:
    parsed = parse_message(_raw(folder, entry))
    assert "\ufffd" not in parsed.subject + parsed.text + parsed.from_name
    assert parsed.text.strip() or parsed.attachments


def test_mailparser_failure_falls_back_to_stdlib_checks() -> None:
    # Given a SendGrid bounce on which mail-parser's MailParser raises AttributeError,
    raw = (corpus_dir() / "bounces/sisimai/lhost-sendgrid-01.eml").read_bytes()
    parsed = parse_message(raw)
    # then the message is still fully read and the failure is noted.
    assert parsed.subject == "Undelivered Mail Returned to Sender"
    assert parsed.text.startswith("This is an automatically generated message from SendGrid.")
    assert parsed.report_type == "delivery-status"
    assert any(d.startswith("mail-parser failed") for d in parsed.defects)


def test_huge_and_hostile_messages_stay_bounded() -> None:
    # Given the MIME torture test, the endless enclosure and the 200 KB header,
    results = {}
    for name in ("torture.eml", "enclosed-endless.eml", "long-header.eml"):
        parsed, elapsed = _parse_timed((corpus_dir() / "malformed/flanker" / name).read_bytes())
        # then each is read, quickly, with its top-level text and parts.
        assert elapsed < PARSE_SECONDS, name
        assert parsed.subject, name
        results[name] = parsed
    torture = results["torture.eml"]
    assert torture.text.startswith("This is a demonstration of multi-part mail")
    assert len(torture.attachments) >= 10
    endless = results["enclosed-endless.eml"]
    assert endless.text == "Hello"
    assert [a.content_type for a in endless.attachments] == ["message/rfc822"]
    assert results["long-header.eml"].subject.startswith("Die heiße Zypernsonne")
