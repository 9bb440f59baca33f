"""What quarterly mail and announcements share: composing one bulk mail and pacing batches
at the configured rate (the jobs hand the batch to the ``deliver`` callable they are given).

Bulk mail differs from ticket mail in three ways: it carries List-Unsubscribe headers
with a fresh per-recipient token (RFC 8058), it is ``Auto-Submitted: auto-generated``,
and it has no Reply-To token (it belongs to no ticket).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from gateway.bulk.unsubscribe import bulk_headers, issue_token, unsubscribe_link
from gateway.directory import support_identity
from gateway.models import OutboxItem
from gateway.services import Services
from outbound.mail import Mail, MailKind, queue_mail

__all__ = ["Pacer", "queue_bulk_mail"]


def queue_bulk_mail(session: Session, services: Services, *, kind: str, list_name: str,
                    to_address: str, to_name: str, language: str,
                    context: Mapping[str, Any]) -> OutboxItem:
    """Render ``kind`` for one recipient and add it to the outbox (caller's transaction)."""
    support = support_identity(session)
    token = issue_token(session, to_address, list_name, services.settings.unsubscribe_token_days)
    headers = bulk_headers(services.settings.public_url, support, token)
    view = {"recipient_name": to_name,
            "unsubscribe_url": unsubscribe_link(services.settings.public_url, token), **context}
    return queue_mail(session, services.renderer, Mail(
        MailKind(kind), to_address, view, to_name=to_name, language=language,
        list_headers=headers), secret=services.secret)


class Pacer:
    """Spaces batches ``interval`` seconds apart (start to start): the configured rate."""

    def __init__(self, interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = interval
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            self._sleep(self.interval - (now - self._last))
        self._last = time.monotonic()
