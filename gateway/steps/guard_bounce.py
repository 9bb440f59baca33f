"""Delivery status notifications and feedback reports open no ticket.

Reads ``ctx.analysis``; may stop with IGNORED, naming what bounced.
"""

from __future__ import annotations

from gateway.context import Disposition, MailContext

name = "guard-bounce"
description = "bounces and delivery reports are recorded, never turned into tickets"


def run(ctx: MailContext) -> None:
    assert ctx.analysis is not None
    report = ctx.analysis.bounce
    if report is None:
        ctx.note(name, "miss", "not a delivery report")
        return
    ctx.stop(Disposition.IGNORED, f"{report.kind.replace('_', ' ')}: {report.reason}")
