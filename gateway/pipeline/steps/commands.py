"""Agent commands at the top of a reply: ``#note``, ``#status pending|solved|closed``,
``#cc add|remove EMAIL``, …

Reads ``ctx.role`` (only a verified agent's commands count: ``authorize`` gives that
role to nobody else), ``ctx.to_note_address`` and ``ctx.reply``; each command line is
handed to its module in ``gateway/pipeline/commands/`` (``#note`` writes ``ctx.kind``:
an internal note, never sent; ``#status`` writes ``ctx.set_status``, ``#assign``
``ctx.set_owner``, ``#merge`` ``ctx.merge_into``; ``#cc`` copies someone on the ticket or
ends it), and the visible text keeps what follows the command lines.  Command lines from
anybody else stay ordinary text, and so do the lines of a mail an agent forwards inline
(only the agent's own words above it are read, and the forward is kept as a note).
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
    if ctx.forwarded_inline:
        # Somebody else's mail under the agent's words: not the agent's reply to relay
        # (a stranger's text would reach the customer as support's), and its lines are
        # no commands; the agent's own words above it still are.
        ctx.kind = MessageKind.NOTE
        ctx.note(name, "note", "an agent's forward onto the ticket: an internal note; only "
                 "the agent's own words above the forwarded mail are read for commands")
        commands, _ = leading_commands(ctx.own_text)
        for word, argument in commands:
            ctx.note(name, *AGENT_COMMANDS[word].apply(ctx, argument))
        return
    commands, rest = leading_commands(ctx.reply.visible)
    if not commands:
        return
    for word, argument in commands:
        ctx.note(name, *AGENT_COMMANDS[word].apply(ctx, argument))
    ctx.reply = dataclasses.replace(ctx.reply, visible=rest)
