"""One ticket in the hub: may this visitor see it, and its public history.

A member sees the tickets they requested; a team admin also the team's tickets created
or updated on or after the colleague cut-off (the rule of ``#tickets``,
:func:`gateway.visible_tickets.in_team_window`).  Anything else is "not found", never
"forbidden", so a number tells nothing about tickets one may not see.

The history is what the requester's mail showed: people's public messages (the
requester, colleagues, people copied, agents' answers), never internal notes or the
automatic replies of mail programs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.hub.visitor import HubVisitor
from gateway.models import MessageKind, MessageRecord, Ticket, TicketStatus
from gateway.views import message_view
from gateway.visible_tickets import in_team_window

__all__ = ["REPLYABLE", "public_history", "thread_of", "visible_ticket"]

REPLYABLE = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING,
                       TicketStatus.SOLVED})
"""Statuses the reply form is offered for; a reply to a solved ticket follows the reopen
rules of the pipeline (reopens it, or opens a linked ticket after the reopen window)."""

_PUBLIC = MessageKind.PUBLIC.value
_REFERENCES = 20


def visible_ticket(session: Session, visitor: HubVisitor, number: int,
                   cutoff: date) -> Ticket | None:
    """The ticket, if the visitor may see it (None: not found, whatever the reason)."""
    ticket = session.get(Ticket, number)
    if ticket is None:
        return None
    if ticket.requester == visitor.email:
        return ticket
    if visitor.is_admin and visitor.team_id and in_team_window(ticket, visitor.team_id,
                                                               cutoff):
        return ticket
    return None


def public_history(ticket: Ticket) -> list[dict[str, Any]]:
    """The ticket's public messages, oldest first, as :func:`gateway.views.message_view`."""
    return [message_view(m) for m in ticket.messages if m.kind == _PUBLIC]


def thread_of(session: Session, ticket: Ticket) -> tuple[str | None, list[str]]:
    """``(In-Reply-To, References)`` for a reply continuing the ticket's thread: the
    newest public message, after the first message and the newest others."""
    ids: list[str] = [i for i in session.scalars(
        select(MessageRecord.message_id)
        .where(MessageRecord.ticket_number == ticket.number,
               MessageRecord.kind == _PUBLIC, MessageRecord.message_id.is_not(None))
        .order_by(MessageRecord.id)) if i]
    first = [ticket.origin_message_id] if ticket.origin_message_id else []
    chain = list(dict.fromkeys([*first, *ids]))
    if len(chain) > _REFERENCES:
        chain = [chain[0], *chain[-(_REFERENCES - 1):]]
    return (chain[-1] if chain else None), chain
