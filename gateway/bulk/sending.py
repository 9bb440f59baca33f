"""What quarterly mail and announcements share: composing one bulk mail, handing a batch to
delivery, and pacing batches at the configured rate.

Bulk mail differs from ticket mail in three ways: it carries List-Unsubscribe headers
with a fresh per-recipient token (RFC 8058), it is ``Auto-Submitted: auto-generated``,
and it has no Reply-To token (it belongs to no ticket).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from gateway.bulk.unsubscribe import bulk_headers, issue_token, unsubscribe_link
from gateway.directory import support_identity
from gateway.errors import GatewayError
from gateway.models import OutboxItem
from gateway.services import Services
from outbound.delivery import deliver_outbox_item
from outbound.mail import Mail, MailKind, queue_mail

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway

__all__ = ["Pacer", "hand_over", "queue_bulk_mail"]

log = logging.getLogger(__name__)


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


def hand_over(gateway: Gateway, outbox_ids: Iterable[int], *, inline: bool) -> None:
    """Deliver committed outbox rows now (a command in embedded mode has no worker) or
    enqueue them for the workers.  A failure here loses nothing: the sweep retries."""
    for outbox_id in outbox_ids:
        if not inline:
            gateway.enqueue_delivery(outbox_id)
            continue
        try:
            deliver_outbox_item(gateway.db, gateway.transport, gateway.settings, outbox_id)
        except GatewayError as error:
            log.warning("outbox %s not delivered yet (%s); serve will retry", outbox_id, error)


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
