"""``#note``: the agent's reply is an internal note, never sent to the customer."""

from __future__ import annotations

from gateway.models import MessageKind
from gateway.pipeline.commands.base import Noted
from gateway.pipeline.context import MailContext

word = "note"


def apply(ctx: MailContext, argument: str) -> Noted:
    ctx.kind = MessageKind.NOTE
    return "note", "#note: internal note, never sent to the customer"
