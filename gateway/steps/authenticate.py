"""How sure are we of the sender?  Recorded as ``ctx.auth_level`` for later decisions.

Reads ``ctx.spool`` and ``ctx.sender``; writes ``ctx.auth_level``:
``token`` (a valid reply token was used), ``directory`` (the From address is in the
directory), or ``none``.  Privileged actions (issue: sender authentication) will
require more than the From header; this step only measures.
"""

from __future__ import annotations

from gateway.context import MailContext
from gateway.tickets import parse_reply_token
from inbound.addresses import split_address

name = "authenticate"
description = "measure how sure we are of who sent the message"


def run(ctx: MailContext) -> None:
    assert ctx.sender is not None
    for address in ctx.spool.rcpt_tos:
        recipient = split_address(address)
        if recipient and recipient.detail and parse_reply_token(ctx.services.secret,
                                                                recipient.detail):
            ctx.auth_level = "token"
            break
    else:
        ctx.auth_level = "directory" if ctx.sender.kind != "unknown" else "none"
    ctx.note(name, ctx.auth_level, f"sender assurance: {ctx.auth_level}")
