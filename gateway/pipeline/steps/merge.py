"""Apply ``#merge N``: this ticket's messages and participants move to ticket N.

Reads ``ctx.merge_into`` (written by the ``#merge`` command: a verified agent's, naming
another ticket that exists and was not merged itself).  Runs last, after ``record`` and
``notify``: the command's own message moves too, and whatever else the agent wrote was
relayed to this ticket's requester first.  The move is the one threading uses for
tickets that turn out to be one conversation (``gateway.thread_index.join_tickets``):
messages, Message-IDs, mentions and spool rows go to N, N gains this ticket's
participants, and this ticket is closed with ``merged_into = N``; its reply tokens,
Message-IDs and ``[#old]`` subject tag lead to N from then on.  N keeps its own owner, or
takes this ticket's when it has none.

Both requesters get a ``ticket_merged`` notice on their own ticket (its number, subject,
thread and reply address; one notice when they are the same person).  Neither learns the
other ticket's subject or requester, only its number.  Imported history and automatic
mail change nothing (as with ``#status``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.models import Agent, Role, Ticket, TicketStatus
from gateway.notices import queue_notice, thread_of
from gateway.pipeline.context import MailContext
from gateway.thread_index import join_tickets, live_ticket

name = "merge"
description = "move the ticket into the one named with #merge and tell both requesters"


def _target(ctx: MailContext, ticket: Ticket, number: int) -> Ticket | None:
    """Ticket N as it continues now (it may have been joined since the command read it)."""
    found = ctx.session.get(Ticket, number)
    if found is None:
        return None
    target = live_ticket(ctx.session, found)
    return None if target.number == ticket.number else target


def _tell(ctx: MailContext, ticket: Ticket, thread: tuple[str | None, list[str]],
          *, merged: bool, other: int) -> None:
    """The requester of ``ticket`` hears of the merge on their own ticket."""
    if _is_agent(ctx.session, ticket.requester):
        ctx.note(name, "skip", f"#{ticket.number} was opened by a support agent: no notice")
        return
    item = queue_notice(
        ctx.session, ctx.services, ticket, kind="ticket_merged", to_address=ticket.requester,
        to_name=ticket.requester_name, role=Role.REQUESTER,
        context={"requester_name": ticket.requester_name, "merged": merged,
                 "other_number": other},
        spool_id=ctx.spool.id, in_reply_to=thread[0], references=thread[1])
    ctx.outbox_ids.append(item.id)
    ctx.note(name, "queued", f"merge notice to {item.rcpt_to} on #{ticket.number} "
             f"(outbox {item.id})")


def _is_agent(session: Session, address: str) -> bool:
    return session.get(Agent, address) is not None


def run(ctx: MailContext) -> None:
    if ctx.merge_into is None:
        return
    if ctx.history or ctx.automatic is not None:
        ctx.note(name, "unchanged", "imported history or automatic mail: #merge not applied")
        return
    ticket = ctx.ticket
    target = _target(ctx, ticket, ctx.merge_into)
    if target is None:
        ctx.note(name, "unchanged", f"ticket #{ctx.merge_into} now continues as this one: "
                 "#merge ignored")
        return
    # each requester's own thread, read before the messages move
    threads = (thread_of(ctx.session, ticket, ticket.requester),
               thread_of(ctx.session, target, target.requester))
    moved = join_tickets(ctx.session, target, ticket, ctx.services.now())
    ticket.status = TicketStatus.CLOSED
    target.owner = target.owner or ticket.owner
    ctx.spool.ticket_number = target.number
    ctx.spool.reason += f", then merged into ticket #{target.number}"
    ctx.note(name, "merged", f"ticket #{ticket.number} ({moved} message(s), its participants) "
             f"merged into #{target.number}; its reply tokens, Message-IDs and subject tag "
             "lead there")
    _tell(ctx, ticket, threads[0], merged=True, other=target.number)
    if target.requester != ticket.requester:
        _tell(ctx, target, threads[1], merged=False, other=ticket.number)
