"""Find the ticket a message belongs to, or decide that it opens a new one.

Order (issue: threading): the keyed reply token in any recipient address, then
the headers: ``In-Reply-To`` and ``References`` (newest first) matching a
Message-ID we stored or sent (the parent came first), else a ticket opened by a
reply to this very message (the child came first: this message joins it and
becomes its opening message), else a ticket where a message still waits for this
one or names the same missing message (a sibling came first); then the ``[#N]`` subject tag **only**
when the sender already takes part in that ticket or is a team colleague of its
requester; then Outlook's ``Thread-Index`` (its conversation, on the same terms as the tag
and only with the same subject), for Outlook replies without In-Reply-To or References.
Anything else opens a new ticket.  Tickets opened by replies to this
message before it arrived are joined into one (the oldest number); a joined
ticket's token and tag lead to the ticket it was joined into (issue 14).
Reads ``ctx.parsed``, ``ctx.sender``; writes ``ctx.ticket``, ``ctx.new_ticket``,
``ctx.threaded_by`` and ``ctx.opens_conversation``; may stop a duplicate or an
automatic reply that belongs to nothing.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from gateway.db import flush_if_pending
from gateway.directory import support_identity
from gateway.models import MessageKind, MessageRef, Participant, Person, Ticket
from gateway.pipeline.context import Disposition, MailContext
from gateway.prepared import Prepared
from gateway.thread_index import (
    LINKED,
    OPENING,
    WAITING,
    join_tickets,
    live_ticket_at,
    live_tickets,
    lock_conversation,
    mentions_of,
    named_ids,
    names_as_opening,
    nearest_sibling,
)
from gateway.tickets import (
    indexed_tickets,
    message_id_hash,
    normalise_subject,
    parse_address_detail,
    subject_tag,
)
from inbound.addresses import split_address
from inbound.parsing.message_ids import thread_index_root

name = "thread"
description = "join the message to its ticket or open a new one"

# Built once on the tables' Core columns: building a statement per message, and the ORM's
# compile step per run, cost more than running it.  Core reads do not autoflush, so each
# use flushes first when a row of its table waits in the session (``flush_if_pending``).
_REFS = MessageRef.__table__.c
_DIRECTIONS = Prepared(select(_REFS.direction).where(
    _REFS.message_id_hash == bindparam("hash"), _REFS.ticket_number == bindparam("number")))
_PARTICIPANTS = Participant.__table__.c
_TAKES_PART = Prepared(select(_PARTICIPANTS.id).where(
    _PARTICIPANTS.ticket_number == bindparam("number"),
    _PARTICIPANTS.email == bindparam("email")))


def _by_token(ctx: MailContext) -> Ticket | None:
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
        number = token.ticket_number
        ticket = _followed(ctx, number, f"reply token in {address} names ticket #{number}")
        if ticket is not None:
            return ticket
    return None


def _followed(ctx: MailContext, number: int, hit: str = "") -> Ticket | None:
    """Ticket ``number`` itself, or the one it was joined into (said in the trace, after
    ``hit``); None when there is no such ticket (nothing is noted)."""
    live = live_ticket_at(ctx.session, number)
    if live is None:
        return None
    if hit:
        ctx.note(name, "hit", hit)
    if live.number != number:
        ctx.note(name, "joined", f"ticket #{number} was joined into ticket "
                 f"#{live.number}: the message goes there")
    return live


def _adopt(ctx: MailContext, ticket: Ticket) -> None:
    """The parent of the reply that opened ``ticket`` arrived: the ticket becomes its
    conversation, opened by this message (subject, requester), as if it had come first."""
    ctx.opens_conversation = True
    ticket.subject = ctx.parsed.subject.strip()[:2000] or ticket.subject
    ticket.origin_message_id = ctx.parsed.message_id
    if ctx.sender.agent is None and ctx.sender.email != ticket.requester:
        previous = ticket.requester
        ticket.requester, ticket.requester_name = ctx.sender.email, ctx.sender.name[:200]
        ticket.team_id = ctx.sender.team.id if ctx.sender.team else None
        ctx.note(name, "adopted", f"ticket #{ticket.number} was opened by a reply from "
                 f"{previous} that came first; its requester is now {ctx.sender.email}, who "
                 "started the conversation (tier, queue and due time stay as decided)")
    ctx.note(name, "adopted", f"this message is the parent of the reply that opened ticket "
             f"#{ticket.number}: the ticket takes its subject and starts with it")


def _join_all(ctx: MailContext, tickets: list[Ticket]) -> Ticket:
    """One conversation, one ticket: the oldest number keeps the others' messages."""
    survivor, *others = sorted({t.number: t for t in tickets}.values(), key=lambda t: t.number)
    for other in others:
        moved = join_tickets(ctx.session, survivor, other, ctx.services.now())
        ctx.note(name, "joined", f"ticket #{other.number} ({moved} message(s)) was opened by a "
                 f"reply to this message before it arrived: joined into ticket "
                 f"#{survivor.number}; its Message-IDs and reply tokens now lead there")
    return survivor


