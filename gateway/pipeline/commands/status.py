"""``#status open|pending|solved|closed``: the agent sets the ticket's status.

Only records the wish (``ctx.set_status``); ``lifecycle`` applies it.  An unknown status
is flagged on the message and ignored.
"""

from __future__ import annotations

from gateway.models import TicketStatus
from gateway.pipeline.commands.base import Noted
from gateway.pipeline.context import MailContext

word = "status"

SETTABLE = frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED,
                      TicketStatus.CLOSED})


def apply(ctx: MailContext, argument: str) -> Noted:
    if argument in SETTABLE:
        ctx.set_status = argument
        return "status", f"#status {argument}"
    ctx.flags.append(f"unknown status in '#status {argument}' (ignored)")
    return "ignored", ctx.flags[-1]
