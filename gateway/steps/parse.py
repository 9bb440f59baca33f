"""Parse the raw bytes and split the visible reply from the quoted history.

Reads ``ctx.analysis`` (computed before the transaction by the processor) or
``ctx.spool.raw``; writes ``ctx.analysis``, ``ctx.parsed`` and ``ctx.reply``.
Refuses nothing: defects are recorded and processing goes on.
"""

from __future__ import annotations

from gateway.context import MailContext
from inbound.analysis import analyze

name = "parse"
description = "parse MIME and separate the new text from quoted history"


def run(ctx: MailContext) -> None:
    if ctx.analysis is None:
        ctx.analysis = analyze(ctx.spool.raw, ctx.spool.mail_from)
    ctx.parsed, ctx.reply = ctx.analysis.parsed, ctx.analysis.reply
    if ctx.parsed.defects:
        ctx.note(name, "defects", "; ".join(ctx.parsed.defects[:5]))
