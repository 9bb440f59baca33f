"""Transports hand a composed message to the next hop: a maildir or an SMTP smarthost.

``transport_from_url`` reads ``GATEWAY_OUTBOUND_URL``.  Each transport raises
:class:`gateway.errors.TemporaryFailure` (retry later) or
:class:`gateway.errors.PermanentFailure` (give up), nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from outbound.transports.maildir import MaildirTransport
from outbound.transports.smtp import SmtpTransport

__all__ = ["Transport", "transport_from_url"]


class Transport(Protocol):
    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> str:
        """Deliver; return the next hop's answer (e.g. ``250 2.0.0 queued as …``)."""
        ...


def transport_from_url(url: str, timeout: float = 60.0, base: Path | None = None,
                       ca_file: Path | None = None) -> Transport:
    if url.startswith("maildir:"):
        path = Path(url.removeprefix("maildir:").removeprefix("//"))
        if base is not None and not path.is_absolute():
            path = base / path
        return MaildirTransport(path)
    return SmtpTransport.from_url(url, timeout=timeout,
                                  ca_file=str(ca_file) if ca_file else None)
