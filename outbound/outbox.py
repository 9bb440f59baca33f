"""Insert outbox rows in the caller's transaction; delivery happens after commit.

The row holds the final bytes, so a retry sends exactly what was composed, and
the Message-ID is indexed so that answers to it thread back to the ticket.
"""

from __future__ import annotations

from email.message import EmailMessage

from sqlalchemy.orm import Session

from gateway.models import OutboxItem, OutboxStatus, utcnow
from gateway.tickets import record_message_ref

__all__ = ["add_to_outbox"]


def add_to_outbox(session: Session, message: EmailMessage, *, kind: str, mail_from: str,
                  rcpt_to: str, ticket_number: int | None = None,
                  spool_id: int | None = None) -> OutboxItem:
    message_id = str(message["Message-ID"]).strip().strip("<>")
    now = utcnow()
    item = OutboxItem(
        kind=kind, ticket_number=ticket_number, spool_id=spool_id, mail_from=mail_from,
        rcpt_to=rcpt_to, message_id=message_id, subject=str(message["Subject"] or ""),
        raw=message.as_bytes(), status=OutboxStatus.PENDING, attempts=0, last_error="",
        created_at=now, updated_at=now, next_attempt_at=now,
    )
    session.add(item)
    session.flush()
    if ticket_number is not None:
        record_message_ref(session, message_id, ticket_number, "out")
    return item
