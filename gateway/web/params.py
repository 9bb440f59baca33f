"""Numbers read from what a browser sends (query strings, form fields, paths).

Why one place: ``str.isdigit()`` is true for "²" and "٣", which ``int()`` refuses or reads
as another digit, and ``int()`` refuses more than 4,300 digits; a page that trusted either
answered 500, and a number past 64 bits made the database driver raise.  Here a number is
ASCII digits, short enough for any column.
"""

from __future__ import annotations

__all__ = ["MAX_NUMBER", "number_in"]

MAX_NUMBER = 2**31 - 1
"""The largest number a page reads (every id and ticket number fits a 32-bit column)."""


def number_in(text: object, maximum: int = MAX_NUMBER) -> int | None:
    """``text`` as a number from 0 to ``maximum``, or None when it is anything else."""
    if not isinstance(text, str) or not (0 < len(text) <= 10) or not text.isascii() \
            or not text.isdigit():
        return None
    value = int(text)
    return value if value <= maximum else None
