"""Everything we learn from the raw bytes alone, computed once per message.

Parsing, reply splitting and the loop/bounce classifiers are pure CPU work on
the bytes; the processor runs them *before* it takes the database write lock, so
intake commits never wait behind a parse (and ``gateway serve`` runs them in a
child process it can stop: ``gateway.pipeline.analysis_pool``).

Every analyser reads the bytes after :func:`inbound.limits.contain`: header fields
and MIME parts beyond the per-message limits are cut once, here, for all of them
(SMTP, pipe and IMAP alike).  The bytes are then parsed once
(:func:`inbound.parsing.source.read_source`), and that one MIME tree is what the
parser, mail-parser's survey, the bounce and auto-reply classifiers and the
``Authentication-Results`` reader all read.  The tree is not kept on the
:class:`Analysis`: the analysis crosses a pipe from the analysis pool's children, and
every reader of the tree has run by then.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.limits import Limits, contain
from inbound.parsing.automatic import AutomaticVerdict, detect_automatic
from inbound.parsing.bounces import BounceReport, detect_bounce
from inbound.parsing.forwarded import Forwarded, find_forward
from inbound.parsing.html_reply import reply_parts
from inbound.parsing.message import ParsedMail, parse_message
from inbound.parsing.reply_text import ReplyParts
from inbound.parsing.source import header_values, read_source

__all__ = ["Analysis", "SINGLETON_HEADERS", "analyze", "raw_header_values"]

SINGLETON_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "subject", "date",
                               "message-id", "in-reply-to", "references"})
"""The fields RFC 5322 (§3.6) allows at most once in a message's header."""


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedMail
    reply: ReplyParts
    automatic: AutomaticVerdict | None
    bounce: BounceReport | None
    quarantine: str = ""
    """Non-empty when a limit says the message must not be processed (the reason)."""
    limits_hit: tuple[str, ...] = ()
    """What the limits cut or left out, one sentence each (for the trace and the ticket)."""
    authentication_results: tuple[str, ...] = ()
    """Raw ``Authentication-Results`` values, topmost first, exactly as received (no RFC 2047
    decoding: the sender authority reads them, and a decoded value could forge a pass)."""
    repeated_headers: tuple[str, ...] = ()
    """The header fields RFC 5322 allows once that this message carries more than once
    (lower case): a signature vouches for one instance, and which one we would read is
    not which one it vouched for (``gateway.trust.sender_auth``)."""
    forwarded: Forwarded | None = None
    """The original mail when this is a forward (inline or attached): only a verified
    agent's forward is acted on (``gateway.pipeline.steps.on_behalf``)."""


def raw_header_values(raw: bytes, name: str) -> tuple[str, ...]:
    """Every value of header ``name`` in the header block, unfolded, bytes read as UTF-8
    (a scan of the bytes, for callers without a parsed message; ``analyze`` reads them
    from its tree)."""
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


def _repeated(names: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name in (n.lower() for n in names):
        if name in SINGLETON_HEADERS:
            if name in seen and name not in repeated:
                repeated.append(name)
            seen.add(name)
    return tuple(repeated)


def analyze(raw: bytes, mail_from: str = "", limits: Limits | None = None) -> Analysis:
    limits = limits or Limits()
    contained = contain(raw, limits)
    source = read_source(contained.raw)
    parsed = parse_message(source, limits)
    bounce = detect_bounce(source, mail_from)
    return Analysis(
        parsed=parsed,
        reply=reply_parts(parsed),
        automatic=detect_automatic(source, mail_from, bounce=bounce),
        bounce=bounce,
        authentication_results=header_values(source.message, "authentication-results"),
        repeated_headers=_repeated(source.message.keys()),
        quarantine=contained.quarantine,
        limits_hit=contained.notes + parsed.limits_hit,
        forwarded=find_forward(parsed),
    )
