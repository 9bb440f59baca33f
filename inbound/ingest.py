"""``gateway ingest``: one raw message from a file or stdin through the same durable spool.

Exit status for the MTA (sysexits): 0 stored (or already stored), 65 unusable
input (empty, or not a mail message), 75 temporary failure (the MTA retries).
"""

from __future__ import annotations

import logging
import re

__all__ = ["EX_DATAERR", "EX_OK", "EX_TEMPFAIL", "UnusableInput", "check_raw"]

log = logging.getLogger(__name__)

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75

_HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+:)")


class UnusableInput(Exception):
    """The bytes cannot be a mail message; retrying will not help."""


def check_raw(raw: bytes, limit: int) -> bytes:
    """Refuse empty, oversized or header-less input; strip an mbox ``From `` line."""
    if not raw.strip():
        raise UnusableInput("the input is empty")
    if len(raw) > limit:
        raise UnusableInput(f"the message is {len(raw)} bytes, over the {limit}-byte limit")
    first = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first):
        raise UnusableInput("the input does not start with a mail header")
    if first.startswith(b"From "):
        raw = raw.lstrip(b"\r\n").split(b"\n", 1)[1] if b"\n" in raw else b""
        if not raw.strip():
            raise UnusableInput("the input holds only an mbox separator")
    return raw


