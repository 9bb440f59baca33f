"""Threading whatever the order: the ids messages name, conversation locks, joined tickets.

A reply can be processed before its parent (several SMTP clients, several worker
threads or processes).  So besides the Message-IDs we stored or sent
(``MessageRef``), every stored message's ``In-Reply-To``/``References`` ids are
kept (``MessageMention``), marked ``opening`` when named by the message its ticket
starts with and ``waiting`` when named by a later message whose parent had not
arrived either.  A message then also finds the ticket that a reply to it opened
earlier (and starts it), or that a sibling naming the same missing parent is on.

Two processing transactions of one conversation must not both decide "new
ticket": on PostgreSQL each takes a transaction-scoped advisory lock on every id
it carries (its own and the ones it names), in sorted order; a second message
sharing an id waits until the first commits and then sees its rows.  On SQLite
the writers are serialised anyway (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, literal, select, text, update
from sqlalchemy.orm import Session

from gateway.db import flush_if_pending
from gateway.models import (
    MessageMention,
    MessageRecord,
    MessageRef,
    Participant,
    SpoolEntry,
    Ticket,
    TicketStatus,
)
from gateway.prepared import Prepared
from gateway.tickets import insert_rows, message_id_hash

__all__ = [
    "MAX_NAMED_IDS",
    "LINKED",
    "NAMED",
    "OPENING",
    "WAITING",
    "join_tickets",
    "live_ticket",
    "live_ticket_at",
    "live_tickets",
    "lock_conversation",
    "mentions_of",
    "named_ids",
    "names_as_opening",
    "nearest_sibling",
    "record_mentions",
]

MAX_NAMED_IDS = 30
"""In-Reply-To plus the newest References kept and looked up (a hostile header may hold
thousands; every real client's fit)."""

_MAX_HOPS = 50


def named_ids(in_reply_to: Sequence[str], references: Sequence[str]) -> list[str]:
    """The ids a message names, nearest first: In-Reply-To, then References newest first."""
    seen: dict[str, str] = {}
    for message_id in [*in_reply_to, *reversed(references)]:
        seen.setdefault(message_id_hash(message_id), message_id)
        if len(seen) >= MAX_NAMED_IDS:
            break
    return list(seen.values())


def lock_conversation(session: Session, ids: Iterable[str]) -> None:
    """Serialise transactions that share any of these ids (PostgreSQL advisory locks).

    Sorted, so two transactions never wait for each other crosswise.  A hash collision
    only makes two unrelated messages wait for one another."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite: one writer at a time already
    keys = sorted({int(message_id_hash(i)[:15], 16) for i in ids if i})
    if keys:  # one round trip; the locks are taken in the sorted order of the subquery
        session.execute(text("SELECT count(pg_advisory_xact_lock(k)) FROM "
                             "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ids"),
                        {"keys": keys})


def live_ticket(session: Session, ticket: Ticket) -> Ticket:
    """The ticket a (possibly joined) ticket now continues as, row-locked.

    The lock makes a message that arrives by token or tag wait for a join in progress
    rather than land on the ticket being emptied."""
    return live_ticket_at(session, ticket.number) or ticket


def live_ticket_at(session: Session, number: int) -> Ticket | None:
    """:func:`live_ticket` from a ticket number: one locked read per hop, and None when
    there is no ticket ``number`` (callers with only a number need no read of their own)."""
    found: Ticket | None = None
    for _ in range(_MAX_HOPS):
        locked = session.get(Ticket, number, with_for_update=True, populate_existing=True)
        if locked is None:
            return found
        found = locked
        if locked.merged_into is None:
            return locked
        number = locked.merged_into
    return found


OPENING, LINKED, WAITING, NAMED = "opening", "linked", "waiting", "named"
_STRENGTH = {NAMED: 0, WAITING: 1, LINKED: 2, OPENING: 3}


_MENTION = cast(Table, MessageMention.__table__).c
_SIBLINGS = (select(_MENTION.message_id_hash, _MENTION.kind, _MENTION.ticket_number)
             .where(_MENTION.message_id_hash.in_(bindparam("hashes", expanding=True)),
                    _MENTION.kind.in_([literal(kind) for kind in (OPENING, LINKED, WAITING)]))
             .distinct())
"""Built once: building it per message (the ORM's compile and cache key) cost three times
what running it does."""


@functools.lru_cache(maxsize=8)
def _mentions_of(kinds: tuple[str, ...]) -> Prepared:
    """The mentions of one id of these kinds: one statement per set of kinds (callers pass
    a constant one), each kind a plain parameter, run in the writer lane for every reply."""
    return Prepared(select(_MENTION.kind, _MENTION.ticket_number)
                    .where(_MENTION.message_id_hash == bindparam("hash"),
                           _MENTION.kind.in_([literal(kind) for kind in kinds]))
                    .distinct())


def nearest_sibling(session: Session, ids: Sequence[str]) -> Ticket | None:
    """The ticket where another message waits for one of these missing ids (``ids`` nearest
    first, as :func:`named_ids` gives them), as the live ticket it continues as, row-locked.

    The nearest id wins: a bogus or shared ancestor further up (``References: <yes>``, as a
    mistyped ``git send-email`` writes it) must not pull a reply away from the ticket that
    waits for its own parent.  Of the tickets naming that id, one whose mention joins when
    it arrives (opening, then linked) before a merely waiting one, then the oldest."""
    hashes = [message_id_hash(i) for i in ids if i]
    if not hashes:
        return None
    flush_if_pending(session, MessageMention)  # a Core read does not autoflush
    nearness = {key: position for position, key in reversed(list(enumerate(hashes)))}
    rows = session.execute(_SIBLINGS, {"hashes": hashes}).all()
    for _key, _kind, number in sorted(
            rows, key=lambda row: (nearness[row[0]], -_STRENGTH[row[1]], row[2])):
        live = live_ticket_at(session, number)
        if live is not None:
            return live
    return None


def mentions_of(session: Session, message_id: str, kinds: Iterable[str]) -> dict[str, list[int]]:
    """The tickets on which a message names ``message_id``, by the kind of mention, numbers
    ascending: what looking up each kind for the one id would find, in one
    query (pass the numbers to :func:`live_tickets`)."""
    flush_if_pending(session, MessageMention)  # a Core read does not autoflush
    rows = _mentions_of(tuple(sorted(set(kinds)))).rows(
        session, {"hash": message_id_hash(message_id)})
    found: dict[str, list[int]] = {}
    for kind, number in rows:
        found.setdefault(kind, []).append(number)
    return {kind: sorted(numbers) for kind, numbers in found.items()}


def live_tickets(session: Session, numbers: Iterable[int], *, first: bool = False
                 ) -> list[Ticket]:
    """These tickets as the live tickets they continue as (row-locked), oldest first;
    ``first``: only the oldest that exists (nothing else is locked)."""
    found: dict[int, Ticket] = {}
    for number in sorted(numbers):
        live = live_ticket_at(session, number)
        if live is not None:
            found.setdefault(live.number, live)
            if first:
                break
    return [found[n] for n in sorted(found)]


def record_mentions(session: Session, ids: Sequence[str], ticket_number: int,
                    opening: bool, *, new_ticket: bool = False, linked: bool = False) -> None:
    """Keep the ids a stored message names, once per ticket, with how it names them.

    ``linked``: the message joined the ticket as the missing parent of a message there
    (its own parent is missing too): when the ids it names arrive, they join that
    ticket's conversation as an opening message's do.  ``new_ticket``: the ticket was made
    in this transaction and this is its first message, so it has no mentions yet (no
    look-up).  New rows are written at once (one ``executemany``); a stronger kind for a
    row already there, with the next flush."""
    if not ids:
        return
    kind = OPENING if opening else LINKED if linked else NAMED
    hashes = {message_id_hash(i): i for i in ids}
    if kind == NAMED and session.scalar(select(MessageRef.id).where(
            MessageRef.message_id_hash.in_(list(hashes))).limit(1)) is None:
        kind = WAITING  # none of its ancestors is here yet
    present = {} if new_ticket else {
        m.message_id_hash: m for m in session.scalars(select(MessageMention).where(
            MessageMention.ticket_number == ticket_number,
            MessageMention.message_id_hash.in_(list(hashes))))}
    new_rows = []
    for key, message_id in hashes.items():
        existing = present.get(key)
        if existing is None:
            new_rows.append({"message_id": message_id[:998], "message_id_hash": key,
                             "ticket_number": ticket_number, "kind": kind})
        elif _STRENGTH[kind] > _STRENGTH.get(existing.kind, 0):
            existing.kind = kind
    insert_rows(session, MessageMention, new_rows)  # one statement, not the unit of work


def names_as_opening(session: Session, ticket_number: int, message_id: str) -> bool:
    """Whether the message a ticket starts with names this id (it is its parent)."""
    return session.scalar(select(MessageMention.id).where(
        MessageMention.ticket_number == ticket_number, MessageMention.kind == OPENING,
        MessageMention.message_id_hash == message_id_hash(message_id))) is not None


def _move_index(session: Session, model: type[MessageRef] | type[MessageMention],
                survivor: int, joined: int) -> None:
    """Re-point the joined ticket's index rows, dropping those the survivor already has."""
    if model is MessageMention:
        _keep_joining_mentions(session, survivor, joined)
    kept = select(model.message_id_hash).where(model.ticket_number == survivor)
    session.execute(delete(model).where(
        model.ticket_number == joined, model.message_id_hash.in_(kept)))
    session.execute(update(model).where(model.ticket_number == joined)
                    .values(ticket_number=survivor),
                    execution_options={"synchronize_session": False})


def _keep_joining_mentions(session: Session, survivor: int, joined: int) -> None:
    """Before a join: the joined ticket's opening mentions are no longer the survivor's
    opening message's, but still a message of its conversation's (``linked``: the id
    joins it when it arrives); an id both tickets name keeps the stronger way of joining."""
    no_sync = {"synchronize_session": False}
    session.execute(update(MessageMention).where(
        MessageMention.ticket_number == joined, MessageMention.kind == OPENING)
        .values(kind=LINKED), execution_options=no_sync)
    linked_there = select(MessageMention.message_id_hash).where(
        MessageMention.ticket_number == joined, MessageMention.kind == LINKED)
    session.execute(update(MessageMention).where(
        MessageMention.ticket_number == survivor,
        MessageMention.kind.in_([WAITING, NAMED]),
        MessageMention.message_id_hash.in_(linked_there)).values(kind=LINKED),
        execution_options=no_sync)


def _copy_participants(session: Session, survivor: int, joined: int) -> None:
    """The survivor gains the joined ticket's people; their rows (and the reply tokens that
    name them) stay on the joined ticket, whose mail now threads into the survivor."""
    present = set(session.scalars(select(Participant.email).where(
        Participant.ticket_number == survivor)).all())
    for person in session.scalars(select(Participant).where(
            Participant.ticket_number == joined).order_by(Participant.id)).all():
        if person.email not in present:
            session.add(Participant(ticket_number=survivor, email=person.email,
                                    role=person.role))
            present.add(person.email)


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def join_tickets(session: Session, survivor: Ticket, joined: Ticket, now: datetime) -> int:
    """Move every message and index row of ``joined`` to ``survivor`` and mark it joined.

    Returns how many messages moved.  The survivor keeps its own subject and requester;
    it takes the earlier creation time and first-response times of the two.  Mail
    already sent for the joined ticket stays sent; what comes later threads here."""
    assert survivor.number != joined.number
    for number in sorted((survivor.number, joined.number)):  # row locks in one order
        session.get(Ticket, number, with_for_update=True, populate_existing=True)
    moved = session.scalar(select(func.count(MessageRecord.id)).where(
        MessageRecord.ticket_number == joined.number)) or 0
    session.execute(update(MessageRecord).where(MessageRecord.ticket_number == joined.number)
                    .values(ticket_number=survivor.number),
                    execution_options={"synchronize_session": False})
    _move_index(session, MessageRef, survivor.number, joined.number)
    _move_index(session, MessageMention, survivor.number, joined.number)
    session.execute(update(SpoolEntry).where(SpoolEntry.ticket_number == joined.number)
                    .values(ticket_number=survivor.number),
                    execution_options={"synchronize_session": False})
    _copy_participants(session, survivor.number, joined.number)
    survivor.created_at = _earliest(survivor.created_at, joined.created_at) or survivor.created_at
    survivor.first_response_due = _earliest(survivor.first_response_due,
                                            joined.first_response_due)
    survivor.first_response_at = _earliest(survivor.first_response_at, joined.first_response_at)
    survivor.updated_at = now
    joined.merged_into = survivor.number
    if joined.status not in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        joined.status = TicketStatus.CLOSED
        joined.resolved_at = now
    joined.updated_at = now
    session.flush()
    session.expire(survivor, ["messages", "participants"])
    session.expire(joined, ["messages", "participants"])
    return int(moved)

