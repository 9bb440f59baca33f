"""Delivery status notifications and feedback reports open no ticket.

Reads ``ctx.spool``; may stop with IGNORED, naming what bounced.
"""

from __future__ import annotations

from gateway.context import Disposition, MailContext
from inbound.bounces import detect_bounce

name = "guard-bounce"
description = "bounces and delivery reports are recorded, never turned into tickets"


def run(ctx: MailContext) -> None:
    report = detect_bounce(ctx.spool.raw, ctx.spool.mail_from)
    if report is None:
        ctx.note(name, "miss", "not a delivery report")
        return
    ctx.stop(Disposition.IGNORED, f"{report.kind.replace('_', ' ')}: {report.reason}")
