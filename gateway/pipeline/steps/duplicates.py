"""A new request that repeats an open one of the same requester is linked, not queued.

MISSION §2: opening several tickets for the same problem must not jump the queue.
Reads a new ticket's sender, subject and text; writes ``ctx.duplicate_of`` when an
open ticket (new, open or pending) of the same requester, created within
``duplicate_window_days``, has the same normalised subject or near-identical text.
The ``record`` step then stores the new ticket closed and linked; ``notify`` tells
the requester which ticket already holds the request.

A verified sender's request is linked only to a ticket whose opening message was verified
too (the ``authenticate`` step's verdict in that message's spool trace): otherwise mail
forged in a premium admin's name with a guessable subject would swallow her genuine
request, closed as its "duplicate" under the forgery's standard terms, with no notice to
the agents.  An unverified request may still be linked to any open ticket of its From.

The cost is bounded whatever the sender keeps open: only the ``duplicate_candidates``
newest open tickets are compared, on the first ``duplicate_compare_chars`` characters
of each text (cut in the database query, so a 1 MB first message is never loaded).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.orm import Session

from gateway.db import flush_if_pending
from gateway.models import MessageRecord, SpoolEntry, Ticket, TicketStatus
from gateway.pipeline.context import MailContext
from gateway.prepared import Prepared
from gateway.tickets import normalise_subject

name = "duplicates"
description = "link a repeated request to the open ticket that already holds it"

OPEN = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
SIMILAR_TEXT = 0.9
SHINGLE = 3
MAX_WORDS = 2000
MIN_TEXT = 20  # shorter texts ("hello?") say too little to call two requests the same
_WORD = re.compile(r"\w+")

# The statements are built once, with parameters: building them per message cost more
# than running them (SQLAlchemy's cache key of ORM columns).  They name the tables' Core
# columns, so a run skips the ORM's compile step and its autoflush (``flush_if_pending``
# flushes first when a ticket or message waits, as the autoflush did); most senders have
# no open ticket, and the one found a duplicate is then loaded as an ORM object.
_TICKETS = Ticket.__table__.c
_MESSAGES = MessageRecord.__table__.c
_OPEN_TICKETS = (_TICKETS.requester == bindparam("requester"),
                 _TICKETS.status.in_([literal(s, _TICKETS.status.type) for s in OPEN]),
                 _TICKETS.duplicate_of.is_(None), _TICKETS.created_at >= bindparam("since"))
_NEWEST = Prepared(select(_TICKETS.number, _TICKETS.subject).where(*_OPEN_TICKETS)
                       .order_by(_TICKETS.number.desc()).limit(bindparam("candidates")))
_TOTAL = Prepared(select(func.count()).select_from(Ticket.__table__).where(*_OPEN_TICKETS))
_SPOOL = SpoolEntry.__table__.c
_OPENING_TRACE = Prepared(select(_SPOOL.trace)
                          .join_from(MessageRecord.__table__, SpoolEntry.__table__,
                                     _MESSAGES.spool_id == _SPOOL.id)
                          .where(_MESSAGES.ticket_number == bindparam("number"))
                          .order_by(_MESSAGES.id).limit(1))
_FIRST_TEXT = Prepared(select(func.substr(_MESSAGES.text, 1, bindparam("chars")))
                           .where(_MESSAGES.ticket_number == bindparam("number"))
                           .order_by(_MESSAGES.id).limit(1))


def _shingles(text: str) -> set[tuple[str, ...]]:
    """Word 3-grams of the first MAX_WORDS words (callers pass a bounded prefix)."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())[:MAX_WORDS]
    if len(words) < SHINGLE:
        return {tuple(words)} if words else set()
    # the 3-grams, built in C (the shorter slices end it: strict=False)
    return set(zip(*(words[i:] for i in range(SHINGLE)), strict=False))


def similar(first: str, second: str) -> bool:
    """Near-identical: at least 90 % of the word 3-grams shared (Jaccard), in linear time.

    A character diff (difflib) is quadratic on repetitive text such as pasted logs and
    ran for seconds inside the write transaction; shingles cost one pass per text."""
    return _similar(first, _Shingled(second))


class _Shingled:
    """A text whose shingles are made once, however many tickets it is compared with."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._shingles: set[tuple[str, ...]] | None = None

    @property
    def shingles(self) -> set[tuple[str, ...]]:
        if self._shingles is None:
            self._shingles = _shingles(self.text)
        return self._shingles


def _similar(first: str, second: _Shingled) -> bool:
    if min(len(first.strip()), len(second.text.strip())) < MIN_TEXT:
        return False
    a, b = _shingles(first), second.shingles
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= SIMILAR_TEXT


def opened_verified(session: Session, number: int) -> bool:
    """Whether the sender authority vouched for the message that opened ticket ``number``
    (False when it cannot tell: a ticket whose first message has no spool row)."""
    trace = _OPENING_TRACE.scalar(session, {"number": number})
    return any(isinstance(note, dict) and note.get("step") == "authenticate"
               and note.get("outcome") == "verified" for note in trace or ())


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket or ctx.history or ctx.follows is not None:
        return
    if ctx.sender.agent is not None or ctx.automatic is not None:
        return
    settings = ctx.services.settings
    window = settings.duplicate_window_days
    session = ctx.session
    where = {"requester": ctx.sender.email,
             "since": ctx.spool.received_at - timedelta(days=window)}
    flush_if_pending(session, Ticket, MessageRecord)
    newest = _NEWEST.rows(session, {**where, "candidates": settings.duplicate_candidates})
    if not newest:
        return
    total = len(newest)
    if total == settings.duplicate_candidates:
        total = _TOTAL.scalar(session, where) or total
    compared = (f"compared with the {len(newest)} newest of {total} open tickets "
                f"(duplicate_candidates {settings.duplicate_candidates})")
    subject = normalise_subject(ctx.parsed.subject)
    chars = settings.duplicate_compare_chars
    text = _Shingled((ctx.reply.visible or ctx.parsed.text)[:chars])
    for number, ticket_subject in reversed(newest):  # oldest first, as the queue is served
        if subject and normalise_subject(ticket_subject) == subject:
            why = f"the same subject as open ticket #{number}"
        else:
            first = _FIRST_TEXT.scalar(session, {"chars": chars, "number": number})
            if first is None or not _similar(first, text):
                continue
            why = f"nearly the same text as open ticket #{number}"
        if ctx.sender_verified and not opened_verified(session, number):
            ctx.note(name, "not-linked", f"{why}, but #{number} was opened by mail whose "
                     "sender was not verified: a verified request is not linked to it")
            continue
        ctx.duplicate_of = session.get(Ticket, number)
        ctx.note(name, "duplicate", f"{why} (within {window} days; {compared}): linked "
                 "as a duplicate")
        return
    ctx.note(name, "miss", f"no open ticket of {ctx.sender.email} repeats this request "
             f"({compared})")
