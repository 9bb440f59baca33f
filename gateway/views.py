"""Stable JSON shapes of tickets, spool rows and outbox rows (DESIGN section 7).

Fields may be added; none is renamed or removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import object_session

from gateway.models import MessageKind, MessageRecord, OutboxItem, Role, SpoolEntry, Ticket
from gateway.participants import FORMER_CC
from gateway.satisfaction import rating_of
from outbound.mail_kinds import spec_of
from outbound.recipe import Recipe
from outbound.render import Renderer

__all__ = ["iso", "outbox_view", "participants_view", "spool_view", "ticket_view"]


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def message_view(message: MessageRecord) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from": message.from_address,
        "from_name": message.from_name,
        "role": message.role,
        "kind": message.kind,
        "received_at": iso(message.received_at),
        "subject": message.subject,
        "text": message.text,
        "threaded_by": message.threaded_by,
        "threading_explanation": message.explanation,
        "flags": list(message.flags or []),
        "spool_id": message.spool_id,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size,
             "sha256": a.sha256, "inline": a.inline}
            for a in message.attachments
        ],
    }


def satisfaction_view(ticket: Ticket) -> dict[str, Any] | None:
    """DESIGN §13 ``satisfaction``: the requester's answer to "was this helpful?", or null.
    Read through the ticket's session (a ticket no session holds any more shows null)."""
    session = object_session(ticket)
    rating = rating_of(session, ticket.number) if session is not None else None
    if rating is None:
        return None
    return {"rating": rating.rating, "comment": rating.comment, "at": iso(rating.rated_at)}


def participants_view(ticket: Ticket) -> list[dict[str, str]]:
    """Who takes part now (DESIGN §13): requester, colleagues, agents, cc; not those
    taken off with ``#cc remove``."""
    state = inspect(ticket)
    if state.session is None and "participants" in state.unloaded:
        return []  # as satisfaction_view: a ticket no session holds any more shows none
    return [{"email": p.email, "role": p.role} for p in ticket.participants
            if p.role != FORMER_CC]


def _plain_text(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    return str(part.get_content()).strip() if part is not None else ""


def _sent_text(item: OutboxItem, renderer: Renderer | None) -> str:
    """The plain text of a mail the gateway sent, or of one still waiting to be composed
    from its recipe (``outbound/recipe.py``: rendered here, the same text it will carry)."""
    if item.recipe is None:
        return _plain_text(item.raw)
    if renderer is None:
        return ""
    recipe = Recipe.from_json(item.recipe)
    return renderer.render(recipe.template, recipe.language, recipe.context).text.strip()


def sent_view(item: OutboxItem, renderer: Renderer | None = None) -> dict[str, Any] | None:
    """A mail the gateway sent about the ticket, as a ``system`` message of its history
    (issue 16 item 6): ``auto_reply`` for an automatic answer to someone's mail,
    ``notice`` otherwise; None for what is no history of its own (a relayed reply is the
    agent's message already; the team's mail repeats the ticket to each agent).  Read
    from the outbox row (its ``raw`` has secret links redacted), so the messages people
    wrote stay the only ``MessageRecord`` rows: clocks and counts never see our mail."""
    spec = spec_of(item.kind)
    if spec is None or spec.auto_submitted is None or spec.relays or spec.to_agents:
        return None
    return {
        "message_id": item.message_id,
        "from": item.mail_from,
        "from_name": "",
        "role": Role.SYSTEM.value,
        "kind": (MessageKind.AUTO_REPLY if spec.automatic_answer else MessageKind.NOTICE).value,
        "received_at": iso(item.created_at),
        "subject": item.subject,
        "text": _sent_text(item, renderer),
        "threaded_by": "system",
        "threading_explanation": f"{item.kind} sent to {item.rcpt_to} (outbox {item.id}, "
                                 f"{item.status.value})",
        "flags": [],
        "spool_id": None,
        "attachments": [],
    }


def _history(messages: Iterable[MessageRecord], sent: Iterable[OutboxItem],
             renderer: Renderer | None) -> list[dict[str, Any]]:
    """People's messages and the gateway's mail, in time order."""
    dated = [(m.received_at, 0, m.id, message_view(m)) for m in messages]
    for item in sent:
        view = sent_view(item, renderer)
        if view is not None:
            dated.append((item.created_at, 1, item.id, view))
    return [view for *_, view in sorted(dated, key=lambda row: row[:3])]


def ticket_view(ticket: Ticket, *, with_messages: bool, sent: Iterable[OutboxItem] = (),
                renderer: Renderer | None = None) -> dict[str, Any]:
    """``sent``: the ticket's outbox rows, listed in ``messages`` as the gateway's mail;
    ``renderer``: the templates that render a mail not composed yet."""
    view: dict[str, Any] = {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "requester": ticket.requester,
        "team": ticket.team_id,
        "product": ticket.product,
        "category": ticket.category,
        "language": ticket.language,
        "queue": ticket.queue,
        "tier": ticket.tier,
        "first_response_due": iso(ticket.first_response_due),
        "first_response_at": iso(ticket.first_response_at),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "entitlement": ticket.entitlement,
        "resolved_at": iso(ticket.resolved_at),
        "duplicate_of": ticket.duplicate_of,
        "follows": ticket.follows,
        "merged_into": ticket.merged_into,
        "owner": ticket.owner,
        "issue_type": ticket.issue_type,
        "breached_at": iso(ticket.breached_at),
        "satisfaction": satisfaction_view(ticket),
        "participants": participants_view(ticket),
    }
    if with_messages:
        view["messages"] = _history(ticket.messages, sent, renderer)
    return view


def spool_view(entry: SpoolEntry, *, detail: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": entry.id,
        "state": entry.state.value,
        "reason": entry.reason,
        "source": entry.source,
        "mail_from": entry.mail_from,
        "rcpt_tos": entry.rcpt_tos,
        "peer": entry.peer,
        "message_id": entry.message_id,
        "sha256": entry.sha256,
        "size": entry.size,
        "received_at": iso(entry.received_at),
        "processed_at": iso(entry.processed_at),
        "attempts": entry.attempts,
        "ticket": entry.ticket_number,
    }
    if detail:
        view["trace"] = entry.trace
    return view


def outbox_view(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "ticket": item.ticket_number,
        "to": item.rcpt_to,
        "subject": item.subject,
        "message_id": item.message_id,
        "status": item.status.value,
        "attempts": item.attempts,
        "last_error": item.last_error,
        "created_at": iso(item.created_at),
        "next_attempt_at": iso(item.next_attempt_at),
        "sent_at": iso(item.sent_at),
        "bounced_at": iso(item.bounced_at),
    }
