"""A later copy of a message already processed: only what its own recipients ask.

An MTA that pipes one recipient per delivery (Postfix calling ``gateway ingest`` once per
recipient) hands one message to ``support@`` and ``support+access@`` (or
``unsubscribe+TOKEN@``) as two copies.  The spool keeps the second as a row of its own,
``options.copy_of``, only when its recipients ask something the first copy's processing
did not do (``inbound.spool._later_copy``); when the first copy was not processed yet, its
row got the new recipients instead and one processing sees them all.

Here such a row is processed for the role it alone carries, so nothing is done twice (no
second ticket, message or acknowledgement) and its recipient is not lost:

- the first copy was only an unsubscribe request (its processing stopped there): this
  copy is the message, processed in full;
- otherwise the message was processed as the first copy: this copy runs ``unsubscribe``
  on its recipients and, when it carries the access address, the access request of its
  sender (``identify-sender``, ``authenticate``, the first copy's ticket, then
  ``access-request``); then it is ignored with the reason.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from gateway.models import SpoolEntry
from gateway.pipeline.context import Disposition, MailContext
from gateway.pipeline.flow import run_pipeline
from gateway.thread_index import live_ticket_at
from inbound.addresses import EnvelopeRole
from inbound.spool import COPY_ROLES, LATER_COPIES

__all__ = ["NAME", "run_later_copy"]

NAME = "later-copy"

_FIRST = select(SpoolEntry.options).where(SpoolEntry.id == bindparam("spool_id"))
_ROWS = select(SpoolEntry.ticket_number, SpoolEntry.trace).where(
    SpoolEntry.id.in_(bindparam("spool_ids", expanding=True))).order_by(SpoolEntry.id)


def run_later_copy(ctx: MailContext, first_id: int) -> None:
    """Process ``ctx``'s row, a later copy of the message of spool row ``first_id``."""
    first = ctx.session.execute(_FIRST, {"spool_id": first_id}).one_or_none()
    # Decided by the spool under the first row's lock when it stored this copy.
    roles = {EnvelopeRole(value) for value in (ctx.spool.options or {}).get(COPY_ROLES, [])}
    if EnvelopeRole.MESSAGE in roles:
        ctx.note(NAME, "message", f"spool {first_id}, the first copy of this message, was an "
                 "unsubscribe request only: this copy is processed as the message")
        run_pipeline(ctx)
        return
    ctx.note(NAME, "copy", f"the message was processed as spool {first_id}: this copy does "
             f"only what its own recipients ask ({', '.join(ctx.spool.rcpt_tos)})")
    run_pipeline(ctx, ("parse", "unsubscribe"))
    if not ctx.stopped and EnvelopeRole.ACCESS in roles:
        # The rows of this message before this one: the first, then the earlier copies.
        earlier = [first_id] + ([] if first is None else [
            int(copy["id"]) for copy in (first.options or {}).get(LATER_COPIES, [])
            if int(copy["id"]) < ctx.spool.id])
        rows = ctx.session.execute(_ROWS, {"spool_ids": earlier}).all()
        if any(note.get("step") == "access-request" and note.get("outcome") == "requested"
               for row in rows for note in (row.trace or [])):
            ctx.note(NAME, "access", "the access request was made by an earlier copy")
        else:
            run_pipeline(ctx, ("identify-sender", "authenticate"))
            if not ctx.stopped:
                number = next((row.ticket_number for row in rows
                               if row.ticket_number is not None), None)
                ticket = live_ticket_at(ctx.session, number) if number is not None else None
                if ticket is not None:
                    ctx.join(ticket, NAME)
                else:
                    ctx.open_new_ticket()
                run_pipeline(ctx, ("access-request",))
    if not ctx.stopped:
        ctx.stop(Disposition.IGNORED, f"later copy of spool {first_id}: the message itself "
                 "was processed there")

