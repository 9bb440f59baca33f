"""LMTP intake (RFC 2033): how an MTA usually hands mail to an application.

The same handler as SMTP (RCPT checked by the same function, DATA stored by the same
spool writer, 250 only after the commit) behind aiosmtpd's SMTP state machine with
LMTP's two differences: the greeting is ``LHLO`` (``HELO``/``EHLO`` are refused), and
after the message each accepted recipient gets its own reply.  The message is stored
once for all of them, so every recipient gets the one answer DATA earned.
"""

from __future__ import annotations

from typing import AnyStr

from aiosmtpd.smtp import syntax

from inbound.smtp_server import GatewaySMTP, SmtpIntake

__all__ = ["GatewayLMTP", "LmtpIntake"]


class GatewayLMTP(GatewaySMTP):
    """:class:`GatewaySMTP` speaking LMTP: LHLO, and one reply per recipient after DATA."""

    source = "lmtp"
    _replies_due = 0
    """Recipients still owed a reply for the message being read (0 outside DATA)."""

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
    """The SMTP intake's controller, limits and handler, with the LMTP protocol."""

    protocol = GatewayLMTP
