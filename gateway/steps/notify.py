"""Queue the mail this message calls for; never sends anything itself.

Reads the ticket and the sender; writes outbox rows (``ctx.outbox_ids``).  A new
ticket from a person gets an acknowledgement; automatic mail, imported history
and our own agents get none (RFC 3834: never answer automatic mail).
"""

from __future__ import annotations

from gateway.context import MailContext
from outbound.notices import queue_acknowledgement
from outbound.promise import acknowledgement_promise

name = "notify"
description = "queue acknowledgements and notices in the outbox"


def run(ctx: MailContext) -> None:
    assert ctx.ticket is not None and ctx.sender is not None and ctx.parsed is not None
    if not ctx.new_ticket:
        ctx.note(name, "skip", "a reply: no acknowledgement")
        return
    if ctx.history:
        ctx.note(name, "skip", "imported history: nothing is sent")
        return
    if ctx.automatic is not None:
        ctx.note(name, "skip", f"automatic mail ({ctx.automatic.kind}): never answered")
        return
    if ctx.sender.agent is not None:
        ctx.note(name, "skip", "opened by a support agent: no acknowledgement")
        return
    item = queue_acknowledgement(ctx.session, ctx.services, ctx.ticket, ctx.parsed, ctx.reply,
                                 ctx.language, ctx.spool.id,
                                 promise=acknowledgement_promise(ctx.entitlement, ctx.language))
    ctx.outbox_ids.append(item.id)
    ctx.note(name, "queued", f"acknowledgement to {item.rcpt_to} (outbox {item.id})")
