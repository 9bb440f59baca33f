"""Unit tests for inbound.parsing.message with small synthetic mails.

Each test builds a message the way a real client would send it, parses it and
checks what an agent or a later pipeline step relies on.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from datetime import UTC, datetime
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.parsing.message import (
    MAX_PARTS,
    Attachment,
    ParsedMail,
    extract_message_ids,
    normalize_message_id,
    parse_message,
)


def _mail(*header_lines: str, body: str = "Hello\n") -> bytes:
    return ("\n".join(header_lines) + "\n\n" + body).encode("utf-8")


# --- headers ---------------------------------------------------------------------------


def test_rfc2047_subject_is_decoded_and_unfolded() -> None:
    # Given a subject in Q and B encoded words, folded over two lines,
    raw = _mail(
        "From: a@example.org",
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?=",
        " =?ISO-8859-1?B?S/ZsbiE=?= [#42]",
    )
    # when parsed, then it reads as one decoded line.
    assert parse_message(raw).subject == "Grüße ausKöln! [#42]"


def test_multibyte_character_split_across_encoded_words_is_joined() -> None:
    # Given "日本" whose UTF-8 bytes are split over two encoded words,
    encoded = "日本".encode()
    first = base64.b64encode(encoded[:4]).decode()
    second = base64.b64encode(encoded[4:]).decode()
    raw = _mail(f"Subject: =?utf-8?b?{first}?= =?utf-8?b?{second}?=")
    # then the subject is the two characters, not replacement characters.
    assert parse_message(raw).subject == "日本"


def test_iso_2022_jp_subject_and_body() -> None:
    # Given a classic Japanese mail: ISO-2022-JP in an encoded word and a 7-bit body,
    subject = base64.b64encode("お問い合わせ".encode("iso2022_jp")).decode()
    body = "いつもお世話になっております。\r\n".encode("iso2022_jp")
    raw = (
        f"From: =?ISO-2022-JP?B?{base64.b64encode('山田'.encode('iso2022_jp')).decode()}?="
        " <yamada@example.jp>\r\n"
        f"Subject: =?ISO-2022-JP?B?{subject}?=\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
    ).encode("ascii") + body
    parsed = parse_message(raw)
    # then subject, sender name and text are Japanese, not escape sequences.
    assert parsed.subject == "お問い合わせ"
    assert parsed.from_name == "山田"
    assert parsed.from_address == "yamada@example.jp"
    assert parsed.text == "いつもお世話になっております。"
    assert parsed.defects == ()


def test_addresses_are_lowercased_addr_specs() -> None:
    raw = _mail(
        'From: "Doe, Jane" <Jane.Doe@Example.ORG>',
        "To: Support <SUPPORT@example.net>, other@example.net",
        "Cc: undisclosed-recipients:;",
        "Reply-To: <Replies@Example.org>",
    )
    parsed = parse_message(raw)
    assert (parsed.from_name, parsed.from_address) == ("Doe, Jane", "jane.doe@example.org")
    assert parsed.to == ("support@example.net", "other@example.net")
    assert parsed.cc == ()
    assert parsed.reply_to == ("replies@example.org",)


def test_unparseable_or_missing_from_gives_none() -> None:
    missing = parse_message(_mail("Subject: no sender"))
    assert missing.from_address is None and missing.from_name == ""
    broken = parse_message(_mail("From: John Smith <john@example.com"))
    assert broken.from_address is None
    assert any(d.startswith("from:") or "AddressHeaderDefect" in d for d in broken.defects)


def test_date_is_aware_utc_and_bad_dates_are_none() -> None:
    good = parse_message(_mail("Date: Tue, 01 Jun 2010 10:00:00 +0200"))
    assert good.date == datetime(2010, 6, 1, 8, 0, tzinfo=UTC)
    for lenient_date in ("2014-05-28 08:18:19 +0000", "Wed May 28 08:18:19 2014"):
        lenient = parse_message(_mail(f"Date: {lenient_date}"))
        assert lenient.date == datetime(2014, 5, 28, 8, 18, 19, tzinfo=UTC)
        assert any("read leniently" in d for d in lenient.defects)
    bad = parse_message(_mail("Date: yesterday-ish"))
    assert bad.date is None
    assert any("date" in d.lower() for d in bad.defects)


def test_headers_keep_every_value_decoded() -> None:
    raw = _mail(
        "Received: from a by b",
        "Received: from c by d",
        "X-Custom: =?utf-8?q?caf=C3=A9?=",
        "SUBJECT: Hi",
    )
    parsed = parse_message(raw)
    assert parsed.headers["received"] == ("from a by b", "from c by d")
    assert parsed.header("x-custom") == "café"
    assert parsed.header("Subject") == "Hi"
    assert parsed.header("X-Missing") is None


# --- message ids -----------------------------------------------------------------------


def test_message_id_references_and_in_reply_to_are_normalised() -> None:
    # Given threading headers with comments, junk text, folding and duplicates,
    raw = _mail(
        "Message-ID:   <abc.123@mail.example.org> ",
        'In-Reply-To: <parent@example.org> (Lars Kellogg-Stedman\'s message of "Tue, 17 Nov 2009")',
        "References: <root@example.org>",
        "\t<middle@example.org> junk <root@example.org>",
        "  <parent@example.org>",
    )
    parsed = parse_message(raw)
    # then ids have no brackets, junk is ignored and duplicates removed (oldest first).
    assert parsed.message_id == "abc.123@mail.example.org"
    assert parsed.in_reply_to == ("parent@example.org",)
    assert parsed.references == ("root@example.org", "middle@example.org", "parent@example.org")


def test_blank_message_id_is_none() -> None:
    assert parse_message(_mail("Message-ID:   ")).message_id is None
    assert parse_message(_mail("Subject: x")).message_id is None


def test_an_id_with_a_control_character_is_no_id() -> None:
    assert normalize_message_id("<evil\x1cid@acme.example>") is None
    assert normalize_message_id("evil\u2028id@acme.example") is None
    assert extract_message_ids("<a@b> <evil\x85id@acme.example> <c@d>") == ("a@b", "c@d")
    assert extract_message_ids("a@b evil\x07id@acme.example") == ("a@b",)


def test_normalize_message_id() -> None:
    assert normalize_message_id(" <a@b> ") == "a@b"
    assert normalize_message_id("a@b") == "a@b"
    assert normalize_message_id("<a@\n b>") == "a@b"
    assert normalize_message_id("junk <a@b> more") == "a@b"
    assert normalize_message_id("") is None
    assert normalize_message_id("  <> ") is None
    assert normalize_message_id(None) is None


def test_extract_message_ids_tolerates_junk() -> None:
    assert extract_message_ids(None) == ()
    assert extract_message_ids("<a@b> <c@d> <a@b>") == ("a@b", "c@d")
    # An address inside a comment is not an id; an unbalanced quote hides nothing.
    assert extract_message_ids('<x@y> ("Ann" <ann@example.org>\'s note)') == ("x@y",)
    assert extract_message_ids('Your message of "Mon, 1 Jan <id@host>') == ("id@host",)
    # Some clients leave out the brackets.
    assert extract_message_ids("1234@host.example") == ("1234@host.example",)


# --- bodies ----------------------------------------------------------------------------


def test_html_only_mail_becomes_readable_text() -> None:
    # Given an HTML-only mail with paragraphs, a list, a link, a script and a style,
    html = (
        "<html><head><style>p {color: red}</style><script>alert('x')</script></head>"
        "<body><p>Dear support,</p><p>the export fails:<br>step one<br>step two</p>"
        "<ul><li>Version 4.2</li><li>Windows 11</li></ul>"
        '<p>See <a href="https://example.org/log.txt">the log</a>.</p></body></html>'
    )
    message = EmailMessage()
    message["From"] = "c@example.org"
    message.set_content(html, subtype="html")
    parsed = parse_message(message.as_bytes())
    # then the text keeps paragraphs, line breaks, list items and link targets,
    assert parsed.text.startswith("Dear support,\n\nthe export fails:\nstep one\nstep two")
    assert "* Version 4.2\n" in parsed.text and "* Windows 11" in parsed.text
    assert "[the log](https://example.org/log.txt)" in parsed.text
    # but no script or style, and the raw HTML is kept separately.
    assert "alert" not in parsed.text and "color" not in parsed.text
    assert parsed.html is not None and "<ul>" in parsed.html


def test_huge_or_absurd_html_is_converted_quickly_without_losing_words() -> None:
    # Given HTML the layout engine would need many seconds for, or cannot nest,
    huge = "<table>" + ("<tr>" + "<td>cell</td>" * 300 + "</tr>") * 300 + "</table>"
    deep = "<div>" * 20000 + "still here" + "</div>" * 20000
    for html, needle in ((huge, "cell cell"), (deep, "still here")):
        message = EmailMessage()
        message.set_content(html, subtype="html")
        started = time.perf_counter()
        parsed = parse_message(message.as_bytes())
        # then the text is produced quickly and keeps the words.
        assert time.perf_counter() - started < 3.0
        assert needle in parsed.text


def test_alternative_prefers_plain_text_but_keeps_html() -> None:
    message = EmailMessage()
    message.set_content("Plain words.\n")
    message.add_alternative("<p>HTML words.</p>", subtype="html")
    parsed = parse_message(message.as_bytes())
    assert parsed.text == "Plain words."
    assert parsed.html is not None and "HTML words." in parsed.html


def test_empty_plain_alternative_falls_back_to_html() -> None:
    message = EmailMessage()
    message.set_content("\n")
    message.add_alternative("<p>Only here.</p>", subtype="html")
    assert parse_message(message.as_bytes()).text == "Only here."


def test_unknown_charset_is_decoded_with_a_defect() -> None:
    raw = b"Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xc3\xa9 and more\n"
    parsed = parse_message(raw)
    assert parsed.text == "café and more"
    assert any("unknown charset" in d for d in parsed.defects)


def test_undeclared_latin1_body_is_read_as_windows_1252() -> None:
    parsed = parse_message(b"Subject: x\n\nK\xf6ln \x80 5\n")
    assert parsed.text == "Köln € 5"
    assert parsed.defects


def test_misspelt_transfer_encoding_is_still_decoded() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: Quoted-Printable ;\n\n"
        b"Gr=C3=BC=C3=9Fe\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "Grüße"
    assert any("quoted-printable" in d for d in parsed.defects)


def test_line_endings_do_not_matter() -> None:
    lf = b"From: a@example.org\nSubject: Hi\nContent-Type: text/plain\n\nline one\nline two\n"
    for raw in (lf, lf.replace(b"\n", b"\r\n"), lf.replace(b"\n", b"\r")):
        parsed = parse_message(raw)
        assert (parsed.subject, parsed.text) == ("Hi", "line one\nline two")
        assert parsed.from_address == "a@example.org"


# --- attachments -----------------------------------------------------------------------


def test_attachment_is_recorded_with_name_type_size_and_hash() -> None:
    # Given a mail with a PDF whose name is RFC 2231 encoded and an inline image,
    pdf = b"%PDF-1.4 fake" + bytes(range(256))
    png = b"\x89PNG\r\n\x1a\nfake"
    message = EmailMessage()
    message["Subject"] = "Invoice"
    message.set_content("See attached.\n")
    message.add_alternative('<p>See <img src="cid:logo@example"></p>', subtype="html")
    html_part = message.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(png, maintype="image", subtype="png", cid="<logo@example>")
    message.add_attachment(pdf, maintype="application", subtype="PDF", filename="Rechnung März.pdf")
    parsed = parse_message(message.as_bytes())

    # then the PDF is an attachment with its decoded name, type, size and hash,
    pdf_attachment = next(a for a in parsed.attachments if a.content_type == "application/pdf")
    assert pdf_attachment == Attachment(
        filename="Rechnung März.pdf",
        content_type="application/pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        data=pdf,
        inline=False,
        content_id=None,
    )
    # the image referenced by Content-ID is inline,
    image = next(a for a in parsed.attachments if a.content_type == "image/png")
    assert image.inline and image.content_id == "logo@example"
    assert image.filename == "attachment-1.png"
    # and the body text is not an attachment.
    assert parsed.text == "See attached."
    assert len(parsed.attachments) == 2


def test_attachment_names_are_synthesised_and_sanitised() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=XX\n\n"
        b"--XX\nContent-Type: text/plain\n\nbody\n"
        b"--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        b"AAEC\n"
        b"--XX\nContent-Type: text/plain\n"
        b'Content-Disposition: attachment; filename="../../etc/passwd"\n\n'
        b"secret\n"
        b"--XX--\n"
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["attachment-1.bin", "passwd"]
    assert parsed.attachments[0].data == b"\x00\x01\x02"
    assert parsed.text == "body"


def test_forwarded_message_is_kept_as_an_eml_attachment() -> None:
    inner = EmailMessage()
    inner["Subject"] = "Original problem"
    inner.set_content("the original words\n")
    outer = EmailMessage()
    outer.set_content("Please see the forwarded mail.\n")
    outer.add_attachment(inner)
    parsed = parse_message(outer.as_bytes())
    assert parsed.text == "Please see the forwarded mail."
    (forwarded,) = parsed.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Original problem.eml"
    assert parse_message(forwarded.data).text == "the original words"


def test_delivery_report_type_and_parts() -> None:
    raw = (
        b"From: MAILER-DAEMON@example.org\n"
        b"Content-Type: multipart/report; report-type=Delivery-Status; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\nYour mail could not be delivered.\n"
        b"--B\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; x@example.net\n"
        b"Action: failed\nStatus: 5.1.1\n"
        b"--B--\n"
    )
    parsed = parse_message(raw)
    assert (parsed.content_type, parsed.report_type) == ("multipart/report", "delivery-status")
    assert parsed.text == "Your mail could not be delivered."
    (status,) = parsed.attachments
    assert status.content_type == "message/delivery-status"
    assert b"Status: 5.1.1" in status.data


# --- winmail.dat -----------------------------------------------------------------------


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    header = struct.pack("<BHHI", level, name, kind, len(data))
    return header + data + struct.pack("<H", sum(data) & 0xFFFF)


def _tnef_blob(files: list[tuple[str, bytes]], body: str | None = None) -> bytes:
    """A minimal Outlook TNEF stream: version, code page, body, attachments."""
    blob = struct.pack("<IH", 0x223E9F78, 1)
    blob += _tnef_object(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    blob += _tnef_object(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
    if body is not None:
        blob += _tnef_object(1, 0x800C, 0x0002, body.encode("cp1252"))
    for name, data in files:
        blob += _tnef_object(2, 0x9002, 0x0006, b"\x01\x00" + bytes(12))
        blob += _tnef_object(2, 0x8010, 0x0001, name.encode("cp1252") + b"\x00")
        blob += _tnef_object(2, 0x800F, 0x0006, data)
    return blob


def _mail_with_winmail(blob: bytes, text: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "outlook@example.org"
    message["Subject"] = "Rich text"
    if text is not None:
        message.set_content(text)
    message.add_attachment(blob, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return message.as_bytes()


def test_winmail_dat_is_unpacked_into_its_files_and_body() -> None:
    # Given an Outlook mail whose only part is a winmail.dat holding two files and the body,
    report = b"quarterly numbers\n"
    blob = _tnef_blob([("report.txt", report), ("photo.jpg", b"\xff\xd8\xff")], body="Hi there")
    parsed = parse_message(_mail_with_winmail(blob))
    # then the real files are the attachments and the body text comes from the blob.
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("report.txt", "text/plain"),
        ("photo.jpg", "image/jpeg"),
    ]
    assert parsed.attachments[0].data == report
    assert parsed.attachments[0].sha256 == hashlib.sha256(report).hexdigest()
    assert parsed.text == "Hi there"


def test_winmail_body_does_not_replace_the_mail_text() -> None:
    blob = _tnef_blob([("a.txt", b"a")], body="inner body")
    parsed = parse_message(_mail_with_winmail(blob, text="outer body\n"))
    assert parsed.text == "outer body"
    assert [a.filename for a in parsed.attachments] == ["a.txt"]


def test_broken_winmail_dat_is_kept_raw_with_a_defect() -> None:
    blob = b"not a tnef stream at all"
    parsed = parse_message(_mail_with_winmail(blob, text="see attachment\n"))
    (kept,) = parsed.attachments
    assert (kept.filename, kept.data) == ("winmail.dat", blob)
    assert any("winmail.dat kept" in d for d in parsed.defects)


def test_hostile_winmail_dat_is_refused_quickly() -> None:
    # Given a TNEF blob claiming 4 billion MAPI properties (tnefparse would loop for hours),
    evil = struct.pack("<IH", 0x223E9F78, 1) + _tnef_object(
        1, 0x9003, 0x0006, struct.pack("<I", 0xFFFFFFFF) + bytes(8)
    )
    started = time.perf_counter()
    parsed = parse_message(_mail_with_winmail(evil, text="x\n"))
    # then it is kept as is, fast.
    assert time.perf_counter() - started < 2.0
    assert [a.filename for a in parsed.attachments] == ["winmail.dat"]
    assert any("winmail.dat kept" in d for d in parsed.defects)


# --- robustness ------------------------------------------------------------------------


def test_deeply_nested_message_does_not_raise() -> None:
    # Given 3000 nested multiparts (deeper than Python's recursion limit),
    depth = 3000
    head = "".join(
        f"Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n"
        for level in range(depth)
    )
    raw = ("Subject: nested\n" + head + "Content-Type: text/plain\n\ndeep\n").encode()
    started = time.perf_counter()
    parsed = parse_message(raw)
    # then a result comes back, in bounded time, with the problem noted.
    assert time.perf_counter() - started < 10
    assert parsed.subject == "nested"
    assert parsed.defects


def test_too_many_parts_are_cut_off_with_a_defect() -> None:
    parts = "".join(f"--B\nContent-Type: text/plain\n\npart {n}\n" for n in range(MAX_PARTS + 50))
    raw = ("Content-Type: multipart/mixed; boundary=B\n\n" + parts + "--B--\n").encode()
    parsed = parse_message(raw)
    assert any(f"more than {MAX_PARTS}" in d for d in parsed.defects)
    assert parsed.text.startswith("part 0\n\npart 1")


def test_missing_boundary_keeps_the_body_text() -> None:
    raw = b"Content-Type: multipart/mixed\n\nHello, the boundary is missing.\n"
    parsed = parse_message(raw)
    assert "Hello, the boundary is missing." in parsed.text
    assert parsed.defects


def test_nul_bytes_never_reach_the_text() -> None:
    parsed = parse_message(b"Subject: a\x00b\n\nx\x00y\n")
    assert "\x00" not in parsed.subject + parsed.text
    assert parsed.text == "xy"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMail)
    assert "\r" not in parsed.text


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=x\n",
                b"Content-Transfer-Encoding: base64\n",
                b"Content-Type: text/plain; charset=iso-2022-jp\n",
                b"Content-Type: application/ms-tnef\n",
                b"Subject: =?utf-8?b?w6k=?=\n",
                b"From: <a@b\n",
                b"\n",
                b"--x\n",
                b"--x--\n",
                b"\x1b$B$9\x1b(B\n",
                b"\xff\xfe\x00\n",
                b"=?\n",
            ]
        ),
        max_size=40,
    )
)
def test_mime_shaped_junk_never_raises(chunks: list[bytes]) -> None:
    parsed = parse_message(b"".join(chunks))
    assert isinstance(parsed, ParsedMail)


def test_internal_control_headers_from_outside_are_dropped() -> None:
    raw = (b"From: a@b.example\r\nX-Gateway-Agent: kenji@support.example\r\n"
           b"x-gateway-status: closed\r\nSubject: hi\r\n\r\nbody\r\n")
    parsed = parse_message(raw)
    assert not [name for name in parsed.headers if name.startswith("x-gateway-")]
    assert parsed.subject == "hi"
    assert any("x-gateway-agent" in defect for defect in parsed.defects)