def _by_waiting(ctx: MailContext, waiting: list[int], ids: list[str]) -> Ticket | None:
    """Neither parent nor an early reply that opened a ticket: a message on a ticket that
    still waits for this one (``waiting``: those tickets' numbers), else for the same missing
    parent (a sibling).  Joins that one ticket only: naming ids of several tickets never
    joins them together."""
    later = live_tickets(ctx.session, waiting, first=True)
    if later:
        ctx.note(name, "hit", f"a message on ticket #{later[0].number} replies to this one, "
                 "which had not arrived: same conversation")
        ctx.parent_of_waiting = True
        return later[0]
    sibling = nearest_sibling(ctx.session, ids)
    if sibling is None:
        return None
    ctx.note(name, "hit", f"a message on ticket #{sibling.number} names the same earlier "
             "message, which we have not received: same conversation")
    return sibling


def _by_headers(ctx: MailContext) -> Ticket | None:
    own = ctx.parsed.message_id
    ids = named_ids(ctx.parsed.in_reply_to, ctx.parsed.references)
    conversation = thread_index_root(ctx.parsed.header("thread-index"))
    lock_conversation(ctx.session, [own or "", *ids, *([conversation] if conversation else [])])
    parent: Ticket | None = None
    for message_id, number in indexed_tickets(ctx.session, ids):
        parent = _followed(ctx, number,
                           f"references Message-ID {message_id} of ticket #{number}")
        if parent is not None:
            break
    # one look-up for the ways a later message may name this one (opening, linked, waiting)
    named = mentions_of(ctx.session, own, [OPENING, LINKED, WAITING]) if own else {}
    children = live_tickets(ctx.session, named.get(OPENING, []))
    if children:
        ctx.note(name, "hit", "a reply to this message came first and opened ticket(s) "
                 + ", ".join(f"#{t.number}" for t in children))
    linked = live_tickets(ctx.session, named.get(LINKED, []))
    if linked:
        ctx.note(name, "hit", "a reply to this message came first and joined ticket(s) "
                 + ", ".join(f"#{t.number}" for t in linked)
                 + " as the missing parent of a message there")
    if parent is None and not children and not linked:
        return _by_waiting(ctx, named.get(WAITING, []), ids)
    # asked before the join: the survivor may be a linked ticket, opened by a later message
    adopt = parent is None and own is not None and any(
        names_as_opening(ctx.session, t.number, own) for t in children)
    survivor = _join_all(ctx, [*([parent] if parent else []), *children, *linked])
    if adopt:
        _adopt(ctx, survivor)
    return survivor


