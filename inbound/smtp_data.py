"""Reading an SMTP DATA section in blocks instead of one line at a time.

aiosmtpd reads DATA with one ``readuntil(b"\\r\\n")`` per line: a 100 KB message is
about 1,300 awaits, list appends and joins on the event loop, which was most of the
CPU an intake costs (bench/RESULTS.md).  :func:`read_data` reads up to the terminator
``CRLF . CRLF`` in blocks of the stream's buffer and gives the bytes aiosmtpd gives
(dot-unstuffed, terminator removed), with aiosmtpd's size limit.  Bytes the client
pipelined after the terminator stay in the stream.

Unlike aiosmtpd it has no line-length limit: a line longer than RFC 5321's 1,000 octets
is kept as it came (as Postfix does), bounded only by the message size.  Refusing it
permanently bounced customers' requests for something their own MTA let through.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

__all__ = ["DataResult", "DataState", "read_data"]

TERMINATOR = b"\r\n.\r\n"
_PREFIXES = tuple(TERMINATOR[:n] for n in range(len(TERMINATOR) - 1, 0, -1))
"""The proper prefixes of the terminator, longest first."""
_END_LINE = len(b".\r\n")
"""The terminator's own line; its leading CRLF ends the message's last line."""


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_MUCH = "too much"  # more bytes than the message size limit


@dataclass(frozen=True)
class DataResult:
    state: DataState
    content: bytes  # empty unless the state is NOMINAL


def _open_prefix(window: bytes) -> int:
    """Length of the longest proper prefix of the terminator that ``window`` ends with."""
    for prefix in _PREFIXES:
        if window.endswith(prefix):
            return len(prefix)
    return 0


async def _take_until_terminator(reader: asyncio.StreamReader, window: bytes) -> tuple[bytes, bool]:
    """The next bytes of the stream and whether they end with the terminator.

    ``window`` is the last four bytes taken before.  If they end with the start of a
    terminator, the stream is taken one byte at a time until it is decided, because
    ``readuntil`` cannot see a separator that began in bytes already taken.
    Otherwise ``readuntil`` takes a block: up to the terminator, or, when the stream
    limit is reached first, all but the bytes that could begin one.
    """
    if _open_prefix(window):
        byte = await reader.readexactly(1)
        return byte, (window + byte).endswith(TERMINATOR)
    try:
        return await reader.readuntil(TERMINATOR), True
    except asyncio.LimitOverrunError as error:
        return await reader.readexactly(error.consumed), False


async def read_data(reader: asyncio.StreamReader, *, size_limit: int | None
                    ) -> DataResult | None:
    """Read one DATA section after the 354 answer; None if the client went away.

    ``size_limit`` counts the transmitted (dot-stuffed) bytes without the terminator,
    as aiosmtpd does.  Once the message is over it, its bytes are dropped while the rest
    is read and discarded.
    """
    content = bytearray()
    state = DataState.NOMINAL
    window = b"\r\n"  # the DATA command's line ended just before the first byte
    try:
        while True:
            block, finished = await _take_until_terminator(reader, window)
            window = (window + block[-4:])[-4:]
            if state is DataState.NOMINAL:
                content += block
                # the terminator's line may still be in the block: allow for it
                if size_limit and len(content) > size_limit + len(TERMINATOR):
                    state, content = DataState.TOO_MUCH, bytearray()
            if finished:
                break
    except asyncio.IncompleteReadError:
        return None
    if state is not DataState.NOMINAL:
        return DataResult(state, b"")
    del content[-_END_LINE:]
    if size_limit and len(content) > size_limit:
        return DataResult(DataState.TOO_MUCH, b"")
    return DataResult(DataState.NOMINAL, _unstuff(bytes(content)))


def _unstuff(content: bytes) -> bytes:
    """Remove the leading dot of every line that starts with one (RFC 5321 4.5.2)."""
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n.", b"\r\n") if b"\r\n." in content else content
