"""Decide in which role the sender speaks on this ticket.

Reads ``ctx.sender`` and ``ctx.ticket``; writes ``ctx.role``.  ``agent`` for
support staff, ``requester`` for the person who opened the ticket (and for a new
ticket), ``colleague`` for a member of the requester's team.  Refusing
non-admin colleagues and the reply-only-to-open-tickets rule build on this.
"""

from __future__ import annotations

from gateway.context import MailContext
from gateway.models import Person

name = "authorize"
description = "tag the sender's role on the ticket"


def run(ctx: MailContext) -> None:
    assert ctx.sender is not None
    if ctx.sender.agent is not None:
        ctx.role = "agent"
    elif ctx.new_ticket or ctx.ticket is None or ctx.sender.email == ctx.ticket.requester:
        ctx.role = "requester"
    else:
        requester = ctx.session.get(Person, ctx.ticket.requester)
        person = ctx.sender.person
        same_team = (person is not None and requester is not None and person.team_id
                     and person.team_id == requester.team_id)
        ctx.role = "colleague" if same_team else "requester"
    ctx.note(name, ctx.role, f"{ctx.sender.email} writes as {ctx.role}")
