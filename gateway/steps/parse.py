"""Parse the raw bytes and split the visible reply from the quoted history.

Reads ``ctx.spool.raw``; writes ``ctx.parsed`` and ``ctx.reply``.  Refuses
nothing: defects are recorded and processing goes on.
"""

from __future__ import annotations

from inbound.reply_text import split_reply

from gateway.context import MailContext
from inbound.parse import parse_message

name = "parse"
description = "parse MIME and separate the new text from quoted history"


def run(ctx: MailContext) -> None:
    ctx.parsed = parse_message(ctx.spool.raw)
    ctx.reply = split_reply(ctx.parsed.text)
    if ctx.parsed.defects:
        ctx.note(name, "defects", "; ".join(ctx.parsed.defects[:5]))
