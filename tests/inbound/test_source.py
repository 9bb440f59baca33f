"""The one read of a message's bytes (``inbound.parsing.source``) that every reader shares."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from inbound.parsing.analysis import analyze, raw_header_values
from inbound.parsing.source import header_values, read_source
from tests.corpus import corpus_dir

SIGNED = (b"Authentication-Results: mx.support.example; dkim=pass\r\n"
          b"\theader.d=acme.example; dmarc=pass header.from=acme.example\r\n"
          b"Received: from relay.example\r\n"
          b"Authentication-Results: relay.example; spf=pass smtp.mailfrom=\xc3\xa4@acme.example\r\n"
          b"From: Anna <anna@acme.example>\r\nSubject: Hello\r\n\r\nBody\r\n")


def test_header_values_read_from_the_tree_as_received() -> None:
    # Given folded and repeated Authentication-Results fields, one with raw UTF-8
    source = read_source(SIGNED)
    # When they are read from the shared tree
    values = header_values(source.message, "authentication-results")
    # Then they are the fields of the header block, topmost first, unfolded and undecoded,
    # exactly what a scan of the bytes finds
    assert values == raw_header_values(SIGNED, "authentication-results")
    assert values == ("mx.support.example; dkim=pass header.d=acme.example; dmarc=pass "
                      "header.from=acme.example",
                      "relay.example; spf=pass smtp.mailfrom=ä@acme.example")
    assert analyze(SIGNED).authentication_results == values


def test_a_field_inside_the_body_of_a_cr_only_message_is_not_a_header() -> None:
    # Given a CR-only message whose body quotes another message's Authentication-Results
    raw = (b"From: postmaster@mx.example\rSubject: Undeliverable\r\r"
           b"Original message headers:\rAuthentication-Results: forged; dmarc=pass\r")
    # When it is analysed
    analysis = analyze(raw)
    # Then the quoted field is body text, not a header of this message
    assert analysis.authentication_results == ()
    assert "Authentication-Results: forged" in analysis.parsed.text


def test_a_structure_too_deep_to_build_leaves_the_header_fields_and_the_text() -> None:
    # Given a message nested deeper than the parser can recurse
    depth = 5000
    raw = (b"From: a@example.org\nSubject: deep\nContent-Type: message/rfc822\n\n"
           + b"Content-Type: message/rfc822\n\n" * depth + b"x\n")
    # When it is read
    source = read_source(raw)
    # Then the source says why, keeps the header fields and the body as text; the parser
    # keeps the whole message as an attachment
    assert source.defect == "MIME structure nested too deeply to parse"
    assert source.message["subject"] == "deep"
    assert isinstance(source.message.get_payload(), str)
    parsed = analyze(raw).parsed
    assert parsed.subject == "deep"
    assert any(a.filename == "original-message.eml" for a in parsed.attachments)


def test_a_bounded_view_cuts_a_copy_and_leaves_the_tree_whole() -> None:
    # Given a two-part message whose attachment is large
    big = b"A" * 200_000
    raw = (b"From: MAILER-DAEMON@mx.example\nSubject: failure notice\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
           b"Delivery failed for bob@example.org\n--b\nContent-Type: text/plain\n\n"
           + big + b"\n--b--\n")
    source = read_source(raw)
    # When a reader asks for a view of at most 1,000 payload characters
    view = source.bounded_view(1_000, 10)
    # Then the view is cut and the shared tree is not
    parts = [part for part in view.get_payload() if isinstance(part, Message)]
    assert len(parts) == 2
    assert sum(len(str(part.get_payload())) for part in parts) <= 1_000
    assert view["subject"] == "failure notice"
    whole = [part for part in source.message.get_payload() if isinstance(part, Message)]
    assert len(str(whole[1].get_payload())) > 200_000 - 10


def _same_tree(built: Message, expected: Message) -> bool:
    """Header fields, payloads, preamble, epilogue and defects, part by part."""
    if (list(built.raw_items()) != list(expected.raw_items())
            or (built.preamble, built.epilogue, built.get_default_type())
            != (expected.preamble, expected.epilogue, expected.get_default_type())
            or [type(d) for d in built.defects] != [type(d) for d in expected.defects]):
        return False
    mine, theirs = built.get_payload(), expected.get_payload()
    if isinstance(mine, list) and isinstance(theirs, list):
        return len(mine) == len(theirs) and all(
            _same_tree(a, b) for a, b in zip(mine, theirs, strict=True))
    return mine == theirs


def test_the_one_read_builds_the_tree_the_bytes_parser_builds() -> None:
    # Given the corpus's messages: nested multiparts, missing boundaries, 8-bit junk,
    # attachments larger than the parser's 8 KB reads
    files = sorted(path for path in corpus_dir().rglob("*")
                   if path.is_file() and path.suffix in {".eml", ".msg"})
    assert len(files) > 500
    for path in files:
        data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # When read_source parses the text in one read
        source = read_source(data)
        # Then the tree is the one BytesParser.parsebytes (8 KB reads) builds
        if not source.defect:
            assert _same_tree(source.message, BytesParser(policy=compat32).parsebytes(data)), path
