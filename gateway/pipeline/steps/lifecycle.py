"""Ticket status: what a reply does to it, and reopening (MISSION §2).

Reads the ticket, ``ctx.role``, ``ctx.kind``, ``ctx.set_status``; writes the ticket's
status (and ``resolved_at``), ``ctx.reopened``, or turns a late reply into a new
ticket that ``follows`` the closed one.  Automatic replies (and any automatic mail
of an agent: an out-of-office is no answer), notes without a command, refused and
unverified messages change nothing.

- requester (or colleague, or a person copied on the ticket: a ``cc`` reply is a
  customer's public reply like the requester's, with the same effect and no more)
  reply on ``pending`` → ``open``;
- on ``solved``/``closed`` within ``reopen_window_days`` of the resolution → ``open``
  again, and the requester is told, **if the sender is verified** (``ctx.sender_verified``):
  reopening acts on the requester's identity (and restarts their SLA clock, on their terms:
  ``apply-rules`` reads ``ctx.reopened``).  An unverified sender's reply is recorded on the
  ticket with the flag ``not reopened: …`` and the status stays (the agents' notice shows
  both; an agent may ``#status open``);
- later (or always, with ``replies_only_to_open``) the reply opens a new ticket linked to
  the old one, whoever sends it (a new request gets the terms its sender is entitled to);
- a verified agent's public reply moves ``new`` to ``open``; ``#status X`` sets X.

The wait on the customer (``ticket.pending_since``, read by ``gateway/pending.py`` for the
reminder and auto-close of DESIGN §13) starts when the ticket becomes ``pending`` and
starts again with each public agent reply while it stays pending (the customer has a new
question to answer); it ends with any other status.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.models import MessageKind, Role, Ticket, TicketStatus
from gateway.pipeline.context import MailContext

name = "lifecycle"
description = "status changes, reopening, and late replies as new linked tickets"

RESOLVED = frozenset({TicketStatus.SOLVED, TicketStatus.CLOSED})


def _set(ctx: MailContext, ticket: Ticket, status: TicketStatus, why: str) -> None:
    if ticket.status == status:
        return
    before = ticket.status
    ticket.status = status
    ticket.resolved_at = ctx.services.now() if status in RESOLVED else None
    _wait(ctx, ticket)
    ctx.note(name, "status", f"#{ticket.number}: {before.value} → {status.value} ({why})")


def _wait(ctx: MailContext, ticket: Ticket) -> None:
    """Start (again) or end the wait on the customer, with its one reminder."""
    pending = ticket.status == TicketStatus.PENDING
    ticket.pending_since = ctx.services.now() if pending else None
    ticket.pending_reminded_at = None


def _customer_reply(ctx: MailContext, ticket: Ticket) -> None:
    settings = ctx.services.settings
    if ticket.status == TicketStatus.PENDING:
        _set(ctx, ticket, TicketStatus.OPEN, "the customer answered")
        return
    if ticket.status not in RESOLVED:
        return
    resolved = ticket.resolved_at or ticket.updated_at
    window = timedelta(days=settings.reopen_window_days)
    late = ctx.spool.received_at - resolved > window
    if settings.replies_only_to_open or late:
        why = ("only open tickets accept replies" if settings.replies_only_to_open else
               f"more than {settings.reopen_window_days} days after it was {ticket.status.value}")
        ctx.open_new_ticket()
        ctx.follows, ctx.role = ticket.number, Role.REQUESTER
        ctx.note(name, "follow-up", f"reply to {ticket.status.value} ticket #{ticket.number} "
                 f"{why}: a new ticket that follows it")
        return
    if not ctx.sender_verified:
        ctx.flags.append(f"not reopened: #{ticket.number} stays {ticket.status.value}, "
                         f"{ctx.sender.email} is not a verified sender (an agent may reopen it "
                         "with #status open)")
        ctx.note(name, "unchanged", ctx.flags[-1])
        return
    _set(ctx, ticket, TicketStatus.OPEN, f"reopened by a reply within "
         f"{settings.reopen_window_days} days")
    ctx.reopened = True


def run(ctx: MailContext) -> None:
    if ctx.new_ticket or ctx.history or ctx.refusal:
        return
    ticket = ctx.ticket
    if ctx.kind == MessageKind.AUTO_REPLY or (ctx.role == Role.AGENT
                                               and ctx.automatic is not None):
        ctx.note(name, "unchanged", "automatic reply: the status stays "
                 f"{ticket.status.value}")
        return
    if ctx.role == Role.AGENT:
        if ctx.set_status:
            _set(ctx, ticket, TicketStatus(ctx.set_status), "the agent's #status command")
        elif ctx.kind == MessageKind.PUBLIC and ticket.status == TicketStatus.NEW:
            _set(ctx, ticket, TicketStatus.OPEN, "first agent reply")
        elif ctx.kind == MessageKind.PUBLIC and ticket.status == TicketStatus.PENDING:
            _wait(ctx, ticket)
        return
    if ctx.sender.email == ticket.requester or ctx.role in (Role.COLLEAGUE, Role.CC):
        _customer_reply(ctx, ticket)
