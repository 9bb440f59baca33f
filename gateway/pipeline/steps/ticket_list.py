"""Commands in a new mail, such as the customers' ``#tickets``: answered, no ticket opened.

Runs right after ``sent-copy``: the guards have run, the sender is identified and
``thread`` has decided the mail belongs to no ticket; nothing after this step concerns
a command.  For a new mail (not a reply on a ticket: there ``#tickets`` is just text,
nor imported history) the visible text is offered to each new-mail command of
``gateway/pipeline/commands/`` (``#tickets``: :mod:`gateway.pipeline.commands.tickets`);
the one it is queues its answer (``ctx.outbox_ids``) and the spool row ends ignored with
the outcome.  Reads ``ctx.new_ticket``, ``ctx.history`` and ``ctx.reply``.
"""

from __future__ import annotations

from gateway.pipeline.commands import NEW_MAIL_COMMANDS
from gateway.pipeline.context import Disposition, MailContext

name = "ticket-list"
description = "answer a customer's #tickets mail with their ticket list"


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket or ctx.history:
        return
    for command in NEW_MAIL_COMMANDS:
        handled = command.handle(ctx, ctx.reply.visible)
        if handled is not None:
            for outcome, explanation in handled.notes:
                ctx.note(name, outcome, explanation)
            ctx.stop(Disposition.IGNORED, handled.reason)
            return
