"""LMTP intake (RFC 2033): how an MTA usually hands mail to an application.

The same handler as SMTP (RCPT checked by the same function, DATA stored by the same
spool writer, 250 only after the commit) behind aiosmtpd's SMTP state machine with
LMTP's two differences: the greeting is ``LHLO`` (``HELO``/``EHLO`` are refused), and
after the message each accepted recipient gets its own reply.  The message is stored
once for all of them, so every recipient gets the one answer DATA earned.

TLS (DESIGN 11): with a certificate configured LHLO offers ``STARTTLS`` as EHLO does,
and ``GATEWAY_SMTP_REQUIRE_TLS`` holds for every peer beyond loopback (``MAIL`` before
``STARTTLS``: ``530 5.7.0``).  A peer on loopback is the local MTA LMTP is meant for:
nothing crosses a network, so it may go on in plain text.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, syntax

from inbound.smtp_codes import S530_STARTTLS_FIRST
from inbound.smtp_server import GatewayHandler, GatewaySMTP, SmtpIntake

__all__ = ["GatewayLMTP", "LmtpIntake", "is_local_peer"]


def is_local_peer(peer: Any) -> bool:
    """True for a loopback address (IPv4-mapped ones too) or a peer without an address
    (a unix socket): mail from it crosses no network."""
    if not isinstance(peer, tuple):
        return True
    try:
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class GatewayLMTP(GatewaySMTP):
    """:class:`GatewaySMTP` speaking LMTP: LHLO, and one reply per recipient after DATA."""

    source = "lmtp"
    _replies_due = 0
    """Recipients still owed a reply for the message being read (0 outside DATA)."""
    tls_required = False
    """``GATEWAY_SMTP_REQUIRE_TLS``: peers beyond loopback must STARTTLS before MAIL."""
    _local_peer = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not STARTTLS's: the peer as it connected
            self._local_peer = is_local_peer(transport.get_extra_info("peername"))
        super().connection_made(transport)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """SMTP's MAIL, after STARTTLS when TLS is required and the peer is not local.

        aiosmtpd's own ``require_starttls`` is not used: it refuses every command but
        EHLO, NOOP, STARTTLS and QUIT before the handshake, LMTP's LHLO among them."""
        if self.tls_required and not self._local_peer and self._tls_protocol is None:
            await self.push(S530_STARTTLS_FIRST)
            return
        await super().smtp_MAIL(arg)

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        """The LMTP greeting: what EHLO answers in SMTP."""
        await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "HELO" not recognized, use LHLO')

    async def smtp_EHLO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "EHLO" not recognized, use LHLO')

    async def check_helo_needed(self, helo: str = "LHLO") -> bool:
        """aiosmtpd asks for ``HELO`` first, which LMTP refuses: ask for ``LHLO``."""
        return await super().check_helo_needed("LHLO")

    async def push(self, status: AnyStr) -> None:
        """After ``354`` the next reply ends the message: say it once per recipient."""
        due, self._replies_due = self._replies_due, 0
        code = status[:3] if isinstance(status, str) else status[:3].decode("ascii", "replace")
        if code == "354" and self.envelope is not None:
            self._replies_due = len(self.envelope.rcpt_tos)
        for _ in range(max(due, 1)):
            await super().push(status)


class LmtpIntake(SmtpIntake):
    """The SMTP intake's controller, limits and handler, with the LMTP protocol;
    ``require_tls`` holds for peers beyond loopback only (see the module)."""

    protocol = GatewayLMTP

    def __init__(self, handler: GatewayHandler, host: str, port: int, *,
                 require_tls: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, host, port, require_tls=False, **kwargs)
        self.tls_required = require_tls and self.SMTP_kwargs.get("tls_context") is not None

    def factory(self) -> SMTP:
        lmtp = super().factory()
        assert isinstance(lmtp, GatewayLMTP)
        lmtp.tls_required = self.tls_required
        return lmtp
