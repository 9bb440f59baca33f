"""Recognise a forwarded mail and read the original out of it (issue 16, forward on behalf).

An agent who forwards a customer's mail to support means "open this for them".  What the
original said, who wrote it and under which subject is in the forward, in one of two shapes:

- **inline**: the client writes a marker line and a block of header lines above the
  original text.  Gmail ``---------- Forwarded message ---------`` (ja UI
  ``---------- 転送メッセージ ---------``, de ``Weitergeleitete Nachricht``, it ``Messaggio
  inoltrato``, nl ``Doorgestuurd bericht``), Thunderbird ``-------- Forwarded Message
  --------`` (same words), Apple Mail ``Begin forwarded message:`` (``Anfang der
  weitergeleiteten Nachricht:``, ``Inizio messaggio inoltrato:``, ``Begin doorgestuurd
  bericht:``, ``転送されたメッセージ:``; often quoted with ``>``), Outlook
  ``-----Original Message-----`` (``Ursprüngliche Nachricht``, ``Messaggio originale``,
  ``Oorspronkelijk bericht``, ``元のメッセージ``) or a bare ``From:/Sent:/To:/Subject:``
  block under a rule (``Von:/Gesendet:``, ``Da:/Inviato:``, ``Van:/Verzonden:``,
  ``差出人:/送信日時:``).  Outlook writes the same block for a reply as for a forward, so
  those shapes count only when the subject says forward (``FW:``, ``WG:``, ``I:``,
  ``Doorst:``, ``TR:``, ``転送:``, ``Fwd:``); the explicit forward markers count alone.
- **attached**: a ``message/rfc822`` part (Outlook and Gmail "forward as attachment"),
  under a forward subject; its own headers name the sender and its Message-ID.

Pure: text and parsed parts in, a :class:`Forwarded` or None out.  Whether a forward is
acted on (only a verified agent's) is the pipeline's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inbound.parsing.message import (
    Attachment,
    ParsedMail,
    normalize_message_id,
    parse_message,
)

__all__ = ["Forwarded", "find_forward", "is_forward_subject"]


@dataclass(frozen=True)
class Forwarded:
    """The original mail inside a forward, and what the forwarder wrote above it."""

    from_address: str
    from_name: str
    subject: str
    text: str
    """The original's text (its own quoting kept, the forward's ``>`` taken off)."""
    words: str
    """What the forwarder wrote above the forward ("" when nothing)."""
    how: str
    """``inline`` or ``attached``."""
    message_id: str | None = None
    """The original's Message-ID when the forward carries it (attached; an inline block
    with a ``Message-ID:`` line), without angle brackets."""
    date: str = ""
    """The original's date as the forward wrote it."""
    html: str | None = None
    """The original's HTML (attached forwards only: inline, the forwarder's words are in
    the same HTML)."""
    attachments: tuple[Attachment, ...] = ()
    """The original's attachments (attached forwards only)."""


_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw|wg|i|doorst|tr|rv|転送)\s*(?:\[\d+\])?\s*[:：]",
    re.IGNORECASE)

# Marker lines: what each client writes above the forwarded header block.
_WORDS = (r"forwarded message|weitergeleitete nachricht|weitergeleitete e-mail|"
          r"messaggio inoltrato|doorgestuurd bericht|転送メッセージ|転送されたメッセージ")
_ORIGINAL = (r"original message|ursprüngliche nachricht|messaggio originale|"
             r"oorspronkelijk bericht|元のメッセージ")
_RULED_FORWARD = re.compile(rf"^-{{2,}}\s*(?:{_WORDS})\s*-{{2,}}$", re.IGNORECASE)
_APPLE_FORWARD = re.compile(
    r"^(?:begin forwarded message|anfang der weitergeleiteten (?:nachricht|e-mail)|"
    r"inizio messaggio inoltrato|begin doorgestuurd bericht|doorgestuurd bericht(?: volgt)?|"
    r"転送されたメッセージ)\s*[:：]$", re.IGNORECASE)
_RULED_ORIGINAL = re.compile(rf"^-{{2,}}\s*(?:{_ORIGINAL})\s*-{{2,}}$", re.IGNORECASE)
_UNDERLINE = re.compile(r"^_{10,}$")

