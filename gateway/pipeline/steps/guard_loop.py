"""Ignore our own mail coming back to us (X-Loop, our From address, our Message-IDs).

Reads ``ctx.parsed`` and ``ctx.sent_copy``; may stop with IGNORED.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from gateway.db import flush_if_pending
from gateway.directory import support_identity
from gateway.models import MessageRef
from gateway.pipeline.context import Disposition, MailContext
from gateway.prepared import Prepared
from gateway.tickets import message_id_hash

name = "guard-loop"
description = "our own mail coming back is ignored"

# Built once: building it per message cost more than running it (SQLAlchemy's cache key).
# Core columns (the table's, not the mapped class's): no ORM compile step per run, and
# no autoflush (``flush_if_pending`` flushes when a MessageRef waits, as autoflush would).
_REFS = MessageRef.__table__.c
_SENT = Prepared(select(_REFS.ticket_number).where(
    _REFS.message_id_hash == bindparam("hash"), _REFS.direction == "out"))


def run(ctx: MailContext) -> None:
    support = support_identity(ctx.session)
    ours = support.address.lower()
    loops = [v.strip().lower() for v in ctx.parsed.headers.get("x-loop", ())]
    if ours in loops:
        ctx.stop(Disposition.IGNORED, f"loop: X-Loop names our own address {ours}")
        return
    if ctx.parsed.from_address == ours and not ctx.sent_copy:  # agents send as us
        ctx.stop(Disposition.IGNORED, f"loop: the mail is from our own address {ours}")
        return
    message_id = ctx.parsed.message_id
    if message_id:
        flush_if_pending(ctx.session, MessageRef)
        sent = _SENT.scalar(ctx.session, {"hash": message_id_hash(message_id)})
        if sent is not None:
            ctx.stop(Disposition.IGNORED,
                     f"loop: Message-ID {message_id} is one we sent for ticket #{sent}")
            return
    ctx.note(name, "miss", "not our own mail")
