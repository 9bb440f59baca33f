"""Which customer files an agents' notice may carry, and how the rest are named.

An agents' notice re-attaches the customer's files so that agents see them at once.
A smarthost refuses a whole message over its size limit (commonly 10 MB, counted after
base64, which grows the files by 4/3), so a large file would make the notice
undeliverable.  Files are attached in their order while the running total stays within
``agents_notice_attachment_limit``; the others are listed by name and size in the notice
(they stay in the ticket's history).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["human_size", "within_limit"]

Attachment = tuple[str, str, bytes]


def human_size(size: int) -> str:
    """``9.1 MB``, ``120 KB``, ``300 bytes`` (binary units, one decimal above a MB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{round(size / 1024)} KB"
    return f"{size} bytes"


def within_limit(attachments: Sequence[Attachment], limit: int
                 ) -> tuple[list[Attachment], list[dict[str, str]]]:
    """The files to attach (in order, total ≤ ``limit``) and ``{name, size}`` of the rest."""
    attached: list[Attachment] = []
    left_out: list[dict[str, str]] = []
    total = 0
    for attachment in attachments:
        size = len(attachment[2])
        if total + size <= limit:
            attached.append(attachment)
            total += size
        else:
            left_out.append({"name": attachment[0], "size": human_size(size)})
    return attached, left_out