_LABELS = {
    "from": ("from", "von", "da", "van", "差出人", "送信者", "送信元"),
    "date": ("date", "sent", "datum", "gesendet", "data", "inviato", "verzonden", "日付",
             "送信日時", "日時"),
    "subject": ("subject", "betreff", "oggetto", "onderwerp", "件名"),
    "to": ("to", "an", "a", "aan", "宛先"),
    "cc": ("cc", "kopie"),
    "message-id": ("message-id",),
}
_LABEL_OF = {word: label for label, words in _LABELS.items() for word in words}
_HEADER = re.compile(
    r"^\s*\*?(" + "|".join(sorted(map(re.escape, _LABEL_OF), key=len, reverse=True))
    + r")\s*\*?\s*[:：]\*?\s*(.*)$", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_QUOTE = re.compile(r"^>\s?")
_MAX_BLOCK = 12
"""Header lines (with wrapped continuations) read after a marker before giving up."""
_MAX_VALUE = 998
"""A header value longer than a header line may be is cut (bounds the address search)."""


def is_forward_subject(subject: str) -> bool:
    """``Fwd:``, ``FW:``, ``WG:``, ``I:``, ``Doorst:``, ``TR:``, ``転送:`` (after a list tag)."""
    return bool(_FORWARD_SUBJECT.match(subject or ""))


def find_forward(parsed: ParsedMail) -> Forwarded | None:
    """The forwarded original in ``parsed``: inline first (the text the forwarder sees),
    else an attached message under a forward subject; None when this is no forward."""
    forward_subject = is_forward_subject(parsed.subject)
    inline = _inline(parsed.text, forward_subject)
    if inline is not None:
        return inline
    return _attached(parsed) if forward_subject else None


# --- inline forwards ------------------------------------------------------------------

def _unquoted(line: str) -> str:
    return _QUOTE.sub("", line.strip()).strip().strip("*").strip()


def _marker_at(lines: list[str], index: int, forward_subject: bool) -> int | None:
    """Where the header block starts when line ``index`` opens a forward, else None.

    Explicit forward markers always open one; the shapes Outlook also writes for replies
    (``Original Message``, a rule, a bare ``From:`` block) only under a forward subject."""
    line = _unquoted(lines[index])
    if _RULED_FORWARD.match(line) or _APPLE_FORWARD.match(line):
        return index + 1
    if not forward_subject:
        return None
    if _RULED_ORIGINAL.match(line) or _UNDERLINE.match(line):
        return index + 1
    match = _HEADER.match(line)
    if match and _LABEL_OF[match.group(1).lower()] == "from":
        return index
    return None


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int] | None:
    """The header fields from ``start`` (blank lines before them skipped) and the index of
    the first body line; None without a ``From`` that names an address."""
    index = start
    while index < len(lines) and not _unquoted(lines[index]):
        index += 1
    fields: dict[str, str] = {}
    last = ""
    read = 0
    while index < len(lines) and read < _MAX_BLOCK:
        line = _unquoted(lines[index])
        if not line:
            break
        match = _HEADER.match(line)
        if match:
            last = _LABEL_OF[match.group(1).lower()]
            fields.setdefault(last, match.group(2).strip()[:_MAX_VALUE])
        elif last:  # a wrapped value ("Subject: a long\n subject")
            fields[last] = f"{fields[last]} {line}".strip()[:_MAX_VALUE]
        else:
            return None
        index += 1
        read += 1
    if "from" not in fields or _ADDRESS.search(fields["from"]) is None:
        return None
    return fields, index


def _person(value: str) -> tuple[str, str]:
    """(address, display name) of ``Name <a@b>``, ``Name [mailto:a@b]``, ``a@b`` …"""
    found = _ADDRESS.search(value)
    address = found.group(0).lower() if found else ""
    name = re.split(r"[<\[(]", value, maxsplit=1)[0] if found and found.start() else ""
    name = name.replace("mailto:", "").strip().strip("\"'").strip()
    return address, "" if _ADDRESS.fullmatch(name) else name


def _inline(text: str, forward_subject: bool) -> Forwarded | None:
    lines = text.splitlines()
    for index in range(len(lines)):
        start = _marker_at(lines, index, forward_subject)
        if start is None:
            continue
        block = _header_block(lines, start)
        if block is None:
            continue
        fields, body = block
        quoted = lines[index].lstrip().startswith(">")
        original = [(_QUOTE.sub("", line.lstrip()) if quoted else line) for line in lines[body:]]
        address, name = _person(fields["from"])
        message_id = normalize_message_id(fields.get("message-id") or None)
        return Forwarded(from_address=address, from_name=name,
                         subject=fields.get("subject", ""),
                         text="\n".join(original).strip(),
                         words="\n".join(lines[:index]).strip(), how="inline",
                         message_id=message_id, date=fields.get("date", ""))
    return None


# --- attached forwards ----------------------------------------------------------------

def _attached(parsed: ParsedMail) -> Forwarded | None:
    messages = [a for a in parsed.attachments
                if a.content_type in {"message/rfc822", "message/global"}]
    if len(messages) != 1:
        return None
    inner = parse_message(messages[0].data)
    if not inner.from_address:
        return None
    return Forwarded(from_address=inner.from_address, from_name=inner.from_name,
                     subject=inner.subject, text=inner.text.strip(),
                     words=parsed.text.strip(), how="attached",
                     message_id=inner.message_id,
                     date=inner.header("date") or "", html=inner.html,
                     attachments=inner.attachments)
