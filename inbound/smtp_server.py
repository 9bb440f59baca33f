"""The SMTP front door (aiosmtpd): refuse what is not ours, spool the rest, then say 250.

``handle_RCPT`` decides per recipient (no open relay, unknown users, recipient
limit); ``handle_DATA`` hands the raw bytes to the spool writer (group commit)
and answers 250 only after that commit, 451 if it failed; ``handle_exception`` turns any surprise
into 451 (aiosmtpd would otherwise answer a permanent 500 that leaks internals).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from gateway.directory import SupportIdentity
from gateway.errors import StorageError
from gateway.intake_priority import IntakePriority
from inbound.recipients import recipient_refusal
from inbound.smtp_codes import (
    S250_QUEUED,
    S250_RECIPIENT_OK,
    S451_STORAGE,
    S500_LINE_TOO_LONG,
    S552_TOO_BIG,
)
from inbound.smtp_data import DataState, read_data
from inbound.spool import StoredMessage

__all__ = ["GatewayHandler", "GatewaySMTP", "SmtpIntake"]

log = logging.getLogger(__name__)

SUPPORT_CACHE_SECONDS = 5.0
LINE_LENGTH_LIMIT = 10_000
"""RFC 5321 asks for 1000; real clients send longer lines, and refusing them loses mail."""

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>[ \t]*+(?![(])")
"""``<dot-atom@host.name>`` and what follows: the paths nearly every client sends, for
which the email package's full RFC 5322 parser (a tenth of an intake's CPU) gives
exactly the text between the brackets."""


_NAMES: dict[type, list[str]] = {}


def _names_of(obj: object, prefixes: tuple[str, ...]) -> list[str]:
    """The attribute names of ``obj``'s class that start with ``prefixes``, computed once.

    aiosmtpd builds its command and hook tables with ``inspect.getmembers`` and ``dir``
    of the protocol and the handler on every connection, reading every attribute of both
    classes: a fifth of the CPU of a short session.  The names are a property of the
    class, so ``__dir__`` answers from this cache.
    """
    names = _NAMES.get(type(obj))
    if names is None:
        names = _NAMES[type(obj)] = [name for name in object.__dir__(obj)
                                     if name.startswith(prefixes)]
    return list(names)


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

    def __dir__(self) -> list[str]:
        """Only the hook names aiosmtpd scans for on every connection (see GatewaySMTP)."""
        return _names_of(self, ("handle_", "auth_"))

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
        refusal = recipient_refusal(address, await self._support_identity(),
                                    accepted=len(envelope.rcpt_tos), limit=self._max_recipients)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return S250_RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            stored = await asyncio.wrap_future(self._store(
                raw, source=getattr(server, "source", "smtp"), mail_from=envelope.mail_from or "",
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
    """aiosmtpd's protocol, telling ``priority`` each time a message was answered.

    Three of aiosmtpd's hot paths are replaced by cheaper ones with the same
    results: DATA is read in blocks (:mod:`inbound.smtp_data`), plain paths skip the
    RFC 5322 parser, and the per-connection method scan sees only the names it uses.
    """

    line_length_limit = LINE_LENGTH_LIMIT
    priority: IntakePriority | None = None
    source = "smtp"
    """The spool row's ``source`` for mail taken by this protocol."""
    def __dir__(self) -> list[str]:
        """The names aiosmtpd's ``__init__`` looks for (``smtp_*``, ``auth_*``)."""
        return _names_of(self, ("smtp_", "auth_"))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, arg[plain.end():]

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        await self._data(arg)

    def data_received(self, data: bytes) -> None:
        """Any bytes restart the idle timeout (aiosmtpd restarts it per command line only,
        so a large message on a slow link was cut off while its bytes kept coming)."""
        self._reset_timeout()
        super().data_received(data)

    def _reset_envelope(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    async def _data(self, arg: str | None) -> None:
        """aiosmtpd's ``smtp_DATA`` (checks, answers, hook) with the block reader."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            result = await read_data(self._reader, size_limit=self.data_size_limit,
                                     line_limit=self.line_length_limit)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        if result is None:  # the client closed the connection mid-message
            return
        if result.state is DataState.TOO_LONG:
            await self.push(S500_LINE_TOO_LONG)
            self._reset_envelope()
            return
        if result.state is DataState.TOO_MUCH:
            await self.push(S552_TOO_BIG)
            self._reset_envelope()
            return
        content: bytes | str = result.content
        if self._decode_data:  # pragma: no cover - the gateway keeps raw bytes
            content = result.content.decode("utf-8", errors="surrogateescape")
        self.envelope.content = content
        self.envelope.original_content = result.content
        status = await self._call_handler_hook("DATA")
        self._reset_envelope()
        if self.priority is not None:
            self.priority.taken()
        await self.push("250 OK" if status is MISSING else status)

class SmtpIntake(Controller):
    """A threaded aiosmtpd controller with our limits; ``start()`` returns once it listens."""

    protocol: type[GatewaySMTP] = GatewaySMTP
    """The protocol of each connection (the LMTP intake puts its own here)."""

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
        smtp = self.protocol(self.handler, **kwargs)
        smtp.priority = self.priority
        return smtp
