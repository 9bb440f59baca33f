"""The escalation notice: tells agents a ticket nears or passed its first-response target.

A module of its own (not ``notices.py``) because it goes to agents, not to a
requester: no reply token, ``Auto-Submitted: auto-generated``, always in English.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.directory import support_identity
from gateway.models import OutboxItem, Ticket
from gateway.services import Services
from outbound.compose import compose, make_message_id
from outbound.outbox import add_to_outbox

__all__ = ["queue_escalation_notice"]


def queue_escalation_notice(session: Session, services: Services, ticket: Ticket, *,
                            to_address: str, breached: bool, share: int, due: str
                            ) -> OutboxItem:
    support = support_identity(session)
    rendered = services.renderer.render("escalation", "en", {
        "support_name": support.name, "ticket_number": ticket.number,
        "ticket_subject": ticket.subject, "requester": ticket.requester, "tier": ticket.tier,
        "queue": ticket.queue, "breached": breached, "share": share, "due": due,
        "entitlement": ticket.entitlement,
    })
    message = compose(
        from_name=support.name, from_address=support.address, to_address=to_address,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=make_message_id(support.domain), auto_submitted="auto-generated",
        language=rendered.language, extra_headers={"X-Loop": support.address},
    )
    return add_to_outbox(session, message, kind="escalation", mail_from=support.address,
                         rcpt_to=to_address, ticket_number=ticket.number,
                         secret=services.secret)