def _may_use_tag(ctx: MailContext, ticket: Ticket) -> str | None:
    email = ctx.sender.email
    flush_if_pending(ctx.session, Participant)
    participant = _TAKES_PART.scalar(ctx.session, {"number": ticket.number, "email": email})
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
    number = subject_tag(ctx.parsed.subject)
    if number is None:
        return None
    ticket = _followed(ctx, number)
    if ticket is None:
        ctx.note(name, "miss", f"subject tag [#{number}] names no ticket")
        return None
    return _on_tag_terms(
        ctx, ticket, hit=f"subject tag [#{number}]",
        miss=f"subject tag [#{number}] ignored: the sender neither takes part in that ticket "
             "nor is a colleague of its requester")


def _on_tag_terms(ctx: MailContext, ticket: Ticket, *, hit: str, miss: str) -> Ticket | None:
    """``ticket`` when the sender may use its tag (noted as ``hit`` with the reason), else
    None (noted as ``miss``): the one rule for every hint as easy to write as a tag."""
    why = _may_use_tag(ctx, ticket)
    if why is None:
        ctx.note(name, "miss", miss)
        return None
    ctx.note(name, "hit", f"{hit}: the sender {why}")
    return ticket


def _by_thread_index(ctx: MailContext) -> Ticket | None:
    """An Outlook reply that names no Message-ID: the ticket of its ``Thread-Index``
    conversation, when the sender may use that ticket's tag (the same terms: the header is
    as easy to write) and the subject (its ``Thread-Topic``) is still the ticket's: a reply
    that changes the subject asks about something else."""
    conversation = thread_index_root(ctx.parsed.header("thread-index"))
    if conversation is None:
        return None
    found = indexed_tickets(ctx.session, [conversation])
    if not found:
        return None
    number = found[0][1]
    ticket = _followed(ctx, number)
    if ticket is None:
        return None
    topic = ctx.parsed.header("thread-topic") or ctx.parsed.subject
    if not normalise_subject(topic) or normalise_subject(topic) != normalise_subject(
            ticket.subject):
        ctx.note(name, "miss", f"Thread-Index names the conversation of ticket #{number}, "
                 "but the subject is another one (ignored)")
        return None
    return _on_tag_terms(
        ctx, ticket,
        hit=f"Thread-Index continues the Outlook conversation of ticket #{number}, with its "
            "subject",
        miss=f"Thread-Index names the conversation of ticket #{number}, but the sender neither "
             "takes part in it nor is a colleague of its requester")


def _already_recorded(ctx: MailContext, ticket: Ticket) -> bool:
    """Whether the message is on the ticket already; the same look-up tells ``record``
    when the id is not indexed there at all (``ctx.unindexed``: no second query)."""
    message_id = ctx.parsed.message_id
    if not message_id:
        return False
    flush_if_pending(ctx.session, MessageRef)
    directions = set(_DIRECTIONS.scalars(
        ctx.session, {"hash": message_id_hash(message_id), "number": ticket.number}))
    if not directions:
        ctx.unindexed = (message_id, ticket.number)
    return "in" in directions


def run(ctx: MailContext) -> None:
    for signal, finder in (("reply_token", _by_token), ("headers", _by_headers),
                           ("subject_tag", _by_subject_tag), ("thread_index", _by_thread_index)):
        ticket = finder(ctx)
        if ticket is not None:
            if _already_recorded(ctx, ticket):
                ctx.stop(Disposition.IGNORED, f"duplicate: Message-ID {ctx.parsed.message_id} "
                         f"is already on ticket #{ticket.number}")
                return
            ctx.join(ticket, signal)
            return
    if ctx.kind == MessageKind.AUTO_REPLY:
        ctx.stop(Disposition.IGNORED, "automatic reply that belongs to no ticket of ours: "
                 f"{ctx.automatic.reason if ctx.automatic else ''}".rstrip(": "))
        return
    ctx.open_new_ticket()
    ctx.note(name, "new", "no reply token, known Message-ID or usable subject tag: new ticket")
