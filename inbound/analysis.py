"""Everything we learn from the raw bytes alone, computed once per message.

Parsing, reply splitting and the loop/bounce classifiers are pure CPU work on
the bytes; the processor runs them *before* it takes the database write lock, so
intake commits never wait behind a parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.automatic import AutomaticVerdict, detect_automatic
from inbound.bounces import BounceReport, detect_bounce
from inbound.html_reply import reply_parts
from inbound.parse import ParsedMail, parse_message
from inbound.reply_text import ReplyParts

__all__ = ["Analysis", "analyze"]


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedMail
    reply: ReplyParts
    automatic: AutomaticVerdict | None
    bounce: BounceReport | None


def analyze(raw: bytes, mail_from: str = "") -> Analysis:
    parsed = parse_message(raw)
    bounce = detect_bounce(raw, mail_from)
    return Analysis(
        parsed=parsed,
        reply=reply_parts(parsed),
        automatic=detect_automatic(raw, mail_from, bounce=bounce),
        bounce=bounce,
    )
