"""Everything we learn from the raw bytes alone, computed once per message.

Parsing, reply splitting and the loop/bounce classifiers are pure CPU work on
the bytes; the processor runs them *before* it takes the database write lock, so
intake commits never wait behind a parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.automatic import AutomaticVerdict, detect_automatic
from inbound.bounces import BounceReport, detect_bounce
from inbound.parse import ParsedMail, parse_message
from inbound.reply_text import ReplyParts, split_reply

__all__ = ["Analysis", "analyze", "raw_header_values"]


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedMail
    reply: ReplyParts
    automatic: AutomaticVerdict | None
    bounce: BounceReport | None
    authentication_results: tuple[str, ...] = ()
    """Raw ``Authentication-Results`` values, topmost first, exactly as received (no RFC 2047
    decoding: the sender authority reads them, and a decoded value could forge a pass)."""


def raw_header_values(raw: bytes, name: str) -> tuple[str, ...]:
    """Every value of header ``name`` in the header block, unfolded, bytes read as UTF-8."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    wanted = name.lower().encode() + b":"
    values: list[list[bytes]] = []
    inside = False
    for line in head.splitlines():
        if line[:1] in {b" ", b"\t"}:
            if inside:
                values[-1].append(line.strip())
            continue
        inside = line[:len(wanted)].lower() == wanted
        if inside:
            values.append([line[len(wanted):].strip()])
    return tuple(b" ".join(v).decode("utf-8", "replace") for v in values)


def analyze(raw: bytes, mail_from: str = "") -> Analysis:
    parsed = parse_message(raw)
    bounce = detect_bounce(raw, mail_from)
    return Analysis(
        parsed=parsed,
        reply=split_reply(parsed.text),
        automatic=detect_automatic(raw, mail_from, bounce=bounce),
        bounce=bounce,
        authentication_results=raw_header_values(raw, "authentication-results"),
    )
