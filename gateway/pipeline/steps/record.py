"""Write the ticket, the message with its role and attachments, and the thread index.

Reads everything the earlier steps decided; writes ``Ticket`` (when new),
``Participant``, ``MessageRecord``, ``AttachmentRecord`` and ``MessageRef``, and
marks the spool row processed, all in the caller's one transaction.  A refused
message changes no ticket: the spool row keeps its raw bytes, state ``ignored``
and the reason.  A duplicate request is stored as a closed ticket linked to the
open one it repeats.

The Cc addresses of the requester's own mail (the new request, or a later reply that
Cc's someone new) are copied on the ticket (``gateway/participants.py``: never support's
addresses, agents or automatic senders), only when the sender authority vouches for the
requester: an unverified claim copies nobody (the message is flagged, an agent may
``#cc add``).  Never from imported history, automatic mail or a duplicate request.
"""

from __future__ import annotations

from typing import Any

from gateway.models import (
    AttachmentRecord,
    MessageKind,
    MessageRecord,
    Role,
    SpoolState,
    Ticket,
    TicketStatus,
)
from gateway.participants import cc_refusal, copy_on, is_cc, on_ticket
from gateway.pipeline.context import MailContext
from gateway.thread_index import named_ids, record_mentions
from gateway.tickets import (
    insert_persistent,
    insert_row,
    insert_rows,
    participant_for,
    record_message_ref,
)
from inbound.parsing.message_ids import thread_index_root

name = "record"
description = "store ticket, message and attachments"


def _new_ticket(ctx: MailContext) -> Ticket:
    """The new ticket, written now (its number is needed at once) with one ``INSERT``:
    ``insert_persistent``, not the unit of work."""
    now = ctx.services.now()
    terms = ctx.terms
    found = terms.entitlement
    duplicate = ctx.duplicate_of
    return insert_persistent(
        ctx.session, Ticket,
        subject=ctx.parsed.subject.strip()[:2000] or "(no subject)",
        status=TicketStatus.NEW if duplicate is None else TicketStatus.CLOSED,
        requester=ctx.sender.email,
        requester_name=ctx.sender.name[:200],
        team_id=ctx.sender.team.id if ctx.sender.team else None,
        language=ctx.language,
        queue=found.queue,
        tier=found.tier,
        entitlement=terms.explanation,
        product=found.product or None,
        category=terms.category or "technical",
        first_response_due=terms.due,
        sla_calendar=found.calendar or None,
        issue_type=terms.issue_type or None,
        created_at=ctx.spool.received_at if ctx.history else now,
        updated_at=ctx.spool.received_at if ctx.history else now,
        origin_message_id=ctx.parsed.message_id,
        follows=ctx.follows,
        duplicate_of=None if duplicate is None else duplicate.number,
        resolved_at=None if duplicate is None else now,
    )


def _copy_cc(ctx: MailContext, ticket: Ticket) -> None:
    """The requester's Cc addresses become Cc participants (see the module's docstring)."""
    if (not ctx.parsed.cc or ctx.history or ctx.automatic is not None
            or ctx.duplicate_of is not None or ctx.role != Role.REQUESTER
            or ctx.sender.email != ticket.requester):
        return
    settings = ctx.services.settings
    if not ctx.sender_verified:
        present = on_ticket(ctx.session, ticket)
        wanted = [a for a in ctx.parsed.cc
                  if cc_refusal(ctx.session, settings, ticket, a, present=present) is None
                  and not is_cc(ctx.session, ticket, a, present=present)]
        if wanted:
            ctx.flags.append(f"Cc not copied on ticket #{ticket.number}: {ctx.sender.email} "
                             "is not a verified sender (an agent may '#cc add' them): "
                             + ", ".join(wanted))
            ctx.note(name, "cc", ctx.flags[-1])
        return
    for copied in copy_on(ctx.session, settings, ticket, ctx.parsed.cc):
        ctx.note(name, "cc" if copied.added else "miss", copied.explanation)


def _store_message(ctx: MailContext, values: dict[str, Any]) -> None:
    """The message row and its attachments' rows, written now with prebuilt ``INSERT``
    statements (the attachments in one ``executemany``): nothing in this transaction
    reads them back as objects, and the unit of work's flush cost several times these
    statements."""
    message_pk, _ = insert_row(ctx.session, MessageRecord, values)
    insert_rows(ctx.session, AttachmentRecord, [
        {"message_pk": message_pk, "filename": a.filename[:500],
         "content_type": a.content_type[:200], "size": a.size, "sha256": a.sha256,
         "inline": a.inline, "data": a.data}
        for a in ctx.parsed.attachments])


REFUSALS = {
    "not_admin": "only team admins may reply to a ticket submitted by a colleague",
    "before_cutoff": "the ticket was created and last updated before the team cut-off date",
}


