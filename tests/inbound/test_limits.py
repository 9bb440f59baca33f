"""Per-message limits on the raw bytes and in the parser (inbound/limits.py, parse, tnef)."""

from __future__ import annotations

import base64

import pytest
from tnefparse.tnef import TNEF

from inbound.limits import Limits, contain
from inbound.parsing.analysis import analyze
from inbound.parsing.headers import header_text
from inbound.parsing.message import decode_encoded_words, parse_message
from inbound.parsing.tnef import TnefError, unpack_tnef
from tests import crafted


def test_an_ordinary_message_passes_untouched() -> None:
    raw = crafted.many_parts(3)
    assert contain(raw, Limits()).raw is raw


def test_a_long_header_field_is_cut_and_the_rest_kept() -> None:
    # Given a Subject of 5,000 encoded words, folded, and a limit of 4 KiB per field,
    raw = crafted.encoded_subject(5000).replace(b"?= =?", b"?=\n =?")
    analysis = analyze(raw, limits=Limits(max_header_bytes=4096))
    # then the subject is its first words, the body is intact and the cut is said.
    assert analysis.parsed.subject.startswith("Grüße Grüße")
    assert 100 < len(analysis.parsed.subject) < 4096
    assert analysis.parsed.text == "A very long subject."
    assert not analysis.quarantine
    assert any("max_header_bytes (4,096) cut: Subject" in note for note in analysis.limits_hit)


def test_a_huge_header_block_is_a_reason_to_quarantine() -> None:
    fillers = b"".join(b"X-Filler-%d: %s\n" % (n, b"x" * 90) for n in range(2000))
    analysis = analyze(fillers + crafted.plain("Hello", sender="a@b.example", subject="Hi"),
                       limits=Limits(max_header_block_bytes=64 * 1024))
    assert "over max_header_block_bytes (65,536)" in analysis.quarantine


def test_mime_parts_beyond_the_limit_are_not_read() -> None:
    # Given 500 parts, a limit of 20, and text lines that start with "--" (a signature),
    raw = crafted.many_parts(500).replace(b"Please see the parts.",
                                          b"Please see the parts.\n-- \n--Anna\n" * 30)
    contained = contain(raw, Limits(max_mime_parts=20))
    # then the bytes stop before the 21st delimiter (signature lines do not count),
    assert contained.raw.count(b"\n--b\n") == 20
    parsed = parse_message(contained.raw, Limits(max_mime_parts=20))
    assert parsed.text.startswith("Please see the parts.")
    assert "max_mime_parts (20)" in contained.notes[0]


def test_attachments_beyond_count_and_size_are_dropped_and_listed() -> None:
    raw = crafted.winmail(12)
    parsed = parse_message(raw, Limits(max_attachments=5))
    assert [a.filename for a in parsed.attachments] == [f"file-{n:05d}.txt" for n in range(5)]
    # (file n holds b"x<n>\n": 3 bytes below ten, 4 from ten on)
    assert parsed.dropped == tuple((f"file-{n:05d}.txt", len(b"x%d\n" % n))
                                   for n in range(5, 12))
    assert any("7 attachment(s) of 23 bytes not stored" in n for n in parsed.limits_hit)
    by_size = parse_message(raw, Limits(max_attachments_bytes=10))
    assert [a.filename for a in by_size.attachments] == [
        "file-00000.txt", "file-00001.txt", "file-00002.txt"]


def test_tnef_over_the_object_limit_is_refused_as_a_limit() -> None:
    blob = crafted.tnef_blob([(f"f{n}.txt", b"x") for n in range(100)])
    with pytest.raises(TnefError) as refused:
        unpack_tnef(blob, max_objects=50)
    assert refused.value.limit and "max_tnef_objects (50)" in str(refused.value)


def test_linear_tnef_walk_reads_what_tnefparse_reads() -> None:
    # The same blob through tnefparse's own (quadratic) loop and through ours.
    files = [(f"report-{n}.txt", b"line %d\n" % n * (n + 1)) for n in range(40)]
    blob = crafted.tnef_blob(files, body="Hello from Outlook")
    ours = unpack_tnef(blob)
    theirs = TNEF(blob, do_checksum=False)
    assert [(f.filename, f.data) for f in ours.files] == [
        (a.long_filename(), a.data) for a in theirs.attachments]
    assert ours.body == theirs.body.decode() == "Hello from Outlook"


def test_adjacent_encoded_words_are_joined_before_decoding() -> None:
    # A multibyte character split across two words, many times over.
    first, second = "ü".encode()[:1], "ü".encode()[1:]
    words = " ".join(f"=?utf-8?B?{base64.b64encode(part).decode()}?="
                     for _ in range(2000) for part in (first, second))
    assert decode_encoded_words(words)[0] == "ü" * 2000
    assert header_text(words) == "ü" * 2000
