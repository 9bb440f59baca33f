"""Decide the entitlement of a new ticket with the policy engine, and explain why.

Reads ``ctx.sender``, ``ctx.sender_verified``, ``ctx.language``, the recipients and the
text (an unverified sender gets standard terms, whoever the directory says the From address
is: premium is a privilege of the verified; the ticket still records the From address); writes
``ctx.terms`` (the engine's :class:`rules.engine.Entitlement` with category, issue type and
explanation, stored on the ticket by ``record``; ``notify`` promises by it) and, when the
text is mostly Japanese, ``ctx.language = "ja"``.
Imported history starts no SLA clock: its due time stays empty.  A reply that reopened
a ticket (``ctx.reopened``) restarts the clock: a new round of the SLA from that reply.
"""

from __future__ import annotations

from gateway.active_policy import current_issue_types, current_policy
from gateway.decisions import decide_for
from gateway.escalation import restart_clock
from gateway.models import Role
from gateway.pipeline.context import MailContext, TicketTerms
from rules.classify import product_for
from rules.engine import describe_duration

name = "apply-rules"
description = "entitlement: tier, target, queue, product and due time, with the reason"


def _product_named_in_reply(ctx: MailContext) -> None:
    """A reply to a ticket whose product we asked for: apply that product's terms.

    The new due time is the earlier of the one already promised and the product's own
    counted from this reply, so answering the question never makes a ticket later.
    """
    ticket = ctx.ticket
    if (ticket.product is not None or ticket.first_response_due is None or ctx.history
            or ticket.first_response_at is not None or ctx.role == Role.AGENT or ctx.refusal):
        ctx.note(name, "skip", f"reply on ticket #{ticket.number}")
        return
    if not ctx.sender_verified:  # the product's terms act on the requester's entitlement
        ctx.note(name, "skip", f"reply on ticket #{ticket.number} from an unverified sender: "
                 "a product named in it changes no terms")
        return
    settings = ctx.services.settings
    policy = current_policy(settings)
    text = ctx.reply.visible
    product, _why = product_for(policy, [], ctx.parsed.subject, text, [], [])
    if product is None:
        ctx.note(name, "skip", f"reply on ticket #{ticket.number} names no product")
        return
    found = decide_for(ctx.session, policy, email=ticket.requester, at=ctx.spool.received_at,
                       language=ticket.language, product=product,
                       default_language=settings.ack_language_default).entitlement
    ticket.product = product
    line = f"product {product} named in a reply at {found.received_at:%Y-%m-%d %H:%M} UTC"
    if found.due < ticket.first_response_due:
        ticket.tier, ticket.sla_calendar = found.tier, found.calendar
        ticket.first_response_due = found.due
        line += f": {found.tier}, first response due {found.due:%Y-%m-%d %H:%M} UTC"
    else:
        line += ": the due time already promised is earlier and stays"
    ticket.entitlement = f"{ticket.entitlement}; {line}"
    ctx.note(name, "product", line)


def _restart_clock(ctx: MailContext) -> None:
    """A reopened ticket is a request again: its requester's terms, counted from the reply.

    The entitlement is decided afresh at the reopen time (add-on dates, language hours);
    an emergency ticket keeps the emergency line, in the window the reply arrives in.
    """
    ticket = ctx.ticket
    settings = ctx.services.settings
    policy = current_policy(settings)
    at = ctx.spool.received_at
    emergency = settings.emergency_address if ticket.tier == "emergency" else ""
    found = decide_for(ctx.session, policy, email=ticket.requester, at=at,
                       recipients=[emergency] if emergency else [], language=ticket.language,
                       product=ticket.product, default_language=settings.ack_language_default,
                       emergency_address=emergency).entitlement
    round_number = restart_clock(ctx.session, ticket, at=at, due=found.due, tier=found.tier,
                                 calendar=found.calendar)
    line = (f"reopened at {found.received_at:%Y-%m-%d %H:%M} UTC, SLA round {round_number}: "
            f"{found.tier}, {describe_duration(found.target)}, first response due "
            f"{found.due:%Y-%m-%d %H:%M} UTC")
    ticket.entitlement = f"{ticket.entitlement}; {line}"
    ctx.note(name, "restart", line)


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket:
        if ctx.reopened:
            _restart_clock(ctx)
        _product_named_in_reply(ctx)
        return
    settings = ctx.services.settings
    recipients = [*ctx.spool.rcpt_tos, *ctx.parsed.to, *ctx.parsed.cc]
    text = ctx.reply.visible
    policy = current_policy(settings)
    sender = ctx.sender
    # identify-sender (or on-behalf) looked this very address up in this session already
    looked_up = ((sender.person, sender.agent)
                 if sender.email == sender.email.strip().lower() and not ctx.sent_copy else None)
    decision = decide_for(
        ctx.session, policy, email=sender.email, found=looked_up,
        at=ctx.spool.received_at, recipients=recipients, subject=ctx.parsed.subject, text=text,
        language=ctx.language, default_language=settings.ack_language_default,
        emergency_address=settings.emergency_address,
        verified=ctx.sender_verified or ctx.history)  # history: our own import, nobody acts
    ctx.language = decision.requester_language
    found = decision.entitlement
    issue_type, why = current_issue_types(settings).classify(ctx.parsed.subject, text)
    ctx.note(name, "issue-type", why)
    lines = list(found.explanation)
    if ctx.history:
        lines.append("imported history: no SLA clock is started")
    ctx.terms = TicketTerms(
        found, category=decision.category, issue_type=issue_type, explanation="; ".join(lines),
        ask_product=tuple(policy.spec.products[p].name or p if p in policy.spec.products
                          else p for p in decision.product_unknown),
        starts_clock=not ctx.history)
    ctx.note(name, "set", ctx.terms.explanation)
