"""Delivery status notifications and feedback reports open no ticket.

Reads ``ctx.analysis``; may stop with IGNORED, naming what bounced.  A report marks
something only when it is about mail we sent (``gateway/trust/bounce_marks.py``): it names
the Message-ID of one of our outbox rows, and the failed recipient is the address that
row went to.  Then the row is marked ``bounced`` with the reason and the address is
remembered in ``bouncing_addresses`` (for ``bounce_mark_days``), so that automatic
answers stop going to a dead address.  A report about anything else (a stranger's
report listing arbitrary addresses, another address than the one we wrote to) marks
nothing; the reason says so.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from gateway.models import OutboxItem, OutboxStatus
from gateway.pipeline.context import Disposition, MailContext
from gateway.trust import bounce_marks
from inbound.parsing.bounces import BounceReport

name = "guard-bounce"
description = "bounces and delivery reports are recorded, never turned into tickets"

_OURS = select(OutboxItem).where(OutboxItem.message_id == bindparam("message_id")).limit(1)
"""Built once: building the statement per report cost more than running it (SQLAlchemy's
cache key over ORM columns).  An ORM read still, as the row found is then marked."""


def _our_mail(ctx: MailContext, report: BounceReport) -> OutboxItem | None:
    """The outbox row whose Message-ID the report names, if it is ours."""
    if not report.original_message_id:
        return None
    return ctx.session.scalar(
        _OURS, {"message_id": report.original_message_id.strip().strip("<>")})


def _record(ctx: MailContext, report: BounceReport) -> str:
    """Mark what the report proves bounced; return the details for the reason."""
    item = _our_mail(ctx, report)
    if item is None:
        ctx.note(name, "untrusted", "the report names no Message-ID of mail we sent")
        return "; not about mail we sent: nothing marked"
    recipient = item.rcpt_to.strip().lower()
    failed = [r for r in report.recipients if r.address == recipient]
    if not failed:
        named = ", ".join(r.address for r in report.recipients[:3]) or "nobody"
        ctx.note(name, "untrusted", f"outbox {item.id} went to {recipient}, the report "
                 f"names {named}")
        return f"; about outbox {item.id} but not its recipient {recipient}: nothing marked"
    now = ctx.services.now()
    for row in failed:
        bounce_marks.mark(ctx.session, row.address, hard=row.hard,
                          reason=row.diagnostic or row.status or report.reason, now=now,
                          days=ctx.services.settings.bounce_mark_days)
    item.status = OutboxStatus.BOUNCED
    item.bounced_at = now
    item.last_error = f"bounced: {report.reason}"[:4000]
    item.updated_at = now
    return (f"; outbox {item.id} ({item.kind} for ticket #{item.ticket_number}) marked "
            f"bounced; bouncing: {recipient}")


def run(ctx: MailContext) -> None:
    report = ctx.analysis.bounce
    if report is None:
        ctx.note(name, "miss", "not a delivery report")
        return
    details = _record(ctx, report) if report.kind == "bounce" else ""
    ctx.stop(Disposition.IGNORED, f"{report.kind.replace('_', ' ')}: {report.reason}{details}")
