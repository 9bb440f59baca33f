"""What the SMTP listener needs below the protocol: its TLS context and its connection caps.

A client may hold a connection for minutes; without a cap, idle connections from one
address used up the process's file descriptors until neither SMTP nor ``/healthz``
could accept anything.  :class:`ConnectionLimits` counts connections in total and per
client address; :func:`connections_that_fit` keeps the caps of all listeners (SMTP and
LMTP) together within the descriptors the process may open.
"""

from __future__ import annotations

import logging
import os
import resource
import ssl
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import ConfigError

__all__ = ["ConnectionLimits", "connections_that_fit", "server_tls_context"]

log = logging.getLogger(__name__)

ACCEPT_BURST = 100
"""asyncio accepts up to its listen backlog (100) connections at once, each a descriptor
until it is refused: a flood needs that many above the cap."""
REFUSAL_LOG_INTERVAL = 60.0
DESCRIPTOR_RESERVE = 64
"""Descriptors for everything else that opens files later: the database, the broker,
the web listener's clients, worker threads, TLS, logs."""


class ConnectionLimits:
    """Open SMTP connections, in total and per client address.

    Used from the listener's event loop thread only, so it needs no lock.  A connection
    takes a slot when it is admitted and gives it back when it is lost; a refused one
    never holds one.
    """

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self.open = 0
        self._by_address: dict[str, int] = {}
        self._refused = 0
        self._logged_at = -REFUSAL_LOG_INTERVAL

    def admit(self, address: str) -> str | None:
        """Take a slot for ``address``; None if admitted, else which cap refused it."""
        if self.open >= self.total:
            return self._refuse(address, "total")
        held = self._by_address.get(address, 0)
        if held >= self.per_address:
            return self._refuse(address, "per-address")
        self.open += 1
        self._by_address[address] = held + 1
        return None

    def _refuse(self, address: str, cap: str) -> str:
        """Log a refusal, at most one line a minute however many come (a flood)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_INTERVAL:
            log.warning("SMTP connection from %s refused: the %s connection cap is reached "
                        "(%d refused since the last such line; %d open)",
                        address, cap, self._refused, self.open)
            self._refused, self._logged_at = 0, now
        return cap

    def release(self, address: str) -> None:
        self.open -= 1
        held = self._by_address.pop(address) - 1
        if held:
            self._by_address[address] = held


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: count nothing, the reserve must do
        return 0


def connections_that_fit(wanted: Sequence[int]) -> list[int]:
    """The connection caps this process can honour, one for each listener (SMTP, LMTP):
    ``wanted``, or less under a low ``RLIMIT_NOFILE`` that cannot be raised (logged).

    The listeners share one budget of descriptors: together their caps, an accept burst
    for each and the reserve fit the limit, so accepting clients on both never takes the
    last descriptors the web listener and the database need.  When they do not fit, the
    room left is split in proportion to what each wanted (at least one each).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    overhead = _open_descriptors() + ACCEPT_BURST * len(wanted) + DESCRIPTOR_RESERVE
    needed = overhead + sum(wanted)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return list(wanted)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - the hard limit said it may
            pass
    if soft >= needed:
        log.info("raised the open-file limit to %d for %s connections", soft,
                 " + ".join(map(str, wanted)))
        return list(wanted)
    room = max(0, soft - overhead)
    fit = [max(1, room * want // sum(wanted)) for want in wanted]
    log.warning("the open-file limit (%d) leaves room for %s connections (SMTP%s), not the "
                "configured %s: at most that many are taken; raise the limit (ulimit -n, "
                "LimitNOFILE=) to allow more", soft, " + ".join(map(str, fit)),
                ", LMTP" if len(wanted) > 1 else "", " + ".join(map(str, wanted)))
    return fit


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for STARTTLS from PEM files (TLS 1.2 or later, no client
    certificates asked); a file that cannot be loaded is a configuration error."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except ssl.SSLError as error:
        detail = f" ({error.reason})" if error.reason else ""
        raise ConfigError(f"GATEWAY_SMTP_TLS_CERT / GATEWAY_SMTP_TLS_KEY: {cert} and {key} "
                          f"are not a PEM certificate and its private key{detail}") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"GATEWAY_SMTP_TLS_CERT / GATEWAY_SMTP_TLS_KEY: cannot load the "
                          f"certificate {cert} with the key {key}: {reason}") from None
    return context
