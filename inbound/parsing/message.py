"""Turn raw mail bytes into a :class:`ParsedMail` that every later step can trust.

Why this module exists: the pipeline must never lose or choke on a message, and
real mail is broken in every way (8-bit junk, CR-only lines, missing MIME
boundaries, unknown charsets, 3 MB of nested enclosures). So
:func:`parse_message` never raises: it returns what it could read and lists
what was wrong in ``defects``; bounded nesting depth, part count and HTML size
keep time and memory bounded.

Who does what:

* the standard library's ``email`` parser (``compat32``, its most forgiving
  policy) builds the MIME tree, once per message, in :mod:`inbound.parsing.source`
  (line endings normalised to LF first, so CRLF, LF and CR-only copies of a message
  parse identically); the bounce and auto-reply classifiers read the same tree;
* ``mail-parser`` reads addresses (``get_addresses``, which recovers what it
  can from broken headers) and dates (``parse_mail_date``), and its
  ``MailParser`` surveys that same tree for defects. It cannot be trusted with
  everything: ``MailParser`` raises ``AttributeError`` on a multipart whose
  start boundary is missing and whose epilogue is empty, and it returns 7-bit
  ISO-2022-JP bodies undecoded (escape sequences instead of Japanese). Bodies,
  charsets, RFC 2047 words and attachments are therefore decoded here;
* ``inbound.parsing.html_text`` renders HTML-only mail, ``inbound.parsing.tnef`` unpacks
  ``winmail.dat`` and ``inbound.parsing.message_ids`` reads the threading headers.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.utils
import hashlib
import logging
import mimetypes
import re
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import Message
from email.policy import compat32
from io import BytesIO
from types import MappingProxyType
from typing import Any, cast

import mailparser
from mailparser.const import EPILOGUE_DEFECTS
from mailparser.dates import parse_mail_date
from mailparser.utils import (
    decode_base64_payload,
    decode_header_part,
    find_between,
    get_addresses,
    mime_header_view,
)

from inbound.limits import Limits
from inbound.parsing.html_text import html_to_text
from inbound.parsing.message_ids import extract_message_ids, normalize_message_id
from inbound.parsing.source import MailSource, as_source
from inbound.parsing.tnef import TnefError, unpack_tnef

__all__ = [
    "Attachment",
    "MAX_DEPTH",
    "MAX_PARTS",
    "ParsedMail",
    "extract_message_ids",
    "normalize_message_id",
    "decode_encoded_words",
    "parse_message",
    "unfold",
]

log = logging.getLogger(__name__)

#: MIME nesting we descend into; deeper parts are skipped with a defect.
MAX_DEPTH = 30
#: MIME parts we look at by default (setting ``max_mime_parts``); later parts are
#: skipped with a defect.
MAX_PARTS = Limits().max_mime_parts
#: mail-parser surveys a message whole only up to these; else its headers only.
_SURVEY_MAX_PARTS = 50
_SURVEY_MAX_BYTES = 1024 * 1024
#: Defect notes kept; a hostile message could otherwise produce millions.
_MAX_DEFECTS = 200


class _DefectSurvey(mailparser.MailParser):  # type: ignore[misc]  # untyped library
    """mail-parser's ``MailParser`` reduced to what we read of it: its ``defects``.

    The stock ``parse()`` also decodes every body and attachment again and builds two
    dicts of every header (about a third of its time), and none of that adds a defect
    we keep: its only one, ``CharsetDecodeDefect``, describes a decoding we do not use
    and is dropped.  This ``parse()`` is the stock one's defect steps, in its order:
    the header checks of ``_reset`` (addresses, dates, Received), each part's parser
    defects, the epilogue's part when a boundary defect says there is one, and each
    part's MIME header defects.  ``tests/inbound/test_defect_survey.py`` pins the
    defects equal to the stock class's on every message of the corpus."""

    def parse(self) -> _DefectSurvey:
        self._reset()
        message: Message | None = self.message
        if message is None:
            return self
        parts = []
        for part in message.walk():
            self._append_defects(part, part.get_content_type())
            parts.append(part)
        if self.defects_categories & EPILOGUE_DEFECTS:
            # no boundary: str + None raises TypeError, as in the stock class
            boundary = "--" + cast(str, message.get_boundary())
            epilogue = find_between(message.epilogue, boundary, boundary + "--")
            if epilogue is not None:
                with suppress(Exception):  # the stock class skips a part it cannot parse
                    parts.append(email.message_from_string(epilogue))
        for index, part in enumerate(parts):
            metadata, problems = mime_header_view(part)
            decode_header_part(metadata.get_filename(), defects=problems)
            if problems:
                self._has_defects = True
                self._defects_categories.add("MimeHeaderDefect")
                self._defects.append({"mime-headers": [
                    f"MimeHeaderDefect: part {index}, {detail}" for detail in problems]})
        return self


