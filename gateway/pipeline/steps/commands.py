"""Agent commands at the top of a reply: ``#note`` and ``#status pending|solved|closed``.

Reads ``ctx.role`` (only a verified agent's commands count: ``authorize`` gives that
role to nobody else), ``ctx.to_note_address`` and ``ctx.reply``; writes ``ctx.kind``
(``note`` for internal notes, never sent), ``ctx.set_status``, and the visible text
without the command lines.  Command lines from anybody else stay ordinary text.
"""

from __future__ import annotations

import dataclasses
import re

from gateway.models import TicketStatus
from gateway.pipeline.context import MailContext

name = "commands"
description = "read an agent's #note and #status commands"

_COMMAND = re.compile(r"^#(note|status)\b[ \t]*(\S*)[ \t]*$", re.IGNORECASE)
SETTABLE = frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED,
                      TicketStatus.CLOSED})


def _leading_commands(text: str) -> tuple[list[tuple[str, str]], str]:
    """The command lines at the top (blank lines between them allowed) and the rest."""
    lines = text.splitlines()
    commands: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        match = _COMMAND.match(line)
        if match:
            commands.append((match[1].lower(), match[2].lower()))
        elif line:
            break
        index += 1
    return commands, "\n".join(lines[index:]).strip("\n")


def run(ctx: MailContext) -> None:
    assert ctx.reply is not None
    if ctx.role != "agent" or ctx.new_ticket or ctx.ticket is None:
        return
    if ctx.to_note_address:
        ctx.kind = "note"
        ctx.note(name, "note", "sent to the ticket's +note address: internal note")
    commands, rest = _leading_commands(ctx.reply.visible)
    if not commands:
        return
    for command, argument in commands:
        if command == "note":
            ctx.kind = "note"
            ctx.note(name, "note", "#note: internal note, never sent to the customer")
        elif argument in SETTABLE:
            ctx.set_status = argument
            ctx.note(name, "status", f"#status {argument}")
        else:
            ctx.flags.append(f"unknown status in '#status {argument}' (ignored)")
            ctx.note(name, "ignored", ctx.flags[-1])
    ctx.reply = dataclasses.replace(ctx.reply, visible=rest)
