"""``#assign EMAIL|me|none``: a verified agent gives the ticket an owner, or takes it away.

The owner is an agent of the directory; ``me`` is the agent who writes; ``none`` leaves the
ticket without an owner (back in the common queue: an agent away, a wrong assignment).
Only records the wish (``ctx.set_owner``); the ``assign`` step applies it once the message
is stored and tells the assignee by mail.  An address that is no agent of the directory (a
customer's, a typo) is flagged on the message and ignored: nobody else ever owns a ticket.
"""

from __future__ import annotations

from gateway.models import Agent
from gateway.pipeline.commands.base import Noted
from gateway.pipeline.context import MailContext

word = "assign"

ME = "me"
NOBODY = "none"
"""The argument that unassigns; also what ``ctx.set_owner`` holds then (no address is a
bare word, so it cannot be an agent's)."""


def _address(argument: str) -> str:
    """``kenji@…``, ``<kenji@…>`` or ``mailto:kenji@…`` (already lower case)."""
    return argument.removeprefix("mailto:").strip("<>")


def apply(ctx: MailContext, argument: str) -> Noted:
    if argument == NOBODY:
        ctx.set_owner = NOBODY
        return "assign", "#assign none: the ticket is to have no owner"
    address = ctx.sender.email if argument == ME else _address(argument)
    agent = ctx.session.get(Agent, address) if address else None
    line = f"#assign {argument}".rstrip()
    if agent is None:
        problem = (f"{address} is not an agent of the directory" if address
                   else "no agent named (EMAIL, me or none)")
        ctx.flags.append(f"'{line}': {problem} (ignored)")
        return "ignored", ctx.flags[-1]
    ctx.set_owner = agent.email
    return "assign", f"{line}: the owner is to be {agent.email}"
