"""Find the ticket a message belongs to, or decide that it opens a new one.

Order (issue: threading): the keyed reply token in any recipient address, then
``In-Reply-To`` and ``References`` (newest first) matching a Message-ID we stored
or sent, then the ``[#N]`` subject tag **only** when the sender already takes part
in that ticket or is a team colleague of its requester.  Anything else opens a
new ticket.  Reads ``ctx.parsed``, ``ctx.sender``; writes ``ctx.ticket``,
``ctx.new_ticket`` and ``ctx.threaded_by``; may stop a duplicate or an automatic
reply that belongs to nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.context import Disposition, MailContext
from gateway.directory import support_identity
from gateway.models import MessageRef, Participant, Person, Ticket
from gateway.tickets import (
    find_ticket_by_message_ids,
    message_id_hash,
    parse_address_detail,
    subject_tag,
)
from inbound.addresses import split_address

name = "thread"
description = "join the message to its ticket or open a new one"


def _by_token(ctx: MailContext) -> Ticket | None:
    assert ctx.parsed is not None
    support = support_identity(ctx.session)
    addresses = [*ctx.spool.rcpt_tos, *ctx.parsed.to, *ctx.parsed.cc]
    for address in addresses:
        recipient = split_address(address)
        if (recipient is None or not recipient.detail or recipient.domain not in support.domains
                or recipient.local != support.local_part):
            continue
        token, _note = parse_address_detail(ctx.services.secret, recipient.detail)
        if token is None:
            ctx.note(name, "miss", f"reply token in {address} is not valid (ignored)")
            continue
        ticket = ctx.session.get(Ticket, token.ticket_number)
        if ticket is not None:
            ctx.note(name, "hit", f"reply token in {address} names ticket #{ticket.number}")
            return ticket
    return None


def _by_headers(ctx: MailContext) -> Ticket | None:
    assert ctx.parsed is not None
    ids = [*ctx.parsed.in_reply_to, *reversed(ctx.parsed.references)]
    found = find_ticket_by_message_ids(ctx.session, ids)
    if found is None:
        return None
    ticket, message_id = found
    ctx.note(name, "hit", f"references Message-ID {message_id} of ticket #{ticket.number}")
    return ticket


def _may_use_tag(ctx: MailContext, ticket: Ticket) -> str | None:
    assert ctx.sender is not None
    email = ctx.sender.email
    participant = ctx.session.scalar(select(Participant.id).where(
        Participant.ticket_number == ticket.number, Participant.email == email))
    if participant is not None or email == ticket.requester:
        return "takes part in it"
    if ctx.sender.agent is not None and ctx.sender_verified:
        return "is a support agent (verified)"
    person = ctx.sender.person
    if person is not None and person.team_id and ticket.team_id == person.team_id:
        requester = ctx.session.get(Person, ticket.requester)
        if requester is not None and requester.team_id == person.team_id:
            return f"is a colleague of the requester (team {person.team_id})"
    return None


def _by_subject_tag(ctx: MailContext) -> Ticket | None:
    assert ctx.parsed is not None
    number = subject_tag(ctx.parsed.subject)
    if number is None:
        return None
    ticket = ctx.session.get(Ticket, number)
    if ticket is None:
        ctx.note(name, "miss", f"subject tag [#{number}] names no ticket")
        return None
    why = _may_use_tag(ctx, ticket)
    if why is None:
        ctx.note(name, "miss", f"subject tag [#{number}] ignored: the sender neither takes part "
                 "in that ticket nor is a colleague of its requester")
        return None
    ctx.note(name, "hit", f"subject tag [#{number}]: the sender {why}")
    return ticket


def _already_recorded(ctx: MailContext, ticket: Ticket) -> bool:
    assert ctx.parsed is not None
    if not ctx.parsed.message_id:
        return False
    return ctx.session.scalar(select(MessageRef.id).where(
        MessageRef.message_id_hash == message_id_hash(ctx.parsed.message_id),
        MessageRef.ticket_number == ticket.number, MessageRef.direction == "in")) is not None


def run(ctx: MailContext) -> None:
    for signal, finder in (("reply_token", _by_token), ("headers", _by_headers),
                           ("subject_tag", _by_subject_tag)):
        ticket = finder(ctx)
        if ticket is not None:
            if _already_recorded(ctx, ticket):
                message_id = ctx.parsed.message_id if ctx.parsed else None
                ctx.stop(Disposition.IGNORED, f"duplicate: Message-ID {message_id} is already "
                         f"on ticket #{ticket.number}")
                return
            ctx.ticket, ctx.threaded_by = ticket, signal
            return
    if ctx.kind == "auto_reply":
        ctx.stop(Disposition.IGNORED, "automatic reply that belongs to no ticket of ours: "
                 f"{ctx.automatic.reason if ctx.automatic else ''}".rstrip(": "))
        return
    ctx.new_ticket, ctx.threaded_by = True, "new_ticket"
    ctx.note(name, "new", "no reply token, known Message-ID or usable subject tag: new ticket")
