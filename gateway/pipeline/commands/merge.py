"""``#merge N``: a verified agent merges this ticket into ticket N (same matter, one
conversation).

Only checks and records the wish (``ctx.merge_into``); the ``merge`` step moves the
messages and participants once the message is stored.  N must be another ticket that
exists and was not itself merged into a third one; anything else is flagged on the
message and ignored.
"""

from __future__ import annotations

import re

from gateway.models import Ticket
from gateway.pipeline.commands.base import Noted
from gateway.pipeline.context import MailContext

word = "merge"

_NUMBER = re.compile(r"^(?:\[?#)?(\d{1,9})\]?$")
"""``12``, ``#12`` or ``[#12]``."""


def _problem(ctx: MailContext, argument: str) -> str | int:
    """The number to merge into, or why there is none."""
    match = _NUMBER.match(argument)
    if match is None:
        return "no ticket number"
    number = int(match[1])
    target = ctx.session.get(Ticket, number)
    if target is None:
        return f"there is no ticket #{number}"
    if number == ctx.ticket.number:
        return f"ticket #{number} is this ticket"
    if target.merged_into is not None:
        return f"ticket #{number} was itself merged into #{target.merged_into}"
    return number


def apply(ctx: MailContext, argument: str) -> Noted:
    line = f"#merge {argument}".rstrip()
    found = _problem(ctx, argument)
    if isinstance(found, str):
        ctx.flags.append(f"'{line}': {found} (ignored)")
        return "ignored", ctx.flags[-1]
    ctx.merge_into = found
    return "merge", f"{line}: ticket #{ctx.ticket.number} goes into #{found}"
