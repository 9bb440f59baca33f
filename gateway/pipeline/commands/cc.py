"""``#cc add EMAIL`` / ``#cc remove EMAIL``: an agent copies someone on the ticket, or ends it.

A copied person (``gateway/participants.py``) gets the ticket's answers and status notices
with their own reply token, from this very reply on (``commands`` runs before ``notify``);
a removed one gets nothing more, and their later replies are flagged as from someone who
takes no part.  Support's own addresses, agents, automatic senders and the requester are
never copied: the refusal is flagged on the message, like an unknown ``#status``.  Only
verified agents' command lines get here (the ``commands`` step).
"""

from __future__ import annotations

from gateway.participants import copy_on, uncopy
from gateway.pipeline.commands.base import Noted
from gateway.pipeline.context import MailContext

word = "cc"
arguments = 2
"""``add|remove`` and the address."""


def _flagged(ctx: MailContext, text: str) -> Noted:
    ctx.flags.append(text)
    return "ignored", text


def apply(ctx: MailContext, argument: str) -> Noted:
    action, _, address = argument.partition(" ")
    ticket = ctx.ticket
    if ctx.history:
        return "skip", f"#cc {argument}: imported history copies nobody"
    if action == "add" and address:
        (copied,) = copy_on(ctx.session, ctx.services.settings, ticket, [address],
                            by_agent=True)
        if copied.added:
            return "cc", f"#cc add: {copied.explanation}"
        return _flagged(ctx, f"#cc add {address}: {copied.explanation} (ignored)")
    if action == "remove" and address:
        if uncopy(ctx.session, ticket, address):
            return "cc", f"#cc remove: {address} is no longer copied on ticket #{ticket.number}"
        return _flagged(ctx, f"#cc remove {address}: not copied on ticket #{ticket.number} "
                        "(ignored)")
    line = f"#cc {argument}".rstrip()
    return _flagged(ctx, f"unknown '{line}': use '#cc add EMAIL' or '#cc remove EMAIL' "
                    "(ignored)")
