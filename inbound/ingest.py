"""``gateway ingest``: one raw message from a file or stdin through the same durable spool.

The MTA passes the envelope as Postfix's pipe(8) does (DESIGN 10): ``-f SENDER``
and ``-r RECIPIENT`` for each recipient.  The envelope is stored on the spool row
exactly as SMTP stores it, so threading, guards and rules see the same message
whichever door it came through.

Exit status for the MTA (sysexits): 0 stored (or already stored), 65 unusable
input (empty, not a mail message, too big), 67 a recipient refused, 75 temporary
failure (the MTA retries).  A refusal prints its RFC 3463 enhanced status code first
(``5.1.1 <x@support.example>: …``): Postfix takes that code over the exit status, so
the sender's DSN says what SMTP would have said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import BinaryIO

from gateway.directory import SupportIdentity
from inbound.addresses import is_storable
from inbound.recipients import recipient_refusal

__all__ = [
    "EX_DATAERR", "EX_NOUSER", "EX_OK", "EX_TEMPFAIL", "Envelope", "Refused", "UnusableInput",
    "check_complete", "check_raw", "check_recipients", "check_sender", "envelope_of",
    "read_limited",
]

EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75

NULL_SENDER = "<>"
"""What SMTP stores as ``mail_from`` for ``MAIL FROM:<>`` (aiosmtpd keeps the brackets)."""

_HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+:)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 1 << 16


class Refused(Exception):
    """The gateway will not take this message: ``status`` (RFC 3463) first, then why."""

    def __init__(self, status: str, text: str, exit_code: int) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text
        self.exit_code = exit_code


class UnusableInput(Refused):
    """The bytes cannot be a mail message we take; retrying will not help (exit 65)."""

    def __init__(self, text: str, status: str = "5.6.0") -> None:
        super().__init__(status, text, EX_DATAERR)


@dataclass(frozen=True)
class Envelope:
    """The spool row's ``mail_from`` and ``rcpt_tos``, as SMTP would have stored them."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


def read_limited(stream: BinaryIO, limit: int) -> bytes:
    """Read the whole input; over ``limit`` bytes: refuse with the real size (5.3.4).

    The rest of an over-size input is read and counted, not kept, so the sentence
    names the true size and the MTA never writes into a closed pipe.
    """
    data = stream.read(limit + 1)
    if len(data) <= limit:
        return data
    size = len(data)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
    raise UnusableInput(f"message too big ({size} bytes > {limit} bytes allowed)", "5.3.4")


def check_complete(data: bytes) -> None:
    """Refuse, for now, an MTA's input that ends in the middle of a line (75, ``4.3.0``).

    An MTA pipes every line with its newline, and the pipe has no terminator as SMTP's
    ``.`` is: a delivery agent stopped while writing (``postfix stop``, a crash) looks
    like the end of the message.  Stored, the cut copy answered 0, and the MTA's retry
    of the whole message was then taken for its duplicate: the rest was lost.
    """
    if data.strip() and not data.endswith(b"\n"):
        raise Refused("4.3.0", "the input ends in the middle of a line: the delivery was "
                      "cut short, nothing was stored", EX_TEMPFAIL)


def check_raw(raw: bytes, limit: int) -> bytes:
    """Refuse empty, oversized or header-less input; strip an mbox ``From `` line."""
    if not raw.strip():
        raise UnusableInput("the input is empty")
    if len(raw) > limit:
        raise UnusableInput(f"message too big ({len(raw)} bytes > {limit} bytes allowed)",
                            "5.3.4")
    first = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first):
        raise UnusableInput("the input does not start with a mail header")
    if first.startswith(b"From "):
        raw = raw.lstrip(b"\r\n").split(b"\n", 1)[1] if b"\n" in raw else b""
        if not raw.strip():
            raise UnusableInput("the input holds only an mbox separator")
    return raw


def _is_null(sender: str) -> bool:
    """``""``, ``<>`` and pipe(8)'s default stand-in ``MAILER-DAEMON`` mean the null sender."""
    bare = _bare(sender)
    return not bare or bare.upper() == "MAILER-DAEMON"


def _return_path(raw: bytes) -> str | None:
    """The first ``Return-Path`` of the header block: the one the delivering MTA wrote."""
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    cut = min((i for i in (end, crlf) if i >= 0), default=len(raw))
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:cut + 4])
    value = headers.get("Return-Path")
    return None if value is None else str(value)


def envelope_of(raw: bytes, sender: str | None, recipients: Sequence[str]) -> Envelope:
    """The envelope to store: ``-f``/``-r`` as given, brackets dropped as SMTP drops them.

    The null sender is stored as ``<>`` like SMTP's ``MAIL FROM:<>``.  Without ``-f``
    the sender stays unknown (``""``, the headers decide as before) unless the MTA's
    ``Return-Path`` names the null sender (``<>`` or Postfix's ``<MAILER-DAEMON>``).
    """
    if sender is None:
        return_path = _return_path(raw)
        mail_from = NULL_SENDER if return_path is not None and _is_null(return_path) else ""
    else:
        mail_from = NULL_SENDER if _is_null(sender) else _bare(sender)
    return Envelope(mail_from, tuple(_bare(r) for r in recipients))


def _bare(address: str) -> str:
    """``<a@b>`` → ``a@b``: SMTP stores paths without their brackets."""
    return address.strip().strip("<>").strip()


def check_sender(sender: str | None) -> None:
    """Refuse a ``-f`` SMTP refuses at MAIL (not UTF-8, a control character: ``5.1.7``,
    exit 65): it cannot be stored, so 75 would have the MTA retry it for days."""
    if sender is not None and not is_storable(sender):
        raise UnusableInput(f"<{_shown(_bare(sender))}>: Sender address syntax is not valid",
                            "5.1.7")


def _shown(address: str) -> str:
    """``address`` for the MTA's DSN, on one line: bytes that were not UTF-8 and control
    characters as ``\\xe9``, ``\\x0a``."""
    text = address.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda control: f"\\x{ord(control.group()):02x}", text)


def check_recipients(recipients: Sequence[str], support: SupportIdentity,
                     max_recipients: int) -> None:
    """Refuse the message if SMTP's RCPT check refuses any recipient (exit 67, or 75 for
    the temporary ``4.5.3`` of too many recipients)."""
    for accepted, address in enumerate(_bare(r) for r in recipients):
        refusal = recipient_refusal(address, support, accepted=accepted, limit=max_recipients)
        if refusal is not None:
            code, status, text = refusal.split(" ", 2)
            exit_code = EX_TEMPFAIL if code.startswith("4") else EX_NOUSER
            raise Refused(status, f"<{_shown(address)}>: {text}", exit_code)
