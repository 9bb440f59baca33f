"""Parse the raw bytes and split the visible reply from the quoted history.

Reads ``ctx.analysis`` (computed before the transaction by the processor) or
``ctx.spool.raw``; writes ``ctx.analysis``, ``ctx.parsed`` and ``ctx.reply``.
Refuses nothing: defects are recorded and processing goes on.  The one exception
is a row that holds only the header block of a message the IMAP poller found over
``max_message_size`` (spool option ``too_large``): a ticket must not be made from
headers alone, so it stops with QUARANTINED and says where the message was left.
"""

from __future__ import annotations

from typing import Any

from gateway.context import Disposition, MailContext
from inbound.analysis import analyze

name = "parse"
description = "parse MIME and separate the new text from quoted history"


def run(ctx: MailContext) -> None:
    if ctx.analysis is None:
        ctx.analysis = analyze(ctx.spool.raw, ctx.spool.mail_from)
    ctx.parsed, ctx.reply = ctx.analysis.parsed, ctx.analysis.reply
    if ctx.parsed.defects:
        ctx.note(name, "defects", "; ".join(ctx.parsed.defects[:5]))
    options = ctx.spool.options or {}
    if options.get("too_large"):
        ctx.stop(Disposition.QUARANTINED, too_large_reason(options))


def too_large_reason(options: dict[str, Any]) -> str:
    """Why an over-size IMAP message was not taken, and where to find it."""
    size, limit = options["too_large"]["size"], options["too_large"]["limit"]
    imap = options.get("imap", {})
    return (f"message of {size:,} bytes is over max_message_size ({limit:,}); left on the "
            f"server (found in mailbox {imap.get('mailbox')} folder {imap.get('folder')} uid "
            f"{imap.get('uid')}); only its header block was kept")