@dataclass(frozen=True)
class Attachment:
    filename: str  # decoded (RFC 2231/2047), never empty, no directory part
    content_type: str  # lowercased, e.g. "application/pdf"
    size: int  # bytes of decoded data
    sha256: str  # hex of decoded data
    data: bytes
    inline: bool  # Content-Disposition inline / referenced by Content-ID
    content_id: str | None = None  # without angle brackets; for cid: links in the HTML


CONTROL_HEADER_PREFIX = "x-gateway-"
"""Headers named ``X-Gateway-*`` are reserved for the gateway's own use."""


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    headers: Mapping[str, tuple[str, ...]] = field(hash=False)
    content_type: str
    report_type: str | None
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    limits_hit: tuple[str, ...] = ()
    """Notes of the per-message limits this message ran into (``inbound.limits``)."""
    dropped: tuple[tuple[str, int], ...] = ()
    """(filename, size) of attachments not kept because of ``max_attachments`` or
    ``max_attachments_bytes``; the raw message in the spool still holds them."""
    text_is_rendered_html: bool | None = field(default=None, compare=False)
    """Where ``text`` came from, for the reply splitter: True when it is exactly
    ``html_to_text(html)`` (an HTML-only body), False when it is a text/plain part's,
    None when not known (the splitter then renders the HTML to compare)."""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), decoded; None if absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_message(raw: bytes | MailSource, limits: Limits | None = None) -> ParsedMail:
    """Parse one raw message (or read the tree ``analyze`` built). Never raises; problems
    are listed in ``defects``.

    ``limits`` bounds MIME parts walked, attachments kept and TNEF objects unpacked;
    the raw-byte cuts of :func:`inbound.limits.contain` are the caller's (``analyze``)."""
    source = as_source(raw)
    try:
        return _Parser(source, limits or Limits()).parse()
    except Exception as exc:  # noqa: BLE001 - the contract is "never raise"
        log.exception("parse_message failed; returning a minimal result")
        return _minimal_result(source, f"parser failure ({type(exc).__name__}: {exc})")


# --- the parser -----------------------------------------------------------------------


