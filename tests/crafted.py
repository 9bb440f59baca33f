"""Crafted messages that once cost one message seconds of CPU or hundreds of MB (issue 13).

Used by ``tests/e2e/test_containment.py`` and ``bench/hostile.py``; each builder returns
raw bytes with LF line endings: pass them through :func:`crlf` before SMTP (smtplib sends
bytes as they are, and a message without CRLF is one over-long line).
"""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

__all__ = ["big_attachment", "crlf", "encoded_subject", "many_parts", "plain", "tnef_blob",
           "winmail"]


def crlf(raw: bytes) -> bytes:
    """The message with CRLF line endings, as SMTP carries it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _head(sender: str, subject: str, message_id: str | None) -> list[str]:
    # Message-ID first: the spool reads its identity from the first 256 KB of headers.
    return [f"Message-ID: {message_id or make_msgid(domain='crafted.example')}",
            f"From: {sender}", "To: support@support.example", f"Subject: {subject}",
            f"Date: {format_datetime(datetime.now(UTC))}", "MIME-Version: 1.0"]


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    header = struct.pack("<BHHI", level, name, kind, len(data))
    return header + data + struct.pack("<H", sum(data) & 0xFFFF)


def tnef_blob(files: list[tuple[str, bytes]], body: str | None = None) -> bytes:
    """A minimal Outlook TNEF stream: version, code page, body, one group per file."""
    blob = struct.pack("<IH", 0x223E9F78, 1)
    blob += _tnef_object(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    blob += _tnef_object(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
    if body is not None:
        blob += _tnef_object(1, 0x800C, 0x0002, body.encode("cp1252"))
    parts = [blob]
    for name, data in files:
        parts.append(_tnef_object(2, 0x9002, 0x0006, b"\x01\x00" + bytes(12)))
        parts.append(_tnef_object(2, 0x8010, 0x0001, name.encode("cp1252") + b"\x00"))
        parts.append(_tnef_object(2, 0x800F, 0x0006, data))
    return b"".join(parts)


def winmail(files: int, *, sender: str = "outlook@crafted.example",
            subject: str = "Rich text", message_id: str | None = None) -> bytes:
    """A mail whose winmail.dat holds ``files`` tiny files (file-00001.txt …)."""
    message = EmailMessage()
    for line in _head(sender, subject, message_id):
        name, _, value = line.partition(": ")
        if name != "MIME-Version":
            message[name] = value
    message.set_content("See the attached files.\n")
    blob = tnef_blob([(f"file-{n:05d}.txt", b"x%d\n" % n) for n in range(files)],
                     body="See the attached files.")
    message.add_attachment(blob, maintype="application", subtype="ms-tnef",
                           filename="winmail.dat")
    return message.as_bytes()


def many_parts(parts: int, *, sender: str = "parts@crafted.example",
               subject: str = "Many parts", message_id: str | None = None,
               bare: bool = False) -> bytes:
    """multipart/mixed with a text body and ``parts`` tiny attachments (a few bytes each);
    ``bare``: parts without headers, the most parsing per byte (7 bytes a part)."""
    lines = _head(sender, subject, message_id)
    lines += ['Content-Type: multipart/mixed; boundary="b"', "", "--b",
              "Content-Type: text/plain", "", "Please see the parts."]
    part_head = [] if bare else ["Content-Type: application/octet-stream"]
    chunk = "\n".join(["--b", *part_head, "", "x"])
    return ("\n".join(lines) + "\n" + "\n".join([chunk] * parts) + "\n--b--\n").encode()


def encoded_subject(words: int, *, sender: str = "subject@crafted.example",
                    message_id: str | None = None) -> bytes:
    """A Subject of ``words`` RFC 2047 words on one unfolded line (pipe, IMAP, long-line SMTP)."""
    word = "=?utf-8?B?" + base64.b64encode("Grüße ".encode()).decode() + "?="
    lines = _head(sender, " ".join([word] * words), message_id)
    lines += ["Content-Type: text/plain; charset=utf-8", "", "A very long subject."]
    return ("\n".join(lines) + "\n").encode()


def big_attachment(size: int, *, sender: str = "big@crafted.example",
                   subject: str = "Large file", message_id: str | None = None) -> bytes:
    """A text body and one attachment of ``size`` random-looking bytes, base64 encoded."""
    message = EmailMessage()
    for line in _head(sender, subject, message_id):
        name, _, value = line.partition(": ")
        if name != "MIME-Version":
            message[name] = value
    message.set_content("The log file is attached.\n")
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    message.add_attachment(data, maintype="application", subtype="octet-stream",
                           filename="big.bin")
    return message.as_bytes()


def plain(body: str, *, sender: str, subject: str, message_id: str | None = None) -> bytes:
    """A text/plain message (UTF-8, 8bit) whose body lines are wrapped at ~70 characters."""
    words, lines, line = body.split(), [], ""
    for word in words:
        if line and len(line) + len(word) > 70:
            lines.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    lines.append(line)
    head = _head(sender, subject, message_id)
    head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", ""]
    return ("\n".join(head + lines) + "\n").encode()
