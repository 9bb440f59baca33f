"""Apply ``#assign``: the ticket's owner, and a mail that tells the assignee.

Reads ``ctx.set_owner`` (written by the ``#assign`` command: a verified agent's, naming an
agent of the directory, or ``none``); writes ``Ticket.owner`` (None for ``none``, no
mail) and, unless agents assigned the ticket to themselves, queues a ``ticket_assigned``
mail to the assignee (English, like all mail for the support team) whose Reply-To is the
ticket's address for them as an agent: answering it from their own, authenticated
address is an agent reply.  Runs after ``record``, so the owner is set with the message
that asked for it.  Imported history and automatic mail change nothing (as with
``#status``).
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import bindparam, select

from gateway.models import Agent, MessageRecord, Role, Ticket
from gateway.notices import excerpt, queue_notice, thread_of
from gateway.pipeline.commands.assign import NOBODY
from gateway.pipeline.context import MailContext

name = "assign"
description = "set the owner named with #assign and tell the assignee by mail"

_OPENING_TEXT = (select(MessageRecord.text)
                 .where(MessageRecord.ticket_number == bindparam("number"))
                 .order_by(MessageRecord.id).limit(1))
"""Built once (a statement built per message costs more than running it)."""


def _first_words(ctx: MailContext, ticket: Ticket) -> str:
    """What the ticket's opening message says (the assignee's first look at it)."""
    text = ctx.session.scalar(_OPENING_TEXT, {"number": ticket.number})
    return excerpt(text or "")


def _tell(ctx: MailContext, ticket: Ticket, agent: Agent) -> None:
    in_reply_to, references = thread_of(ctx.session, ticket, agent.email)
    due = ticket.first_response_due if ticket.first_response_at is None else None
    by = ctx.sender.agent.name if ctx.sender.agent is not None else ""
    item = queue_notice(
        ctx.session, ctx.services, ticket, kind="ticket_assigned", to_address=agent.email,
        to_name=agent.name, role=Role.AGENT, language="en",
        context={"assignee_name": agent.name or None,
                 "assigned_by": f"{by} <{ctx.sender.email}>" if by else ctx.sender.email,
                 "requester_email": ticket.requester,
                 "requester_name": ticket.requester_name or None,
                 "status": ticket.status.value, "tier": ticket.tier, "queue": ticket.queue,
                 "first_response_due": (due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                                        if due is not None else None),
                 "excerpt": _first_words(ctx, ticket)},
        spool_id=ctx.spool.id, in_reply_to=in_reply_to, references=references)
    ctx.outbox_ids.append(item.id)
    ctx.note(name, "queued", f"ticket assigned to {agent.email} (outbox {item.id})")


def run(ctx: MailContext) -> None:
    if not ctx.set_owner:
        return
    if ctx.history or ctx.automatic is not None:
        ctx.note(name, "unchanged", "imported history or automatic mail: #assign not applied")
        return
    ticket = ctx.ticket
    if ctx.set_owner == NOBODY:
        if ticket.owner is None:
            ctx.note(name, "unchanged", f"#{ticket.number} has no owner")
        else:
            ctx.note(name, "owner", f"#{ticket.number}: owner {ticket.owner} → (none)")
            ticket.owner = None
        return
    agent = ctx.session.get(Agent, ctx.set_owner)
    if agent is None:  # the command checked it; the directory changed meanwhile
        ctx.note(name, "unchanged", f"{ctx.set_owner} is no longer an agent: #assign ignored")
        return
    if ticket.owner == agent.email:
        ctx.note(name, "unchanged", f"#{ticket.number} is already owned by {agent.email}")
        return
    before = ticket.owner
    ticket.owner = agent.email
    ctx.note(name, "owner", f"#{ticket.number}: owner {before or '(none)'} → {agent.email}")
    if agent.email == ctx.sender.email:
        ctx.note(name, "skip", "assigned to themselves: no mail")
        return
    _tell(ctx, ticket, agent)