def _refused(ctx: MailContext) -> None:
    ctx.spool.state = SpoolState.IGNORED
    ctx.spool.ticket_number = ctx.ticket.number
    ctx.spool.processed_at = ctx.services.now()
    ctx.spool.reason = (f"refused: {ctx.sender.email} on ticket #{ctx.ticket.number}: "
                        f"{REFUSALS.get(ctx.refusal, ctx.refusal)}")
    ctx.note(name, "refused", ctx.spool.reason)


def _forwarders_note(ctx: MailContext, ticket: Ticket) -> None:
    """A ticket opened on behalf of a customer (``on-behalf``): the forwarding agent takes
    part as ``agent``, and their words above the forward are an internal note after the
    customer's message; the forward's own Message-ID leads to the ticket."""
    forward = ctx.on_behalf
    if forward is None:
        return
    participant_for(ctx.session, ticket, forward.agent.email, Role.AGENT, flush=False)
    record_message_ref(ctx.session, forward.message_id, ticket.number, "in")
    if not forward.words.strip():
        return
    ctx.session.add(MessageRecord(
        ticket_number=ticket.number, spool_id=ctx.spool.id, message_id=forward.message_id,
        from_address=forward.agent.email, from_name=forward.agent.name[:200],
        role=Role.AGENT, kind=MessageKind.NOTE, subject=forward.subject[:2000],
        text=forward.words, full_text=forward.full_text, html=None,
        received_at=ctx.spool.received_at, threaded_by="forwarded",
        explanation=f"{forward.agent.email} forwarded the mail above on behalf of "
                    f"{ticket.requester}: their words, an internal note", flags=[]))


def run(ctx: MailContext) -> None:
    if ctx.refusal:
        _refused(ctx)
        return
    if ctx.new_ticket:
        ctx.created(_new_ticket(ctx))
    ticket = ctx.ticket
    now = ctx.services.now()
    # a ticket made just now has no participants or indexed ids in the database yet
    made_now = ctx.new_ticket
    # written now, with its id (the acknowledgement's Reply-To asks for it again)
    participant_for(ctx.session, ticket, ctx.sender.email, ctx.role, new_ticket=made_now,
                    flush=False)
    _copy_cc(ctx, ticket)
    visible = ctx.reply.visible if ctx.reply.visible.strip() else ctx.parsed.text.strip()
    _store_message(ctx, {
        "ticket_number": ticket.number, "spool_id": ctx.spool.id,
        "message_id": ctx.parsed.message_id,
        "from_address": ctx.sender.email, "from_name": ctx.sender.name[:200],
        "team_id": ctx.sender.team.id if ctx.sender.team else None,
        "role": ctx.role, "kind": ctx.kind, "subject": ctx.parsed.subject[:2000],
        "text": visible, "full_text": ctx.parsed.text, "html": ctx.parsed.html,
        "received_at": (ctx.parsed.date if ctx.history and ctx.parsed.date
                        else ctx.spool.received_at),
        "threaded_by": ctx.threaded_by,
        "explanation": "; ".join(t["explanation"] for t in ctx.trace
                                 if t["step"] in {"thread", "on-behalf", "lifecycle",
                                                  "duplicates"}),
        "flags": list(ctx.flags),
    })
    _forwarders_note(ctx, ticket)
    record_message_ref(ctx.session, ctx.parsed.message_id, ticket.number, "in",
                       known_new=ctx.on_behalf is None and (
                           made_now or ctx.unindexed == (ctx.parsed.message_id, ticket.number)))
    if ctx.on_behalf is None:  # (a forward's Thread-Index is the forwarder's conversation)
        # Outlook's conversation, for a later reply of it that names no Message-ID (``thread``)
        record_message_ref(ctx.session, thread_index_root(ctx.parsed.header("thread-index")),
                           ticket.number, "in")
    record_mentions(ctx.session, named_ids(ctx.parsed.in_reply_to, ctx.parsed.references),
                    ticket.number, opening=ctx.new_ticket or ctx.opens_conversation,
                    new_ticket=made_now, linked=ctx.parent_of_waiting)
    if not ctx.new_ticket and not ctx.history and ctx.kind != MessageKind.AUTO_REPLY:
        ticket.updated_at = now
        if ctx.answers_requester and ticket.first_response_at is None:
            ticket.first_response_at = ctx.spool.received_at
    ctx.spool.state = SpoolState.PROCESSED
    ctx.spool.ticket_number = ticket.number
    ctx.spool.processed_at = now
    ctx.spool.reason = (f"new ticket #{ticket.number}" if ctx.new_ticket
                        else f"added to ticket #{ticket.number} by {ctx.threaded_by}")
    if ctx.duplicate_of is not None:
        ctx.spool.reason += f", a duplicate of #{ctx.duplicate_of.number}"
    elif ctx.follows is not None:
        ctx.spool.reason += f", following closed ticket #{ctx.follows}"
    ctx.note(name, "stored", ctx.spool.reason + f" as {ctx.role} {ctx.kind} message")