@dataclass
class _Body:
    """Body texts found in one branch of the MIME tree."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def has_plain(self) -> bool:
        return any(text.strip() for text in self.plain)


@dataclass
class _Pending:
    """An attachment before its final name and inline flag are known."""

    filename: str
    content_type: str
    data: bytes
    disposition: str | None
    content_id: str | None
    in_related: bool = False


class _Parser:
    def __init__(self, source: MailSource, limits: Limits) -> None:
        self.limits = limits
        self.limits_hit: list[str] = []
        self.dropped: list[tuple[str, int]] = []
        self.source = source
        self.raw = source.raw
        self.defects: list[str] = []
        self.attachments: list[_Pending] = []
        self.tnef_bodies: list[str] = []
        self.tnef_html: list[str] = []
        self.parts_seen = 0
        self.charset_hint: str | None = None
        self._limit_noted: set[str] = set()
        self.headers_only = False
        self._rendered_html: str | None = None  # html_to_text of the one HTML body, if run

    def defect(self, note: str) -> None:
        if len(self.defects) < _MAX_DEFECTS:
            self.defects.append(note)
        elif len(self.defects) == _MAX_DEFECTS:
            self.defects.append("further defects omitted")

    # .. top level ..

    def parse(self) -> ParsedMail:
        message = self._tree()
        self.charset_hint = _safe_charset(message)
        headers = self._decode_headers(message)
        body = _Body()
        if not self.headers_only:
            self._visit(message, 0, body, body_allowed=True)
            self._survey_with_mailparser(message)
        text, html = self._choose_text(body)
        rendered: bool | None = None
        if body.has_plain():
            rendered = False
        elif len(body.html) == 1 and text and text == self._rendered_html:
            rendered = True
        from_name, from_address = self._first_mailbox(message, "from")
        content_type = _content_type(message)
        report_type = None
        if content_type == "multipart/report":
            value = _safe_param(message, "report-type")
            report_type = value.lower() if value else None

        def first(name: str) -> str | None:
            values = headers.get(name)
            return values[0] if values else None

        return ParsedMail(
            message_id=normalize_message_id(first("message-id")),
            in_reply_to=extract_message_ids(" ".join(headers.get("in-reply-to", ()))),
            references=extract_message_ids(" ".join(headers.get("references", ()))),
            subject=first("subject") or "",
            from_address=from_address,
            from_name=from_name,
            reply_to=self._addresses(message, "reply-to"),
            to=self._addresses(message, "to"),
            cc=self._addresses(message, "cc"),
            date=self._date(message),
            headers=MappingProxyType(headers),
            content_type=content_type,
            report_type=report_type,
            text=text,
            html=html,
            attachments=self._finish_attachments(html),
            defects=tuple(self.defects),
            limits_hit=tuple(self.limits_hit),
            dropped=tuple(self.dropped),
            text_is_rendered_html=rendered,
        )

    def _tree(self) -> Message:
        """The source's MIME tree; when it could not be built, its header fields, and the
        whole message kept as an attachment."""
        if self.source.defect:
            self.defect(f"{self.source.defect}; body kept as an attachment")
            self.headers_only = True
            self.attachments.append(
                _Pending("original-message.eml", "message/rfc822", self.raw, "attachment", None)
            )
        return self.source.message

    def _survey_with_mailparser(self, message: Message) -> None:
        """Let mail-parser report what it finds wrong in the headers (addresses, dates,
        Received); the parts' defects are the parser's own, read by our bounded walk.

        mail-parser is given the header fields only: on the whole message it parses
        every part again, unbounded (400,000 parts: seconds, and a log line each), so
        only a small message is surveyed whole."""
        small = self.parts_seen <= _SURVEY_MAX_PARTS and len(self.raw) <= _SURVEY_MAX_BYTES
        if not small:
            self._part_defects(message)
        try:
            survey = _DefectSurvey(message if small else _headers_only(message))
            found = survey.defects
        except Exception as exc:  # noqa: BLE001 - a mail-parser bug must not lose the mail
            self.defect(f"mail-parser failed ({type(exc).__name__}: {exc}); stdlib checks used")
            self._stdlib_defects(message)
            return
        for entry in found:
            for where, notes in dict(entry).items():
                for note in notes if isinstance(notes, list) else [notes]:
                    # Bodies are decoded here, not by mail-parser: its charset
                    # complaints describe a decoding we do not use.
                    if not str(note).startswith("CharsetDecodeDefect"):
                        self.defect(_clean(f"{where}: {note}"))

    def _stdlib_defects(self, message: Message) -> None:
        for part, _depth in _iter_parts(message, self.limits.max_mime_parts):
            for problem in part.defects:
                self.defect(f"{_content_type(part)}: {type(problem).__name__}")

    def _part_defects(self, message: Message) -> None:
        """The stdlib parser's defects of each part, worded as mail-parser words them."""
        for part, _depth in _iter_parts(message, self.limits.max_mime_parts):
            for problem in part.defects:
                self.defect(_clean(f"{_content_type(part)}: {type(problem).__name__}: "
                                   f"{type(problem).__doc__}"))

    # .. headers ..

    def _decode_headers(self, message: Message) -> dict[str, tuple[str, ...]]:
        collected: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            key = _clean(str(name)).strip().lower()
            if not key:
                continue
            if key.startswith(CONTROL_HEADER_PREFIX):
                # Our own control headers mean something only when we write them; arriving
                # from outside they are somebody's attempt to steer us, and are dropped.
                self.defect(f"internal control header {key} from outside dropped")
                continue
            collected.setdefault(key, []).append(self._decode_header_value(value))
        return {key: tuple(values) for key, values in collected.items()}

    def _decode_header_value(self, value: object) -> str:
        text = unfold(str(value))
        if _has_surrogates(text):
            text, note = _decode_raw_8bit(text, self.charset_hint)
            if note:
                self.defect(f"raw 8-bit header: {note}")
        elif "\x1b" in text and text.isascii():
            jis = _raw_jis(text.encode("ascii"))
            if jis is not None:
                text = jis
                self.defect("raw ISO-2022-JP header decoded")
        decoded, notes = decode_encoded_words(text)
        for note in notes:
            self.defect(note)
        return _clean(decoded).strip()

    def _mailboxes(self, message: Message, name: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for header, value in message.raw_items():
            if header.lower() != name:
                continue
            text = str(value)
            if _has_surrogates(text):  # raw UTF-8 (RFC 6532) or legacy 8-bit names
                text, _ = _decode_raw_8bit(text, self.charset_hint)
            try:
                pairs = get_addresses(text, decode_names=True)
            except Exception as exc:  # noqa: BLE001 - fall back to the stdlib
                self.defect(f"{name}: mail-parser could not read addresses ({type(exc).__name__})")
                pairs = email.utils.getaddresses([_clean(text)])
            for display, address in pairs:
                address = _clean(address or "").strip().strip("<>").strip().lower()
                if not address or " " in address:
                    continue
                # Clients quote encoded words ("=?utf-8?...?=" <a@b>) against
                # RFC 2047, and every reader decodes them anyway.
                display, _notes = decode_encoded_words(_clean(display or ""))
                found.append((display.strip(), address))
        return found

    def _addresses(self, message: Message, name: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for _display, address in self._mailboxes(message, name):
            seen.setdefault(address)
        return tuple(seen)

    def _first_mailbox(self, message: Message, name: str) -> tuple[str, str | None]:
        mailboxes = self._mailboxes(message, name)
        if not mailboxes:
            if message.get(name) is not None:
                self.defect(f"{name}: no readable address")
            return "", None
        display, address = mailboxes[0]
        return display, address

    def _date(self, message: Message) -> datetime | None:
        raw: str | None = None
        for name, header in message.raw_items():
            if name.lower() == "date":
                raw = _clean(unfold(str(header)))
                break
        if raw is None or not raw.strip():
            return None
        value: datetime | None
        try:
            value = parse_mail_date(raw).value
        except Exception:  # noqa: BLE001
            value = None
        if value is None:
            value = _lenient_date(raw)
            if value is None:
                self.defect(f"date: unreadable Date header {raw[:80]!r}")
                return None
            self.defect(f"date: non-standard Date header {raw[:80]!r} read leniently")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            self.defect(f"date: Date header out of range {raw[:80]!r}")
            return None

    # .. the MIME walk ..

    def _visit(self, part: Message, depth: int, body: _Body, *, body_allowed: bool) -> None:
        self.parts_seen += 1
        if self.parts_seen > self.limits.max_mime_parts:
            if "parts" not in self._limit_noted:
                self.limits_hit.append(f"more than max_mime_parts ({self.limits.max_mime_parts:,}) "
                                       "MIME parts: the rest were not read")
            self._note_limit("parts", f"more than {self.limits.max_mime_parts} MIME parts; "
                             "the rest were skipped")
            return
        if depth > MAX_DEPTH:
            self._note_limit("depth", f"MIME nested deeper than {MAX_DEPTH}; deeper parts skipped")
            return
        content_type = _content_type(part)
        maintype, _, subtype = content_type.partition("/")
        payload = part.get_payload()
        if maintype == "multipart" and isinstance(payload, list):
            self._visit_multipart(subtype, part, payload, depth, body, body_allowed=body_allowed)
        elif maintype == "message" or isinstance(payload, list):
            self._add_message_part(part, content_type)
        elif maintype == "multipart":
            self.defect(f"{content_type} without usable boundary; its body read as text")
            self._add_body(part, "text/plain", body)
        elif _is_tnef(part, content_type):
            self._add_tnef(part, content_type)
        elif body_allowed and _is_body_text(part, content_type):
            self._add_body(part, content_type, body)
        else:
            self._add_attachment(part, content_type)

    def _visit_multipart(
        self,
        subtype: str,
        part: Message,
        children: list[Any],
        depth: int,
        body: _Body,
        *,
        body_allowed: bool,
    ) -> None:
        parts = [child for child in children if isinstance(child, Message)]
        if subtype == "alternative" and body_allowed:
            branches = []
            for child in parts:
                branch = _Body()
                self._visit(child, depth + 1, branch, body_allowed=True)
                branches.append(branch)
            plain = next((branch for branch in branches if branch.has_plain()), None)
            html = next((branch for branch in reversed(branches) if branch.html), None)
            if plain is not None:
                body.plain.extend(plain.plain)
            if html is not None:
                body.html.extend(html.html)
            return
        if subtype == "related":
            root = _related_root(part, parts)
            before = len(self.attachments)
            for child in parts:
                allowed = body_allowed and child is root
                self._visit(child, depth + 1, body, body_allowed=allowed)
            for pending in self.attachments[before:]:
                pending.in_related = True
            return
        for index, child in enumerate(parts):
            allowed = body_allowed
            if subtype in ("report", "signed") and index > 0:
                allowed = False
            if subtype == "encrypted":
                allowed = False
            self._visit(child, depth + 1, body, body_allowed=allowed)

    def _note_limit(self, key: str, note: str) -> None:
        if key not in self._limit_noted:
            self._limit_noted.add(key)
            self.defect(note)

    # .. leaves ..

    def _add_body(self, part: Message, content_type: str, body: _Body) -> None:
        data = self._payload_bytes(part, content_type)
        charset = _safe_charset(part)
        if charset is None and content_type == "text/html":
            charset = _html_meta_charset(data)
        text, note = _decode_bytes(data, charset, hint=self.charset_hint)
        if note:
            self.defect(f"{content_type}: {note}")
        if "\x00" in text:
            self.defect(f"{content_type}: NUL characters removed")
        text = _clean(text).replace("\r\n", "\n").replace("\r", "\n")
        (body.html if content_type == "text/html" else body.plain).append(text)

    def _add_attachment(self, part: Message, content_type: str) -> None:
        data = self._payload_bytes(part, content_type)
        self.attachments.append(
            _Pending(
                filename=self._filename(part),
                content_type=content_type,
                data=data,
                disposition=_safe_disposition(part),
                content_id=_content_id(part),
            )
        )

    def _add_message_part(self, part: Message, content_type: str) -> None:
        """message/rfc822, delivery-status and friends: kept whole, as an attachment."""
        payload = part.get_payload()
        filename = self._filename(part)
        if isinstance(payload, list):
            inner_messages = [inner for inner in payload if isinstance(inner, Message)]
            data = b"\n".join(self._flatten(inner) for inner in inner_messages)
            if not filename and content_type in ("message/rfc822", "message/global"):
                # Name a forwarded mail after its subject, as mail clients do.
                subject = next(
                    (value for name, value in _raw_headers(inner_messages) if name == "subject"), ""
                )
                title = _safe_filename(self._decode_header_value(subject)[:120])
                filename = f"{title}.eml" if title else ""
        else:
            data = self._payload_bytes(part, content_type)
        self.attachments.append(
            _Pending(
                filename=filename,
                content_type=content_type,
                data=data,
                disposition=_safe_disposition(part),
                content_id=_content_id(part),
            )
        )

    def _flatten(self, message: Message) -> bytes:
        try:
            buffer = BytesIO()
            BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(message)
            return buffer.getvalue()
        except RecursionError:
            self.defect("enclosed message nested too deeply to keep whole; kept its headers")
        except Exception as exc:  # noqa: BLE001
            self.defect(f"enclosed message could not be re-serialised ({type(exc).__name__})")
        lines = [f"{name}: {value}" for name, value in message.raw_items()]
        return "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"

    def _add_tnef(self, part: Message, content_type: str) -> None:
        data = self._payload_bytes(part, content_type)
        try:
            content = unpack_tnef(data, max_objects=self.limits.max_tnef_objects)
        except TnefError as exc:
            self.defect(f"winmail.dat kept as is: {exc}")
            if exc.limit:
                self.limits_hit.append(f"winmail.dat kept as is: {exc}")
            self._add_attachment(part, content_type)
            return
        if not content.files and not content.body and not content.html:
            self.defect("winmail.dat kept as is: it holds no files or readable body (RTF only?)")
            self._add_attachment(part, content_type)
            return
        for item in content.files:
            name = _safe_filename(item.filename)
            self.attachments.append(
                _Pending(
                    filename=name,
                    content_type=_guess_type(name),
                    data=item.data,
                    disposition="attachment",
                    content_id=None,
                )
            )
        if content.body:
            self.tnef_bodies.append(content.body.replace("\r\n", "\n").replace("\r", "\n"))
        if content.html:
            self.tnef_html.append(content.html)

    def _filename(self, part: Message) -> str:
        try:
            name = self._metadata_view(part).get_filename()
        except Exception:  # noqa: BLE001 - a broken RFC 2231 parameter
            self.defect("unreadable attachment filename parameter")
            name = None
        if not name:
            return ""
        decoded, _notes = decode_encoded_words(unfold(str(name)))
        return _safe_filename(decoded)

    def _metadata_view(self, part: Message) -> Message:
        """Content-Type/-Disposition with raw 8-bit bytes decoded, not replaced.

        The stdlib turns raw 8-bit bytes in a header into U+FFFD before
        parameters are parsed, which destroys raw UTF-8 or Shift_JIS filenames.
        """
        view = Message()
        for name, value in part.raw_items():
            if name.lower() in ("content-type", "content-disposition"):
                text = str(value)
                if _has_surrogates(text):
                    text, _ = _decode_raw_8bit(text, self.charset_hint)
                view[name] = text
        return view

    def _payload_bytes(self, part: Message, content_type: str) -> bytes:
        """Decoded payload bytes, tolerating misspelt transfer encodings."""
        raw_cte = str(part.get("content-transfer-encoding", "") or "").lower()
        decoded: object
        try:
            decoded = part.get_payload(decode=True)
        except Exception as exc:  # noqa: BLE001
            self.defect(f"{content_type}: payload could not be decoded ({type(exc).__name__})")
            decoded = None
        if decoded is None:
            decoded = part.get_payload()
        if isinstance(decoded, str):
            decoded = decoded.encode("utf-8", "surrogateescape")
        if not isinstance(decoded, (bytes, bytearray)):
            return b""
        data = bytes(decoded)
        if raw_cte in _STDLIB_CTES:
            return bytes(data)
        cte = _normalise_cte(raw_cte)
        if cte == "base64":
            self.defect(f"{content_type}: transfer encoding {raw_cte!r} read as base64")
            return _lenient_base64(data)
        if cte == "quoted-printable":
            self.defect(f"{content_type}: transfer encoding {raw_cte!r} read as quoted-printable")
            return binascii.a2b_qp(data)
        if cte == "uuencode":
            self.defect(f"{content_type}: transfer encoding {raw_cte!r} read as uuencode")
            return _uudecode(data)
        if cte not in _IDENTITY_CTES:
            self.defect(
                f"{content_type}: unknown transfer encoding {raw_cte.strip()!r}; raw bytes kept"
            )
        return bytes(data)

    # .. results ..

    def _choose_text(self, body: _Body) -> tuple[str, str | None]:
        html = "\n".join(body.html) if body.html else None
        if body.has_plain():
            text = "\n\n".join(chunk.strip("\n") for chunk in body.plain if chunk.strip())
        elif body.html:
            rendered = [html_to_text(chunk) for chunk in body.html]
            self._rendered_html = rendered[0] if len(rendered) == 1 else None
            text = "\n\n".join(rendered)
        elif self.tnef_bodies:
            text = "\n\n".join(self.tnef_bodies)
        elif self.tnef_html:
            text = "\n\n".join(html_to_text(chunk) for chunk in self.tnef_html)
            html = html or "\n".join(self.tnef_html)
        else:
            text = self._text_from_inline_attachment()
        return text.rstrip().lstrip("\n"), html

    def _text_from_inline_attachment(self) -> str:
        """No body part at all: read a named inline text part as the body, too."""
        for pending in self.attachments:
            if (
                pending.content_type in ("text/plain", "text/html")
                and pending.disposition != "attachment"
            ):
                text, _ = _decode_bytes(pending.data, None, hint=self.charset_hint)
                text = _clean(text).replace("\r\n", "\n").replace("\r", "\n")
                return html_to_text(text) if pending.content_type == "text/html" else text
        return ""

    def _finish_attachments(self, html: str | None) -> tuple[Attachment, ...]:
        referenced = set(re.findall(r"(?i)cid:([^\"'\s>)]+)", html or "")[:10_000])
        result: list[Attachment] = []
        total = 0
        limits = self.limits
        for number, pending in enumerate(self.attachments, start=1):
            name = pending.filename or f"attachment-{number}{_extension(pending.content_type)}"
            if (len(result) >= limits.max_attachments
                    or total + len(pending.data) > limits.max_attachments_bytes):
                self.dropped.append((name, len(pending.data)))
                continue
            total += len(pending.data)
            inline = (
                pending.disposition == "inline"
                or (pending.content_id is not None and pending.content_id in referenced)
                or (
                    pending.disposition is None
                    and pending.in_related
                    and pending.content_id is not None
                )
            )
            result.append(
                Attachment(
                    filename=name,
                    content_type=pending.content_type,
                    size=len(pending.data),
                    sha256=hashlib.sha256(pending.data).hexdigest(),
                    data=pending.data,
                    inline=inline,
                    content_id=pending.content_id,
                )
            )
        self.attachments = []
        if self.dropped:
            self._note_dropped(len(result), total)
        return tuple(result)

    def _note_dropped(self, kept: int, kept_bytes: int) -> None:
        count = len(self.dropped)
        size = sum(size for _name, size in self.dropped)
        note = (f"{count:,} attachment(s) of {size:,} bytes not stored (max_attachments "
                f"{self.limits.max_attachments:,}, max_attachments_bytes "
                f"{self.limits.max_attachments_bytes:,}; {kept:,} kept, {kept_bytes:,} bytes); "
                "the raw message keeps them")
        self.limits_hit.append(note)
        self.defect(note)


def _minimal_result(source: MailSource, note: str) -> ParsedMail:
    """Last resort when the parser itself failed: headers if possible, raw kept."""
    data = source.raw
    headers: dict[str, tuple[str, ...]] = {}
    subject = ""
    try:
        for name, value in source.message.raw_items():
            text, _ = decode_encoded_words(_clean(unfold(str(value))))
            headers.setdefault(name.lower(), ())
            headers[name.lower()] += (text.strip(),)
        subject = headers.get("subject", ("",))[0]
    except Exception:  # noqa: BLE001
        log.exception("even the header-only parse failed")
    attachment = Attachment(
        filename="original-message.eml",
        content_type="message/rfc822",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        inline=False,
    )
    return ParsedMail(
        message_id=normalize_message_id((headers.get("message-id") or (None,))[0]),
        in_reply_to=extract_message_ids(" ".join(headers.get("in-reply-to", ()))),
        references=extract_message_ids(" ".join(headers.get("references", ()))),
        subject=subject,
        from_address=None,
        from_name="",
        reply_to=(),
        to=(),
        cc=(),
        date=None,
        headers=MappingProxyType(headers),
        content_type="text/plain",
        report_type=None,
        text="",
        html=None,
        attachments=(attachment,),
        defects=(note,),
    )


# --- helpers: MIME metadata ----------------------------------------------------------------


def _iter_parts(message: Message, limit: int = MAX_PARTS) -> Iterator[tuple[Message, int]]:
    """Depth-first parts without recursion, bounded like the main walk."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < limit:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        payload = part.get_payload()
        if isinstance(payload, list) and depth < MAX_DEPTH:
            children = [child for child in payload if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))


def _headers_only(message: Message) -> Message:
    """A copy of ``message``'s header fields with an empty body (for mail-parser's survey)."""
    copy = Message(policy=compat32)
    for name, value in message.raw_items():
        copy[name] = value
    copy.set_payload("")
    return copy


def _lenient_date(raw: str) -> datetime | None:
    """RFC 822-ish dates the strict reader refused, or ISO 8601 from scripts."""
    try:
        return email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    iso = re.sub(r"\s+([+-]\d{2}:?\d{2}|Z)$", r"\1", raw.strip()[:64])
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


def _raw_headers(messages: list[Message]) -> list[tuple[str, str]]:
    """(lowercased name, raw value) of the first message; raw keeps 8-bit bytes."""
    if not messages:
        return []
    return [(str(name).lower(), str(value)) for name, value in messages[0].raw_items()]


def _content_type(part: Message) -> str:
    try:
        value = part.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"
    value = _clean(str(value)).strip().lower()
    if "/" not in value or " " in value:
        return "application/octet-stream"
    return value


def _safe_param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return _clean(str(value)).strip() if value else None


def _safe_charset(part: Message) -> str | None:
    try:
        value = part.get_content_charset()
    except Exception:  # noqa: BLE001
        value = _safe_param(part, "charset")
    if not value:
        return None
    return _clean(str(value)).strip().strip("\"'").lower() or None


def _safe_disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None
    return _clean(str(value)).strip().lower() if value else None


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    if value is None:
        return None
    return normalize_message_id(_clean(str(value)))


def _is_tnef(part: Message, content_type: str) -> bool:
    if content_type in ("application/ms-tnef", "application/vnd.ms-tnef"):
        return True
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        return False
    return str(name).strip().lower() == "winmail.dat"


def _is_body_text(part: Message, content_type: str) -> bool:
    if content_type not in ("text/plain", "text/html"):
        return False
    if _safe_disposition(part) == "attachment":
        return False
    try:
        return not part.get_filename()
    except Exception:  # noqa: BLE001
        return True


def _related_root(part: Message, children: list[Message]) -> Message | None:
    if not children:
        return None
    start = _safe_param(part, "start")
    if start:
        wanted = normalize_message_id(start)
        for child in children:
            if _content_id(child) == wanted:
                return child
    return children[0]


_STDLIB_CTES = frozenset({"base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"})
_IDENTITY_CTES = frozenset(
    {"", "7bit", "8bit", "binary", "7-bit", "8-bit", "plain", "none", "text"}
)


def _normalise_cte(value: str) -> str:
    token = re.split(r"[;\s,]", value.strip().strip("\"'").strip() + " ", maxsplit=1)[0]
    token = token.strip("\"'")
    if "base64" in token or token == "b":
        return "base64"
    if "quoted" in token or token in ("qp", "q"):
        return "quoted-printable"
    if "uue" in token or "uuencode" in token:
        return "uuencode"
    if token.startswith("text/") or token in _IDENTITY_CTES:
        return ""
    return token


def _lenient_base64(data: bytes) -> bytes:
    try:
        return bytes(decode_base64_payload(data.decode("ascii", "ignore")))
    except (binascii.Error, ValueError):
        return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/]", b"", data) + b"==", validate=False)


def _uudecode(data: bytes) -> bytes:
    out = bytearray()
    inside = False
    for line in data.split(b"\n"):
        stripped = line.strip()
        if not inside:
            inside = stripped.startswith(b"begin ")
            continue
        if stripped == b"end":
            break
        if not stripped:
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders write garbage padding; decode only the bytes the line claims.
            try:
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out += binascii.a2b_uu(line[:nbytes])
            except (binascii.Error, IndexError):
                continue
    return bytes(out)


_EXTENSIONS = {
    "application/octet-stream": ".bin",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "text/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/jpeg": ".jpg",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
}
_MIME_DB = mimetypes.MimeTypes()


def _extension(content_type: str) -> str:
    if content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    guessed = _MIME_DB.guess_extension(content_type, strict=False)
    return guessed or ".bin"


def _guess_type(filename: str) -> str:
    guessed, _ = _MIME_DB.guess_type(filename, strict=False)
    return guessed.lower() if guessed else "application/octet-stream"


def _safe_filename(name: str) -> str:
    """Drop directories, control characters and absurd length; may return ""."""
    name = _clean(name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip().strip(".").strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + dot + ext) if dot and len(ext) <= 16 else name[:255]
    return name


def _html_meta_charset(data: bytes) -> str | None:
    match = re.search(
        rb"""(?i)<meta[^>]{0,500}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", data[:8192]
    )
    return match.group(1).decode("ascii").lower() if match else None


