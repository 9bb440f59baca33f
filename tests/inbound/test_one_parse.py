"""One parse of the raw bytes per message, shared by every reader (issue 15).

Given real messages (multipart delivery reports, one whose report goes on to GNU
Mailman's ``flufl.bounce``, a plain-text bounce, a multipart auto-reply, a multipart mail
with HTML and a real client's HTML-only reply), when each is analysed as the pipeline
does, then the standard library's parser reads the message's bytes exactly once, and
mail-parser's survey (``message._DefectSurvey``) and ``flufl.bounce`` read that same
tree instead of parsing their own.
"""

from __future__ import annotations

import email.parser
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, Any

import pytest
from flufl.bounce import all_failures

from inbound.parsing import message as message_module
from inbound.parsing.analysis import analyze
from tests.corpus import corpus_bytes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "html_replies"
MESSAGES = [
    ("bounces", "bounceparser/no-message-collected.msg"),  # multipart/report, flufl.bounce
    ("bounces", "sisimai/lhost-postfix-01.eml"),  # RFC 3464 DSN
    ("bounces", "sisimai/lhost-qmail-01.eml"),  # plain-text report
    ("autoreplies", "sisimai/rfc3834-06.eml"),  # multipart auto-reply, flufl.bounce asked
    ("threads", "notmuch-default/bar__baz__05.eml"),  # multipart/alternative with HTML
]


@dataclass
class Readers:
    """What the parser entry points and the libraries were given during one analysis."""

    parsed_texts: list[str] = field(default_factory=list)
    trees: list[Message] = field(default_factory=list)
    surveyed: list[Message] = field(default_factory=list)
    bounce_library: list[Message] = field(default_factory=list)

    def parses_of(self, raw: bytes) -> list[Message]:
        """The trees parsed from ``raw`` itself (whole, or its header block and a prefix),
        as opposed to a part's text parsed on its own."""
        text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode(
            "ascii", "surrogateescape")
        return [tree for given, tree in zip(self.parsed_texts, self.trees, strict=True)
                if given and text.startswith(given)]


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Readers]:
    seen = Readers()
    # Every stdlib entry point (message_from_bytes/string/file, BytesParser,
    # BytesHeaderParser, HeaderParser) ends in Parser.parse.
    original_parse = email.parser.Parser.parse

    def parse(self: email.parser.Parser, fp: IO[str], headersonly: bool = False) -> Message:
        text = fp.read()
        tree = original_parse(self, io.StringIO(text), headersonly)
        seen.parsed_texts.append(text)
        seen.trees.append(tree)
        return tree

    original_survey = message_module._DefectSurvey
    original_failures = all_failures

    def survey(message: Message) -> Any:
        seen.surveyed.append(message)
        return original_survey(message)

    def failures(message: Message) -> Any:
        seen.bounce_library.append(message)
        return original_failures(message)

    monkeypatch.setattr(email.parser.Parser, "parse", parse)
    monkeypatch.setattr(message_module, "_DefectSurvey", survey)
    monkeypatch.setattr("inbound.parsing.bounces.all_failures", failures)
    yield seen


def _html_reply() -> bytes:
    html = (FIXTURES / "ms_outlook_2007.html").read_bytes()
    return (b"From: Alex <alex@example.org>\r\nTo: support@support.example\r\n"
            b"Subject: Re: Test message\r\nMessage-ID: <html-reply@example.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + html)


def _assert_one_parse(readers: Readers, raw: bytes) -> None:
    trees = readers.parses_of(raw)
    assert len(trees) == 1, f"the message's bytes were parsed {len(trees)} times"
    (tree,) = trees
    assert len(readers.surveyed) == 1, "mail-parser surveys the message once"
    assert all(given is tree for given in readers.surveyed), "mail-parser parsed its own"
    assert all(given is tree for given in readers.bounce_library), "flufl.bounce got another tree"


@pytest.mark.parametrize("envelope", ["<>", "relay@forwarder.example"])
@pytest.mark.parametrize(("folder", "name"), MESSAGES, ids=[n for _f, n in MESSAGES])
def test_real_messages_are_parsed_once_and_the_tree_is_shared(
        readers: Readers, folder: str, name: str, envelope: str) -> None:
    # Given a real message of the corpus
    raw = corpus_bytes(folder, name)
    # When it is analysed as the pipeline does
    analysis = analyze(raw, envelope)
    # Then its bytes were parsed once, and every library read that one tree
    _assert_one_parse(readers, raw)
    assert analysis.parsed.subject


def test_the_bounce_library_reads_the_shared_tree(readers: Readers) -> None:
    # Given a multipart/report whose recipients only GNU Mailman's detectors name
    raw = corpus_bytes("bounces", "bounceparser/no-message-collected.msg")
    # When it is analysed
    analysis = analyze(raw, "relay@forwarder.example")
    # Then it is a bounce, flufl.bounce was asked, and it read the one parsed tree
    assert analysis.bounce is not None and analysis.bounce.kind == "bounce"
    assert readers.bounce_library, "flufl.bounce was not asked: the test proves nothing"
    _assert_one_parse(readers, raw)


def test_an_html_reply_of_a_real_client_is_parsed_once(readers: Readers) -> None:
    # Given Outlook 2007's HTML-only reply
    raw = _html_reply()
    # When it is analysed
    analysis = analyze(raw, "alex@example.org")
    # Then its new text comes from the HTML, from one parse of the bytes
    assert analysis.reply.visible.startswith("Hi. I am fine.")
    assert analysis.automatic is None and analysis.bounce is None
    _assert_one_parse(readers, raw)
