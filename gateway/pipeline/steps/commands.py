"""Agent commands at the top of a reply: ``#note``, ``#status pending|solved|closed``,
``#cc add|remove EMAIL``, …

Reads ``ctx.role`` (only a verified agent's commands count: ``authorize`` gives that
role to nobody else), ``ctx.to_note_address`` and ``ctx.reply``; each command line is
handed to its module in ``gateway/pipeline/commands/`` (``#note`` writes ``ctx.kind``:
an internal note, never sent; ``#status`` writes ``ctx.set_status``, ``#assign``
``ctx.set_owner``, ``#merge`` ``ctx.merge_into``; ``#cc`` copies someone on the ticket or
ends it), and the visible text keeps what follows the command lines.  Command lines from
anybody else stay ordinary text.
"""

from __future__ import annotations

import dataclasses

from gateway.models import MessageKind, Role
from gateway.pipeline.commands import AGENT_COMMANDS, leading_commands
from gateway.pipeline.context import MailContext

name = "commands"
description = "read an agent's mail commands (#note, #status, #assign, #merge, #cc)"


def run(ctx: MailContext) -> None:
    if ctx.role != Role.AGENT or ctx.new_ticket:
        return
    if ctx.to_note_address:
        ctx.kind = MessageKind.NOTE
        ctx.note(name, "note", "sent to the ticket's +note address: internal note")
    commands, rest = leading_commands(ctx.reply.visible)
    if not commands:
        return
    for word, argument in commands:
        ctx.note(name, *AGENT_COMMANDS[word].apply(ctx, argument))
    ctx.reply = dataclasses.replace(ctx.reply, visible=rest)
