"""One message's bytes read once: line endings normalised, the MIME tree built.

Why: the parser (:mod:`inbound.parsing.message`), the bounce classifier and the
auto-reply classifier all read the same message, and each used to normalise and parse
the bytes again (a full parse, a second full parse and three header parses per
message).  :func:`inbound.parsing.analysis.analyze` reads them here once and hands the
same :class:`MailSource` to every reader; mail-parser is given this tree too.

The tree is the standard library's with the ``compat32`` policy (its most forgiving),
built from the bytes with LF line endings, so CRLF, LF and CR-only copies of a message
parse alike.  The tree is shared: readers must not change it.  Reading never raises: a
structure the parser cannot build (absurd nesting) leaves a headers-only tree whose
payload is the body as text, and ``defect`` says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser, Parser
from email.policy import compat32

__all__ = ["MailSource", "as_source", "header_values", "read_source"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class MailSource:
    raw: bytes
    """The bytes as the analysis got them (after :func:`inbound.limits.contain`)."""
    data: bytes
    """``raw`` with LF line endings (the same object when it had no CR)."""
    message: Message
    """The MIME tree of ``data``; headers only (body as text) when ``defect`` is set."""
    defect: str = ""
    """Why the MIME structure could not be built, or ""."""

    def body_bytes(self, limit: int) -> bytes:
        """The first ``limit`` bytes of the body as they stand in the message (boundaries and
        part headers included; LF line endings): what a quick look at the text reads."""
        end = self.data.find(b"\n\n")
        return b"" if end < 0 else self.data[end + 2 : end + 2 + limit]

    def body_text(self, limit: int) -> str:
        """``body_bytes(limit)`` as text, decoded as the standard library decodes a payload
        it was not asked to decode: the message's charset, else ASCII, errors replaced."""
        data = self.body_bytes(limit)
        try:
            charset = self.message.get_content_charset("ascii") or "ascii"
            return data.decode(charset, "replace")
        except (LookupError, ValueError):
            return data.decode("ascii", "replace")

    def text_view(self, limit: int) -> Message:
        """A copy of the header fields whose payload is the first ``limit`` bytes of the body
        as text (no MIME tree): for a reader that must not walk a huge structure."""
        view = _header_copy(self.message)
        view.set_payload(self.body_bytes(limit).decode("ascii", "surrogateescape"))
        return view

    def bounded_view(self, max_bytes: int, max_parts: int) -> Message:
        """The tree cut after ``max_bytes`` of payload text and ``max_parts`` parts, in
        document order (a copy; the tree itself is untouched).  For readers whose cost
        grows with the whole message, such as a library that scans every line."""
        budget = [max_bytes, max_parts]
        return _bounded_copy(self.message, budget)


def read_source(raw: bytes, *, headers_only: bool = False) -> MailSource:
    """Normalise the line endings of ``raw`` and build its MIME tree: the one parse of the
    message; never raises.  ``headers_only`` (for a caller that reads only the header
    fields and the text) leaves the body unparsed, as text."""
    if isinstance(raw, str):  # tolerate a caller that read the file as text
        raw = raw.encode("utf-8", "surrogateescape")
    raw = bytes(raw)
    data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in raw else raw
    if headers_only:
        return MailSource(raw, data, _header_fields(data))
    try:
        return MailSource(raw, data, Parser(policy=compat32).parse(_WholeText(data)))
    except RecursionError:
        defect = "MIME structure nested too deeply to parse"
    except Exception as exc:  # noqa: BLE001 - fall back to the header fields
        defect = f"MIME structure unreadable ({type(exc).__name__})"
    log.info("%s; reading the header fields only", defect)
    return MailSource(raw, data, _header_fields(data), defect)


class _WholeText:
    """``data`` as a text file whose first read returns all of it.

    ``BytesParser.parsebytes`` reads the text 8 KB at a time; the feed parser builds the
    same tree from any chunking, and fed the whole message at once it resumes its
    generator far less often (about 6 % less CPU on mail with megabyte attachments).
    The text is what ``parsebytes`` makes of the bytes (ASCII, surrogateescape)."""

    def __init__(self, data: bytes) -> None:
        self._text = data.decode("ascii", "surrogateescape")

    def read(self, size: int = -1) -> str:
        text, self._text = self._text, ""
        return text


def _header_fields(data: bytes) -> Message:
    """The header fields of ``data``, its body as text."""
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(data)
    except Exception:  # noqa: BLE001 - not even the header fields: an empty message
        head = Message(policy=compat32)
        head.set_payload(data.decode("ascii", "surrogateescape"))
        return head


def as_source(raw: bytes | MailSource) -> MailSource:
    """``raw`` read once, or the source a caller read already."""
    return raw if isinstance(raw, MailSource) else read_source(raw)


def header_values(message: Message, name: str) -> tuple[str, ...]:
    """Every value of header ``name``, unfolded, exactly as received (no RFC 2047 decoding;
    8-bit bytes read as UTF-8)."""
    wanted = name.lower()
    values = []
    for key, value in message.raw_items():
        if key.lower() == wanted:
            text = " ".join(line.strip() for line in str(value).split("\n"))
            values.append(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    return tuple(values)


def _header_copy(part: Message) -> Message:
    copy = Message(policy=compat32)
    for name, value in part.raw_items():
        copy[name] = value
    copy.set_default_type(part.get_default_type())
    return copy


def _bounded_copy(part: Message, budget: list[int]) -> Message:
    """``budget`` is [payload characters left, parts left], shared along the walk."""
    copy = _header_copy(part)
    budget[1] -= 1
    payload = part.get_payload()
    if isinstance(payload, list):
        children: list[Message | str] = []
        for child in payload:
            if budget[0] <= 0 or budget[1] <= 0:
                break
            if isinstance(child, Message):
                children.append(_bounded_copy(child, budget))
        copy.set_payload(children)
    elif isinstance(payload, str):
        copy.set_payload(payload[: max(budget[0], 0)])
        budget[0] -= len(payload)
    copy.preamble, copy.epilogue = part.preamble, part.epilogue
    return copy
