"""Ticket numbers, keyed reply tokens and the Message-ID index used for threading.

A reply token names a ticket and the participant the mail was sent to, and
carries an HMAC so that nobody can invent one for another ticket (DESIGN §8).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from gateway.models import MessageRef, Participant, Ticket

__all__ = [
    "NOTE_SUFFIX",
    "ReplyToken",
    "indexed_tickets",
    "make_reply_token",
    "message_id_hash",
    "parse_address_detail",
    "parse_reply_token",
    "participant_for",
    "record_message_ref",
    "subject_tag",
]

_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([a-z2-7]{16})$")
_TAG = re.compile(r"\[#(\d{1,12})\]")


@dataclass(frozen=True)
class ReplyToken:
    ticket_number: int
    participant_id: int


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, f"reply-token:{body}".encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def make_reply_token(secret: bytes, ticket_number: int, participant_id: int) -> str:
    body = f"{ticket_number}-{participant_id}"
    return f"{body}-{_mac(secret, body)}"


def parse_reply_token(secret: bytes, token: str) -> ReplyToken | None:
    """The ticket and participant a token names, or None if it is malformed or forged."""
    match = _TOKEN.match(token.strip().lower())
    if not match:
        return None
    body = f"{match[1]}-{match[2]}"
    if not hmac.compare_digest(_mac(secret, body), match[3]):
        return None
    return ReplyToken(int(match[1]), int(match[2]))


NOTE_SUFFIX = "+note"


def parse_address_detail(secret: bytes, detail: str) -> tuple[ReplyToken | None, bool]:
    """The token in ``support+DETAIL@…`` and whether it is the internal-note address.

    ``support+TOKEN+note@domain`` is the same ticket's address for notes that are
    never sent to the customer."""
    detail = detail.strip().lower()
    note = detail.endswith(NOTE_SUFFIX)
    if note:
        detail = detail[: -len(NOTE_SUFFIX)]
    return parse_reply_token(secret, detail), note


def subject_tag(subject: str) -> int | None:
    """The ticket number of the first ``[#N]`` tag in a subject (the outermost, newest one)."""
    found = _TAG.findall(subject or "")
    return int(found[0]) if found else None


def message_id_hash(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().lower().encode()).hexdigest()


def record_message_ref(session: Session, message_id: str | None, ticket_number: int,
                       direction: str, *, known_new: bool = False) -> None:
    """Index ``message_id`` as one of the ticket's, once.  ``known_new``: the caller knows
    it is not indexed for this ticket yet (an id we just made with ``make_message_id``,
    or the first message of a ticket made in this transaction): no look-up."""
    if not message_id:
        return
    key = message_id_hash(message_id)
    exists = None if known_new else session.scalar(select(MessageRef.id).where(
        MessageRef.message_id_hash == key, MessageRef.ticket_number == ticket_number))
    if exists is None:
        session.add(MessageRef(message_id=message_id[:998], message_id_hash=key,
                               ticket_number=ticket_number, direction=direction))


def indexed_tickets(session: Session, ids: Iterable[str]) -> list[tuple[str, int]]:
    """Each id (in the order given) that we stored or sent, with the ticket number of its
    oldest index row: one query for all the ids (a reply names up to 30), deciding as a
    query per id ordered by row id would."""
    hashed = [(message_id, message_id_hash(message_id)) for message_id in ids]
    if not hashed:
        return []
    oldest: dict[str, int] = {}
    for key, number in session.execute(
            select(MessageRef.message_id_hash, MessageRef.ticket_number)
            .where(MessageRef.message_id_hash.in_(sorted({key for _, key in hashed})))
            .order_by(MessageRef.id)):
        oldest.setdefault(key, number)
    return [(message_id, oldest[key]) for message_id, key in hashed if key in oldest]


def participant_for(session: Session, ticket: Ticket, email: str, role: str, *,
                    new_ticket: bool = False, flush: bool = True) -> Participant:
    """The ticket's participant row for an address, created on first contact.

    ``new_ticket``: the ticket was made in this transaction, so only rows made in it too
    can exist (no look-up in the database).  ``flush=False``: the caller does not need
    the row's id, so a new row is only added (it is written with the next flush, with
    the message; a flush costs the whole unit of work); whoever asks for it again here
    gets it flushed, with its id."""
    email = email.lower()
    known = _participants_seen(session)
    found = known.get((ticket.number, email))
    if found is not None and not _still(found, ticket.number, email):
        found = None
    if found is None and not new_ticket:
        found = session.scalars(select(Participant).where(
            Participant.ticket_number == ticket.number, Participant.email == email)
        ).one_or_none()
    if found is None:
        found = Participant(ticket_number=ticket.number, email=email, role=role)
        session.add(found)
    if flush and found.id is None:
        session.flush()
    known[(ticket.number, email)] = found
    return found


def _participants_seen(session: Session) -> dict[tuple[int, str], Participant]:
    """Participant rows this transaction already found or made (the record step makes the
    requester's, the acknowledgement's Reply-To asks for it again: no second query)."""
    transaction = session.get_transaction()
    seen = session.info.get("participants_seen")
    if seen is None or seen[0] is not transaction:
        seen = session.info["participants_seen"] = (transaction, {})
    rows: dict[tuple[int, str], Participant] = seen[1]
    return rows


def _still(row: Participant, ticket_number: int, email: str) -> bool:
    """Is the remembered row still in the session (added or loaded), and the same ticket's
    and address's?"""
    state = inspect(row)
    return ((state.persistent or state.pending) and not state.expired_attributes
            and row.ticket_number == ticket_number and row.email == email)
