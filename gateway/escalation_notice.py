"""The escalation notice: tells agents a ticket nears or passed its first-response target.

A module of its own (not ``notices.py``) because it goes to agents, not to a
requester: no reply token, ``Auto-Submitted: auto-generated``, always in English.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.models import OutboxItem, Ticket
from gateway.services import Services
from outbound.mail import Mail, MailKind, queue_mail

__all__ = ["queue_escalation_notice"]


def queue_escalation_notice(session: Session, services: Services, ticket: Ticket, *,
                            to_address: str, breached: bool, share: int, due: str
                            ) -> OutboxItem:
    return queue_mail(session, services.renderer, Mail(
        MailKind.ESCALATION, to_address, {
            "ticket_number": ticket.number, "ticket_subject": ticket.subject,
            "requester": ticket.requester, "tier": ticket.tier, "queue": ticket.queue,
            "breached": breached, "share": share, "due": due,
            "entitlement": ticket.entitlement},
        ticket_number=ticket.number), secret=services.secret)
