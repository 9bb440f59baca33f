"""Bounds on what one message may cost, applied before any parser sees the bytes.

Why: a crafted message (400,000 tiny MIME parts, a one-megabyte encoded Subject, a
winmail.dat of 20,000 files) once cost seconds of CPU and hundreds of megabytes, and
on the single processing lane of ``gateway serve`` that delayed everyone's
acknowledgement.  The standard library's parser builds its whole tree before we can
count anything, so the cuts happen here, on the raw bytes, in linear time:

* a header field longer than ``max_header_bytes`` is cut to that length (as Postfix's
  ``header_size_limit`` does);
* a header block longer than ``max_header_block_bytes`` is no customer's mail: the
  message is quarantined with that reason (its raw bytes stay in the spool);
* MIME parts beyond ``max_mime_parts`` are not read: the bytes are cut before the
  delimiter line of the first part too many.

:func:`contain` never changes what is stored: the spool keeps the original bytes
(``gateway inbox replay`` after raising a limit reads everything again).
Attachment count and size and TNEF objects are bounded where those are decoded
(``inbound.parsing.message``, ``inbound.parsing.tnef``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Contained", "Limits", "contain"]


@dataclass(frozen=True)
class Limits:
    """Per-message limits; the defaults are those of ``gateway.config.Settings``."""

    max_mime_parts: int = 1000
    max_attachments: int = 100
    max_attachments_bytes: int = 25 * 1024 * 1024
    max_tnef_objects: int = 5000
    max_header_bytes: int = 64 * 1024
    max_header_block_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Contained:
    """The bytes the analysis reads, what was cut, and a reason to quarantine (or "")."""

    raw: bytes
    notes: tuple[str, ...] = ()
    quarantine: str = ""
    limits_hit: tuple[str, ...] = field(default=())


_BOUNDARY = re.compile(rb"""(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))""")
_DELIMITER_LINE = re.compile(rb"\n--([^\r\n]{0,210})")


def contain(raw: bytes, limits: Limits) -> Contained:
    """Apply the header and MIME-part limits to ``raw``; linear in its length.

    The usual message passes untouched (no copy of its bytes is made)."""
    head_end = _head_end(raw)
    if head_end > limits.max_header_block_bytes:
        reason = (f"header block of {head_end:,} bytes is over max_header_block_bytes "
                  f"({limits.max_header_block_bytes:,}); no mail client writes that")
        # The analysis still reads the first fields, for the trace and the inbox listing.
        return Contained(raw[:_line_start(raw, limits.max_header_block_bytes)] + b"\n\n",
                         (reason,), reason, ("max_header_block_bytes",))
    notes: list[str] = []
    hit: list[str] = []
    head = raw[:head_end]
    if head_end > limits.max_header_bytes:
        head, cut = _cut_long_fields(head, limits.max_header_bytes)
        if cut:
            notes.append(f"{len(cut)} header field(s) longer than max_header_bytes "
                         f"({limits.max_header_bytes:,}) cut: " + ", ".join(cut[:10]))
            hit.append("max_header_bytes")
    body_end = len(raw)
    cut_at = _excess_parts_offset(raw, head_end, limits.max_mime_parts)
    if cut_at is not None:
        notes.append(f"more than max_mime_parts ({limits.max_mime_parts:,}) MIME parts: the "
                     f"last {len(raw) - cut_at:,} bytes were not read (the raw message "
                     "keeps them)")
        hit.append("max_mime_parts")
        body_end = cut_at
    if not notes:
        return Contained(raw)
    return Contained(head + raw[head_end:body_end] + b"\n", tuple(notes), "", tuple(hit))


def _head_end(raw: bytes) -> int:
    """Offset just after the blank line ending the header block (or the end)."""
    found = re.search(rb"\r?\n\r?\n", raw)
    return len(raw) if found is None else found.end()


def _line_start(raw: bytes, offset: int) -> int:
    start = raw.rfind(b"\n", 0, offset)
    return max(start, 0)


def _cut_long_fields(head: bytes, limit: int) -> tuple[bytes, list[str]]:
    """Cut every header field (with its folded lines) to ``limit`` bytes."""
    fields: list[list[bytes]] = []  # the lines of each field, joined once (not += per line)
    cut: list[str] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
        else:
            fields.append([line])
    out = []
    for lines in fields:
        text = b"".join(lines)
        if len(text) > limit:
            name = text.split(b":", 1)[0][:60].decode("ascii", "replace").strip()
            cut.append(f"{name} ({len(text):,} bytes)")
            ending = b"\r\n" if text.endswith(b"\r\n") else b"\n"
            text = text[:limit].rstrip(b"\r\n") + ending
        out.append(text)
    return b"".join(out), cut


def _excess_parts_offset(raw: bytes, body_start: int, max_parts: int) -> int | None:
    """Offset of the delimiter line that opens MIME part number ``max_parts + 1``, if any.

    A cheap count first (lines starting with "--" bound the number of delimiters);
    only when it is over the limit are the lines matched against the message's
    declared boundaries.
    """
    if raw.count(b"\n--", max(body_start - 1, 0)) <= max_parts:
        return None
    boundaries = {(m.group(1) or m.group(2)).strip() for m in _BOUNDARY.finditer(raw)}
    if not boundaries:
        return None
    parts = 0
    for match in _DELIMITER_LINE.finditer(raw, max(body_start - 1, 0)):
        line = match.group(1).rstrip()
        if line in boundaries:
            parts += 1
            if parts > max_parts:
                return match.start()
    return None
