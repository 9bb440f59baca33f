"""Copies of agents' replies taken from a shared mailbox's Sent folder.

Agents answer customers from their own mail client through the shared mailbox; the
IMAP poller spools what they sent with ``options={"sent": True}``.  Such a copy is
already delivered: it is recorded on its ticket as an **agent** message (so it
counts as the first response) and nothing is sent.  Its sender is the shared
mailbox itself, trusted because the copy came from our own authenticated IMAP
account (the spool options say which), never because of a header.

Runs right after ``thread``.  Reads ``ctx.sent_copy`` (spool option ``sent``), ``ctx.parsed``,
``ctx.sender`` and the thread decision (``authenticate`` already trusted the copy: method
``sent_folder``); writes ``ctx.sender`` (an agent), ``ctx.role`` and, for a copy the thread
step could not place, ``ctx.ticket`` (by subject tag, which the mailbox may use on
any ticket) or an IGNORED stop.  ``guard-loop`` and ``notify`` ask ``ctx.sent_copy`` too,
so that our own From address is no loop and nothing is sent.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from gateway.models import Agent, MessageRef, Role, Ticket
from gateway.pipeline.context import Disposition, MailContext, Sender
from gateway.thread_index import live_ticket
from gateway.tickets import message_id_hash, subject_tag

name = "sent-copy"
description = "an agent's reply from the shared Sent folder: record as agent, send nothing"

NO_MATCH = "sent message matches no ticket"


def _mailbox_identity(ctx: MailContext) -> Sender:
    """The agent identity of the shared mailbox (a directory agent named in From is kept)."""
    if ctx.sender.agent is not None:
        return ctx.sender
    account = str(((ctx.spool.options or {}).get("imap") or {}).get("account") or "").lower()
    email = account if "@" in account else ctx.sender.email
    display = ctx.parsed.from_name or email
    # Not added to the session: the mailbox is an identity, not a directory entry.
    agent = Agent(email=email, name=display, departments=[], languages=[], extra={})
    return Sender(email=email, name=display, agent=agent)


def _by_subject_tag(ctx: MailContext) -> Ticket | None:
    number = subject_tag(ctx.parsed.subject)
    ticket = ctx.session.get(Ticket, number) if number is not None else None
    if ticket is not None:
        ctx.note(name, "hit", f"subject tag [#{number}] (our own mailbox may use any tag)")
        live = live_ticket(ctx.session, ticket)
        if live.number != ticket.number:
            ctx.note(name, "joined", f"ticket #{ticket.number} was joined into ticket "
                     f"#{live.number}: the copy goes there")
        return live
    return ticket


_RECEIVED_ON = select(MessageRef.id).where(
    MessageRef.message_id_hash == bindparam("hash"),
    MessageRef.ticket_number == bindparam("number"), MessageRef.direction == "in")
"""Built once (a statement built per message costs more than running it)."""


def _already_on(ctx: MailContext, ticket: Ticket) -> bool:
    message_id = ctx.parsed.message_id
    return bool(message_id) and ctx.session.scalar(_RECEIVED_ON, {
        "hash": message_id_hash(message_id or ""), "number": ticket.number}) is not None


def run(ctx: MailContext) -> None:
    if not ctx.sent_copy:
        ctx.note(name, "skip", "not from a Sent folder")
        return
    ctx.sender = _mailbox_identity(ctx)  # authenticate trusted the channel (sent_folder)
    ctx.role = Role.AGENT
    if ctx.new_ticket:
        ticket = _by_subject_tag(ctx)
        if ticket is None:
            ctx.stop(Disposition.IGNORED, NO_MATCH)
            return
        if _already_on(ctx, ticket):
            ctx.stop(Disposition.IGNORED, f"duplicate: already on ticket #{ticket.number}")
            return
        ctx.join(ticket, "subject_tag")
    ctx.note(name, "agent", f"copy of a reply sent from the shared mailbox by {ctx.sender.email}: "
             f"recorded on ticket #{ctx.ticket.number} as the agent's, nothing is sent")