# --- helpers: text and charsets -------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")
_FOLD = re.compile(r"\r?\n[ \t]*")


def _has_surrogates(text: str) -> bool:
    return _SURROGATES.search(text) is not None


def _clean(text: str) -> str:
    """Make a string safe to store: no lone surrogates, no NUL."""
    if _has_surrogates(text):
        text = _SURROGATES.sub("\ufffd", text)
    return text.replace("\x00", "")


def unfold(text: str) -> str:
    """A folded header value on one line."""
    return _FOLD.sub(" ", text).replace("\r", " ").replace("\n", " ")




_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601_1987": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "windows-949": "cp949",
    "x-windows-949": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "ansi_x3.4-1968": "ascii",
}
_CHAINS = {
    "iso2022_jp": (
        "iso2022_jp",
        "iso2022_jp_ext",
        "iso2022_jp_2",
        "iso2022_jp_3",
        "iso2022_jp_2004",
    ),
    "euc_jp": ("euc_jp", "euc_jis_2004", "cp932"),
    "cp1252": ("cp1252", "latin-1"),
    "ascii": ("ascii", "utf-8", "cp1252", "latin-1"),
}
# What a label of this family usually turns out to be when the bytes do not fit.
_MISLABELLED = {
    "iso2022_jp": ("euc_jp", "cp932"),
    "euc_jp": ("cp932",),
    "cp932": ("euc_jp",),
    "cp949": ("iso2022_kr",),
}
_UNDECLARED = frozenset(
    {"", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined", "8bit", "none"}
)


def _resolve_codec(label: str) -> str | None:
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode_bytes(
    data: bytes, charset: str | None, *, hint: str | None = None
) -> tuple[str, str | None]:
    """Decode ``data`` labelled ``charset``; return text and a defect note or None.

    Unknown labels and undeclared 8-bit data are tried as UTF-8, then the
    message's own charset (``hint``), then Windows-1252, which never fails.
    """
    label = (charset or "").strip().strip("\"'").lower()
    if not data:
        return "", None
    if (label in _UNDECLARED or _resolve_codec(label) == "ascii") and data.isascii():
        jis = _raw_jis(data)
        if jis is not None:
            return jis, (f"ISO-2022-JP text labelled {label!r}" if label
                         else "ISO-2022-JP text without a charset")
    if label in _UNDECLARED:
        if data.isascii():
            return data.decode("ascii"), None
        text, used = _guess_decode(data, hint)
        return text, f"8-bit text without a charset, read as {used}"
    codec = _resolve_codec(label)
    if codec is None:
        text, used = _guess_decode(data, hint)
        return text, f"unknown charset {label!r}, read as {used}"
    for candidate in _CHAINS.get(codec, (codec,)):
        try:
            text = data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
        if codec == "ascii" and candidate != "ascii":
            return text, f"8-bit bytes in {label!r} text, read as {candidate}"
        return text, None
    for candidate in ("utf-8", *_MISLABELLED.get(codec, ())):
        try:
            return data.decode(candidate), f"text labelled {label!r} was {candidate}"
        except UnicodeDecodeError:
            continue
    return data.decode(codec, "replace"), f"invalid bytes for charset {label!r} replaced"


#: The escape sequences that switch ISO-2022-JP (RFC 1468) into JIS X 0208 / 0212 / kana.
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b$(D", b"\x1b$(Q", b"\x1b(I")


def _raw_jis(data: bytes) -> str | None:
    """7-bit ISO-2022-JP that nobody labelled: older Japanese mail programs and phones
    write it raw in headers (no RFC 2047 word) and in bodies without a charset, and read as
    ASCII it is escape codes and Latin letters. None when ``data`` is no such text."""
    if b"\x1b" not in data or not any(escape in data for escape in _JIS_ESCAPES):
        return None
    for codec in _CHAINS["iso2022_jp"]:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return None


def _decode_raw_8bit(text: str, hint: str | None) -> tuple[str, str | None]:
    """Header text that arrived as raw 8-bit bytes: UTF-8 (RFC 6532) or a guess."""
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    lenient = raw.decode("utf-8", "replace")
    non_ascii = sum(1 for byte in raw if byte > 0x7F)
    if lenient.count("\ufffd") * 10 <= non_ascii:  # UTF-8 cut mid-character, say
        return lenient, "invalid UTF-8 bytes replaced"
    decoded, used = _guess_decode(raw, hint)
    return decoded, f"not UTF-8, read as {used}"


def _guess_decode(data: bytes, hint: str | None) -> tuple[str, str]:
    candidates = ["utf-8"]
    hint_codec = _resolve_codec(_CHARSET_ALIASES.get(hint or "", hint or ""))
    if hint_codec and hint_codec not in ("utf-8", "ascii"):
        candidates.append(hint_codec)
    for codec in candidates:
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]{0,4000})\?=")


def decode_encoded_words(text: str) -> tuple[str, list[str]]:
    """RFC 2047: decode ``=?charset?B|Q?...?=`` words; never raises.

    Adjacent words in the same charset are joined before decoding, because
    clients split multibyte characters (UTF-8, ISO-2022-JP) across words.
    """
    if "=?" not in text:
        return text, []
    notes: list[str] = []
    # (text, charset, bytes of adjacent words): the chunks are joined once at the end,
    # not concatenated word by word (quadratic on a Subject of 20,000 words).
    pieces: list[tuple[str, str | None, list[bytes]]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        previous_is_word = bool(pieces) and pieces[-1][1] is not None
        if between and not (previous_is_word and not between.strip()):
            pieces.append((between, None, []))
        charset = match.group(1).split("*", 1)[0].lower()
        encoded = match.group(3)
        if match.group(2) in "bB":
            raw = _lenient_base64(encoded.encode("ascii", "ignore"))
        else:
            raw = binascii.a2b_qp(encoded.encode("utf-8", "surrogateescape"), header=True)
        if pieces and pieces[-1][1] == charset:
            pieces[-1][2].append(raw)
        else:
            pieces.append(("", charset, [raw]))
        position = match.end()
    pieces.append((text[position:], None, []))
    out = []
    for plain, charset, chunks in pieces:
        if charset is None:
            out.append(plain)
            continue
        decoded, note = _decode_bytes(b"".join(chunks), charset or "utf-8")
        if note:
            notes.append(f"encoded word: {note}")
        out.append(decoded)
    return "".join(out), notes
