"""Decide the entitlement of a new ticket with the policy engine, and explain why.

Reads ``ctx.sender``, ``ctx.language``, the recipients and the text; writes
``ctx.entitlement`` (tier, queue, product, category, first-response due time and
the explanation, read by ``record``; target and time zone, read by ``notify`` for
the promise) and, when the text is mostly Japanese, ``ctx.language = "ja"``.
Imported history starts no SLA clock: its due time stays empty.
"""

from __future__ import annotations

from gateway.context import MailContext
from rules.engine import describe_duration
from rules.intake import decide_for
from rules.runtime import current_issue_types, current_policy

name = "apply-rules"
description = "entitlement: tier, target, queue, product and due time, with the reason"


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket:
        ctx.note(name, "skip", f"reply on ticket #{ctx.ticket.number if ctx.ticket else '?'}")
        return
    assert ctx.sender is not None and ctx.parsed is not None
    settings = ctx.services.settings
    recipients = [*ctx.spool.rcpt_tos, *ctx.parsed.to, *ctx.parsed.cc]
    text = ctx.reply.visible if ctx.reply is not None else ctx.parsed.text
    decision = decide_for(
        ctx.session, current_policy(settings), email=ctx.sender.email,
        at=ctx.spool.received_at, recipients=recipients, subject=ctx.parsed.subject, text=text,
        language=ctx.language, default_language=settings.ack_language_default,
        emergency_address=settings.emergency_address)
    ctx.language = decision.requester_language
    found = decision.entitlement
    issue_type, why = current_issue_types(settings).classify(ctx.parsed.subject, text)
    ctx.note(name, "issue-type", why)
    lines = list(found.explanation)
    if ctx.history:
        lines.append("imported history: no SLA clock is started")
    ctx.entitlement = {
        "tier": found.tier, "queue": found.queue, "served_language": found.language,
        "product": found.product or "", "category": decision.category,
        "target": describe_duration(found.target),
        "target_minutes": str(int(found.target.total_seconds() // 60)),
        "calendar": found.calendar, "timezone": found.timezone,
        "within": "yes" if found.within else "",
        "due": "" if ctx.history else found.due.isoformat(),
        "ask_product": ",".join(decision.product_unknown), "issue_type": issue_type,
        "explanation": "; ".join(lines),
    }
    ctx.note(name, "set", ctx.entitlement["explanation"])
