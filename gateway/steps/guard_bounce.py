"""Delivery status notifications and feedback reports open no ticket.

Reads ``ctx.analysis``; may stop with IGNORED, naming what bounced.  A bounce of our
own mail (RFC 3464: the report names the Message-ID we sent) marks that outbox row
``bounced`` with the reason, and every failed recipient is remembered in
``bouncing_addresses`` so that automatic notices stop going to a dead address.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.context import Disposition, MailContext
from gateway.models import BouncingAddress, OutboxItem, OutboxStatus
from inbound.bounces import BounceReport

name = "guard-bounce"
description = "bounces and delivery reports are recorded, never turned into tickets"


def _remember(ctx: MailContext, report: BounceReport) -> list[str]:
    now = ctx.services.now()
    addresses = []
    for failed in report.recipients:
        if not failed.address:
            continue
        row = ctx.session.get(BouncingAddress, failed.address)
        if row is None:
            row = BouncingAddress(address=failed.address, bounces=0, hard=False, first_at=now)
            ctx.session.add(row)
        row.bounces += 1
        row.hard = row.hard or failed.hard
        row.last_at = now
        row.last_reason = (failed.diagnostic or failed.status or report.reason)[:2000]
        addresses.append(failed.address)
    return addresses


def _mark_outbox(ctx: MailContext, report: BounceReport) -> OutboxItem | None:
    if not report.original_message_id:
        return None
    item = ctx.session.scalar(select(OutboxItem).where(
        OutboxItem.message_id == report.original_message_id.strip("<>")).limit(1))
    if item is None:
        return None
    item.status = OutboxStatus.BOUNCED
    item.bounced_at = ctx.services.now()
    item.last_error = f"bounced: {report.reason}"[:4000]
    item.updated_at = ctx.services.now()
    return item


def run(ctx: MailContext) -> None:
    assert ctx.analysis is not None
    report = ctx.analysis.bounce
    if report is None:
        ctx.note(name, "miss", "not a delivery report")
        return
    details = ""
    if report.kind == "bounce":
        addresses = _remember(ctx, report)
        item = _mark_outbox(ctx, report)
        if item is not None:
            details += f"; outbox {item.id} ({item.kind} for ticket #{item.ticket_number}) " \
                       "marked bounced"
        if addresses:
            details += f"; bouncing: {', '.join(addresses)}"
    ctx.stop(Disposition.IGNORED, f"{report.kind.replace('_', ' ')}: {report.reason}{details}")
