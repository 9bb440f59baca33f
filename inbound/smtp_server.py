"""The SMTP front door (aiosmtpd): refuse what is not ours, spool the rest, then say 250.

``handle_RCPT`` decides per recipient (no open relay, unknown users, recipient
limit); ``handle_DATA`` hands the raw bytes to the spool writer (group commit)
and answers 250 only after that commit, 451 if it failed; ``handle_exception`` turns any surprise
into 451 (aiosmtpd would otherwise answer a permanent 500 that leaks internals).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.directory import SupportIdentity
from gateway.errors import StorageError
from gateway.intake_priority import IntakePriority
from inbound.addresses import RecipientVerdict, classify_recipient
from inbound.smtp_codes import (
    S250_QUEUED,
    S250_RECIPIENT_OK,
    S451_STORAGE,
    S452_TOO_MANY_RECIPIENTS,
    S550_NO_RELAY,
    S550_UNKNOWN_USER,
    S553_BAD_ADDRESS,
)
from inbound.spool import StoredMessage

__all__ = ["GatewayHandler", "GatewaySMTP", "SmtpIntake"]

log = logging.getLogger(__name__)

SUPPORT_CACHE_SECONDS = 5.0
LINE_LENGTH_LIMIT = 10_000
"""RFC 5321 asks for 1000; real clients send longer lines, and refusing them loses mail."""


class GatewayHandler:
    def __init__(self, *, store: Callable[..., Future[StoredMessage]],
                 support: Callable[[], SupportIdentity],
                 on_stored: Callable[[int], None], max_recipients: int) -> None:
        self._store = store
        self._support_loader = support
        self._on_stored = on_stored
        self._max_recipients = max_recipients
        self._support: SupportIdentity | None = None
        self._support_loaded = 0.0

    def prime(self, support: SupportIdentity) -> None:
        """Start with a known identity, so RCPT works through a database outage."""
        self._support, self._support_loaded = support, time.monotonic()

    async def _support_identity(self) -> SupportIdentity:
        if self._support is None or time.monotonic() - self._support_loaded > SUPPORT_CACHE_SECONDS:
            try:
                self._support = await asyncio.to_thread(self._support_loader)
                self._support_loaded = time.monotonic()
            except Exception:  # noqa: BLE001 - database down: keep the last known identity
                if self._support is None:
                    raise
                log.warning("could not refresh the support identity; using the cached one")
        return self._support

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return S452_TOO_MANY_RECIPIENTS
        verdict = classify_recipient(address, await self._support_identity())
        if verdict is RecipientVerdict.FOREIGN_DOMAIN:
            return S550_NO_RELAY
        if verdict is RecipientVerdict.UNKNOWN_USER:
            return S550_UNKNOWN_USER
        if verdict is RecipientVerdict.INVALID:
            return S553_BAD_ADDRESS
        envelope.rcpt_tos.append(address)
        return S250_RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            stored = await asyncio.wrap_future(self._store(
                raw, source="smtp", mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos), peer=str(peer)))
        except StorageError:
            return S451_STORAGE
        if not stored.duplicate:
            self._on_stored(stored.spool_id)
        return S250_QUEUED

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", type(error).__name__, error)
        return S451_STORAGE


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol, telling ``priority`` when a mail transaction is open."""

    line_length_limit = LINE_LENGTH_LIMIT
    priority: IntakePriority | None = None
    _in_transaction = False

    def _transaction_ended(self) -> None:
        if self._in_transaction and self.priority is not None:
            self._in_transaction = False
            self.priority.end()

    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.priority is not None and not self._in_transaction:
            self._in_transaction = True  # before the answer is sent, not after
            self.priority.begin()
        await super().smtp_MAIL(arg)
        if self.envelope is None or self.envelope.mail_from is None:  # refused
            self._transaction_ended()

    async def smtp_DATA(self, arg: str | None) -> None:
        try:
            await super().smtp_DATA(arg)
        finally:
            # answered (the envelope was reset): the transaction is over
            if self.envelope is None or self.envelope.mail_from is None:
                self._transaction_ended()

    async def smtp_RSET(self, arg: str | None) -> None:
        self._transaction_ended()
        await super().smtp_RSET(arg)

    def connection_lost(self, error: Exception | None) -> None:
        self._transaction_ended()
        super().connection_lost(error)


class SmtpIntake(Controller):
    """A threaded aiosmtpd controller with our limits; ``start()`` returns once it listens."""

    def __init__(self, handler: GatewayHandler, host: str, port: int, *,
                 data_size_limit: int, timeout: float, server_hostname: str | None = None,
                 priority: IntakePriority | None = None) -> None:
        self.priority = priority
        super().__init__(handler, hostname=host, port=port, server_hostname=server_hostname,
                         ready_timeout=10.0, data_size_limit=data_size_limit,
                         enable_SMTPUTF8=True, decode_data=False, timeout=timeout,
                         ident="support-gateway ESMTP")

    def factory(self) -> SMTP:
        kwargs: dict[str, Any] = dict(self.SMTP_kwargs)
        smtp = GatewaySMTP(self.handler, **kwargs)
        smtp.priority = self.priority
        return smtp
