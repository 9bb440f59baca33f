"""A new request that repeats an open one of the same requester is linked, not queued.

MISSION §2: opening several tickets for the same problem must not jump the queue.
Reads a new ticket's sender, subject and text; writes ``ctx.duplicate_of`` when an
open ticket (new, open or pending) of the same requester, created within
``duplicate_window_days``, has the same normalised subject or near-identical text.
The ``record`` step then stores the new ticket closed and linked; ``notify`` tells
the requester which ticket already holds the request.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from difflib import SequenceMatcher

from sqlalchemy import select

from gateway.context import MailContext
from gateway.models import MessageRecord, Ticket, TicketStatus

name = "duplicates"
description = "link a repeated request to the open ticket that already holds it"

OPEN = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
SIMILAR_TEXT = 0.9
MIN_TEXT = 20  # shorter texts ("hello?") say too little to call two requests the same
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|rif|r|i|antw|doorst|tr)\s*(\[\d+\])?\s*:\s*)+",
                     re.IGNORECASE)
_TAG = re.compile(r"\[#\d+\]")


def normalise_subject(subject: str) -> str:
    """Case, width, whitespace, reply/forward prefixes and ticket tags do not count."""
    text = unicodedata.normalize("NFKC", _TAG.sub(" ", subject or "")).casefold()
    previous = None
    while previous != text:
        previous, text = text, _PREFIX.sub("", text)
    return " ".join(text.split())


def _normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())[:4000]


def similar(first: str, second: str) -> bool:
    a, b = _normalise_text(first), _normalise_text(second)
    if min(len(a), len(b)) < MIN_TEXT:
        return False
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= SIMILAR_TEXT and matcher.ratio() >= SIMILAR_TEXT


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket or ctx.history or ctx.follows is not None:
        return
    assert ctx.sender is not None and ctx.parsed is not None and ctx.reply is not None
    if ctx.sender.agent is not None or ctx.automatic is not None:
        return
    window = ctx.services.settings.duplicate_window_days
    since = ctx.spool.received_at - timedelta(days=window)
    candidates = ctx.session.scalars(
        select(Ticket).where(Ticket.requester == ctx.sender.email, Ticket.status.in_(OPEN),
                             Ticket.duplicate_of.is_(None), Ticket.created_at >= since)
        .order_by(Ticket.number)).all()
    if not candidates:
        return
    subject = normalise_subject(ctx.parsed.subject)
    text = ctx.reply.visible or ctx.parsed.text
    for ticket in candidates:
        if subject and normalise_subject(ticket.subject) == subject:
            why = f"the same subject as open ticket #{ticket.number}"
        else:
            first = ctx.session.scalar(select(MessageRecord.text).where(
                MessageRecord.ticket_number == ticket.number).order_by(MessageRecord.id).limit(1))
            if first is None or not similar(first, text):
                continue
            why = f"nearly the same text as open ticket #{ticket.number}"
        ctx.duplicate_of = ticket
        ctx.note(name, "duplicate", f"{why} (within {window} days): linked as a duplicate")
        return
    ctx.note(name, "miss", f"no open ticket of {ctx.sender.email} repeats this request")
