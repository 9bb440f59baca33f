"""What happens when a mail we sent ends ``dead``: the ticket and the agents learn of it.

A refused mail nobody hears of is a customer who waits for an answer that never comes.
So, in the very transaction that marks the outbox row dead (:mod:`outbound.delivery`):

- the ticket the mail belonged to gets a history entry with role ``system`` and kind
  ``note`` (internal: never sent, never shown to customers) naming the mail, the
  recipient and the server's answer;
- the support team's mailbox (``agents_address``) gets a ``delivery_failed`` notice.

No notice is sent about mail to the agents themselves (the kinds marked ``to_agents`` in
``outbound/mail_kinds.py``: an agents' notice, an escalation, a delivery_failed notice;
or anything addressed to ``agents_address``): a mailbox that refuses our mail would
otherwise be sent more mail about it, forever.  Without
``agents_address``, or when it names our own support address (the loop guard would drop
the notice on its way back in), the failure is logged and recorded on the ticket only.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.directory import SupportIdentity, support_identity
from gateway.models import MessageRecord, OutboxItem, Ticket, utcnow
from inbound.addresses import split_address
from outbound.mail import Mail, queue_mail
from outbound.mail_kinds import MailKind, spec_of
from outbound.render import Renderer

__all__ = ["record_refusal"]

log = logging.getLogger(__name__)

@lru_cache(maxsize=4)
def _renderer(templates_dir: Path | None) -> Renderer:
    """One renderer per templates folder: delivery has no ``Services`` at hand."""
    return Renderer(templates_dir)


def _to_agents(kind: str) -> bool:
    """Mail to the support team (``to_agents`` in ``outbound/mail_kinds.py``): a failure of
    one is never reported to the support team."""
    spec = spec_of(kind)
    return spec is not None and spec.to_agents


def _label(kind: str) -> str:
    return {"agents_notice": "agents' notice"}.get(kind, kind.replace("_", " "))


def _is_ours(support: SupportIdentity, address: str) -> bool:
    """Our support address or one of its aliases: mail there is dropped as a loop."""
    recipient = split_address(address)
    return recipient is not None and recipient.domain in support.domains and (
        recipient.local == support.local_part or recipient.local in support.aliases)


def _system_event(session: Session, support: SupportIdentity, ticket: Ticket,
                  item: OutboxItem, answer: str) -> None:
    text = (f"The {_label(item.kind)} to {item.rcpt_to} (outbox {item.id}, subject "
            f"\"{item.subject}\") could not be delivered after {item.attempts} "
            f"attempt(s) and will not be retried. The server answered: {answer}")
    session.add(MessageRecord(
        ticket_number=ticket.number, spool_id=None, message_id=None,
        from_address=support.address, from_name=support.name[:200], team_id=None,
        role="system", kind="note", subject=f"Delivery failed: {_label(item.kind)}",
        text=text, full_text=text, html=None, received_at=utcnow(), threaded_by="system",
        explanation=f"outbox {item.id} ended dead", flags=[]))


def _notice(session: Session, settings: Settings, support: SupportIdentity,
            ticket: Ticket | None, item: OutboxItem, answer: str) -> OutboxItem | None:
    address = settings.agents_address
    if not address:
        return None
    if _to_agents(item.kind) or item.rcpt_to.lower() == address:
        log.warning("outbox %s: a mail to the support team failed; not reported to them "
                    "again (no loops)", item.id)
        return None
    if _is_ours(support, address):
        log.warning("outbox %s: agents_address %s is our own support address; the failure "
                    "is recorded but not mailed", item.id, address)
        return None
    context = {
        "ticket_number": ticket.number if ticket is not None else None,
        "ticket_subject": ticket.subject if ticket is not None else "",
        "failed_kind": item.kind, "failed_kind_label": _label(item.kind),
        "recipient": item.rcpt_to, "failed_subject": item.subject, "answer": answer,
        "attempts": item.attempts, "outbox_id": item.id}
    # No key at hand here, and the notice holds no secret link: stored as composed.
    return queue_mail(session, _renderer(settings.templates_dir), Mail(
        MailKind.DELIVERY_FAILED, address, context, ticket_number=item.ticket_number), secret=None)


def record_refusal(session: Session, settings: Settings, item: OutboxItem,
                   answer: str) -> int | None:
    """Record on the ticket and queue the agents' notice for a row that just ended dead,
    in the caller's transaction.  Returns the notice's outbox id (deliver it after commit)."""
    support = support_identity(session)
    ticket = (session.get(Ticket, item.ticket_number) if item.ticket_number is not None
              else None)
    if ticket is not None:
        _system_event(session, support, ticket, item, answer)
    notice = _notice(session, settings, support, ticket, item, answer)
    log.warning("outbox %s (%s) to %s dead: %s%s", item.id, item.kind, item.rcpt_to, answer,
                f"; agents told (outbox {notice.id})" if notice is not None else "")
    return notice.id if notice is not None else None
