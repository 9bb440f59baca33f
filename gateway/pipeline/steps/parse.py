"""Parse the raw bytes and split the visible reply from the quoted history.

The parsing itself happened before the transaction (the processor's analysis, in
``ctx.analysis``: ``ctx.parsed`` and ``ctx.reply`` come from it); this step reports it.
Refuses nothing: defects are recorded and processing goes on.  The exceptions:
a row that holds only the header block of a message the IMAP poller found over
``max_message_size`` (spool option ``too_large``): a ticket must not be made from
headers alone, so it stops with QUARANTINED and says where the message was left;
and a header block over ``max_header_block_size`` (quarantined with that reason).
What the other per-message limits cut (``inbound.limits``: header fields, MIME parts,
attachments, winmail.dat objects) is one trace line and one message flag each, and
the attachments not stored are listed by name and size in the trace.
"""

from __future__ import annotations

from typing import Any

from gateway.pipeline.context import Disposition, MailContext

name = "parse"
description = "parse MIME and separate the new text from quoted history"


def run(ctx: MailContext) -> None:
    if ctx.parsed.defects:
        ctx.note(name, "defects", "; ".join(ctx.parsed.defects[:5]))
    options = ctx.spool.options or {}
    if options.get("too_large"):
        ctx.stop(Disposition.QUARANTINED, too_large_reason(options))
        return
    if ctx.analysis.quarantine:
        ctx.stop(Disposition.QUARANTINED, ctx.analysis.quarantine)
        return
    _record_limits(ctx)


def _record_limits(ctx: MailContext) -> None:
    """What the per-message limits left out: one trace line each, the list of attachments
    not stored, and a flag on the message so that agents reading the ticket know."""
    for note in ctx.analysis.limits_hit:
        ctx.note(name, "limit", note)
        ctx.flags.append(f"limit: {note}")
    dropped = ctx.parsed.dropped
    if dropped:
        shown = ", ".join(f"{filename} ({size:,} bytes)"
                          for filename, size in dropped[:_LISTED_DROPPED])
        more = len(dropped) - _LISTED_DROPPED
        ctx.note(name, "not stored", f"attachments not stored: {shown}"
                 + (f" and {more:,} more" if more > 0 else ""))


_LISTED_DROPPED = 1000


def too_large_reason(options: dict[str, Any]) -> str:
    """Why an over-size IMAP message was not taken, and where to find it."""
    size, limit = options["too_large"]["size"], options["too_large"]["limit"]
    imap = options.get("imap", {})
    return (f"message of {size:,} bytes is over max_message_size ({limit:,}); left on the "
            f"server (found in mailbox {imap.get('mailbox')} folder {imap.get('folder')} uid "
            f"{imap.get('uid')}); only its header block was kept")
