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
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, TLSSetupException, syntax

from gateway.directory import SupportIdentity
from gateway.errors import StorageError
from inbound.addresses import is_storable
from inbound.intake_priority import IntakePriority
from inbound.recipients import recipient_refusal
from inbound.smtp_codes import (
    S250_QUEUED,
    S250_RECIPIENT_OK,
    S250_SENDER_OK,
    S354_START_DATA,
    S421_DEADLINE,
    S421_IDLE,
    S421_LIFETIME,
    S421_TOO_MANY_CONNECTIONS,
    S421_TOO_MANY_FROM_ADDRESS,
    S421_TOO_MANY_JUNK,
    S451_STORAGE,
    S501_DATA_SYNTAX,
    S501_EHLO_SYNTAX,
    S503_NEED_RCPT,
    S503_TLS_ACTIVE,
    S552_TOO_BIG,
    S553_BAD_SENDER,
    with_enhanced_code,
)
from inbound.smtp_data import DataState, read_data
from inbound.smtp_transport import ConnectionLimits
from inbound.spool import StoredMessage

__all__ = ["GatewayHandler", "GatewaySMTP", "SmtpIntake"]

log = logging.getLogger(__name__)

SUPPORT_CACHE_SECONDS = 5.0
STREAM_LIMIT = 10_000
"""The stream buffer's limit: the block size of DATA (whose lines have no limit but the
message size) and the most of a command line read before it is refused."""
COMMAND_LINE_LIMIT = 512
"""RFC 5321 4.5.3.1.4; a longer command line gets ``500 5.5.2``."""

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>[ \t]*+(?![(])")
"""``<dot-atom@host.name>`` and what follows: the paths nearly every client sends, for
which the email package's full RFC 5322 parser (a tenth of an intake's CPU) gives
exactly the text between the brackets."""


_NAMES: dict[type, list[str]] = {}


def _names_of(obj: object, prefixes: tuple[str, ...], excluded: tuple[str, ...] = ()
              ) -> list[str]:
    """The attribute names of ``obj``'s class that start with ``prefixes``, computed once.

    aiosmtpd builds its command and hook tables with ``inspect.getmembers`` and ``dir``
    of the protocol and the handler on every connection, reading every attribute of both
    classes: a fifth of the CPU of a short session.  The names are a property of the
    class, so ``__dir__`` answers from this cache.
    """
    names = _NAMES.get(type(obj))
    if names is None:
        names = _NAMES[type(obj)] = [name for name in object.__dir__(obj)
                                     if name.startswith(prefixes) and name not in excluded]
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

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        """What aiosmtpd does without a hook, answered with the enhanced code of MAIL; a
        sender that is not UTF-8 or holds a control character (NUL) is refused here: it
        could not be stored, and in a group commit it failed every other client's message
        with it."""
        if not is_storable(address):
            return S553_BAD_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return S250_SENDER_OK

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
        if isinstance(error, TLSSetupException):  # the client's; aiosmtpd closes, says nothing
            log.info("TLS handshake failed: %s", error.__cause__ or error)
            return S451_STORAGE
        log.error("SMTP session error: %s: %s", type(error).__name__, error)
        return S451_STORAGE


class _CommandLineLimits(dict[str, int]):
    """Command line limits after EHLO (RFC 5321 4.5.3.1.4, plus what our MAIL parameters
    add: RFC 1870 SIZE 26, SMTPUTF8 10, BODY=8BITMIME 14).  Fixed, and not aiosmtpd's
    class-wide table that every EHLO of every connection raises; a missing name reads
    the default without being added, so unknown commands cannot grow it."""

    def __missing__(self, command: str) -> int:
        return COMMAND_LINE_LIMIT


_EXTENDED_COMMAND_LIMITS = _CommandLineLimits(MAIL=COMMAND_LINE_LIMIT + 26 + 10 + 14)


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with the gateway's edges, telling ``priority`` each time a
    message was answered.

    - every reply carries an enhanced status code (:func:`with_enhanced_code` in ``push``);
      EHLO lists exactly what is done, and AUTH is not offered (nor listed by HELP);
    - connection caps (``limits``): beyond them a new connection gets ``421 4.7.0``;
    - deadlines: a transaction (its first MAIL to the end of a DATA, whatever RSET, HELO or
      EHLO come between) and DATA itself must end in time, however steadily the bytes
      trickle (``421 4.4.2``);
    - junk commands (NOOP, RSET, VRFY, EXPN, HELP, HELO/EHLO, any refused or unknown
      command) past ``junk_command_limit`` between accepted messages: ``421 4.7.0``;
    - a lifetime (``connection_seconds``): then ``421 4.4.2``, after the answer to a
      message being received, never in its middle;
    - lines of a message are as long as its size allows (:mod:`inbound.smtp_data`).

    Three of aiosmtpd's hot paths are replaced by cheaper ones with the same
    results: DATA is read in blocks (:mod:`inbound.smtp_data`), plain paths skip the
    RFC 5322 parser, and the per-connection method scan sees only the names it uses.
    """

    line_length_limit = STREAM_LIMIT
    priority: IntakePriority | None = None
    source = "smtp"
    """The spool row's ``source`` for mail taken by this protocol."""
    limits: ConnectionLimits | None = None
    transaction_timeout: float | None = None
    data_timeout: float | None = None
    junk_command_limit: int | None = None
    connection_seconds: float | None = None
    _slot: str | None = None
    _refused = False
    _in_data = False
    _deadline: asyncio.TimerHandle | None = None
    _lifetime: asyncio.TimerHandle | None = None
    _expired = False
    """The lifetime ran out while a message was open: close once it is answered."""
    _message_open = False
    """From DATA's 354 to the message's answer: only the message's own deadline may cut it."""
    _junk = 0
    _counted = False
    """The running command was counted as junk already: its refusal does not count again."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.command_size_limits = _EXTENDED_COMMAND_LIMITS

    def __dir__(self) -> list[str]:
        """The names aiosmtpd's ``__init__`` looks for: ``smtp_*`` without AUTH, and no
        ``auth_*`` mechanism, so AUTH is neither offered nor accepted."""
        return _names_of(self, ("smtp_",), excluded=("smtp_AUTH",))

    # -- connection caps ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None  # not STARTTLS's
        if self.limits is not None and first:
            peer = transport.get_extra_info("peername")
            address = str(peer[0] if isinstance(peer, tuple) else peer)
            refused = self.limits.admit(address)
            if refused is not None:
                self._refused = True
                reply = (S421_TOO_MANY_CONNECTIONS if refused == "total"
                         else S421_TOO_MANY_FROM_ADDRESS)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(reply.encode("ascii") + b"\r\n")
                transport.close()
                return
            self._slot = address
        super().connection_made(transport)
        if first and self.connection_seconds is not None:
            self._lifetime = self.loop.call_later(self.connection_seconds, self._lifetime_over)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:  # aiosmtpd never started on this one
            return
        if self._slot is not None and self.limits is not None:
            self.limits.release(self._slot)
            self._slot = None
        self._stop_deadline()
        if self._lifetime is not None:
            self._lifetime.cancel()
            self._lifetime = None
        super().connection_lost(error)

    # -- replies ---------------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        """Say ``status`` with an enhanced code; a refusal outside a message is junk."""
        if isinstance(status, str):
            status = with_enhanced_code(status)
            first = status[:1]
        else:
            first = status[:1].decode("ascii", "replace")
        await super().push(status)
        if first in ("4", "5") and not (self._counted or self._message_open):
            self._count_junk()

    # -- junk commands ----------------------------------------------------------------

    def _count_junk(self) -> bool:
        """Count a command that moved no message forward; past the limit say 421 and close
        (True): looping NOOP or RSET (or errors) would hold a connection slot for nothing."""
        self._junk += 1
        if self.junk_command_limit is None or self._junk <= self.junk_command_limit:
            return False
        self._close_with(S421_TOO_MANY_JUNK)
        return True

    async def _junk_command(self, command: Callable[[Any], Awaitable[Any]], arg: Any) -> None:
        """Run ``command`` as one junk command (counted once, refused or not)."""
        if self._count_junk():
            return
        self._counted = True
        try:
            await command(arg)
        finally:
            self._counted = False

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str | None) -> None:
        await self._junk_command(super().smtp_NOOP, arg)

    @syntax("RSET")
    async def smtp_RSET(self, arg: str | None) -> None:
        await self._junk_command(super().smtp_RSET, arg)

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None) -> None:
        await self._junk_command(super().smtp_VRFY, arg)

    async def smtp_EXPN(self, arg: str | None) -> None:
        await self._junk_command(super().smtp_EXPN, arg)

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str | None) -> None:
        await self._junk_command(super().smtp_HELP, arg)

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        await self._junk_command(super().smtp_HELO, hostname)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """EHLO is junk too (needed once, and once after STARTTLS): it resets the envelope,
        so a loop of it is the RSET loop."""
        await self._junk_command(self._ehlo, hostname)

    async def _ehlo(self, hostname: str) -> None:
        """aiosmtpd's EHLO with the extensions the gateway has, sent in one write."""
        if not hostname:
            await self.push(S501_EHLO_SYNTAX)
            return
        self._set_rset_state()  # type: ignore[no-untyped-call]
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname, *self._extensions()]
        await super().push("\r\n".join(
            [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]))

    def _extensions(self) -> list[str]:
        extensions = ["PIPELINING"]
        if self.data_size_limit:
            extensions.append(f"SIZE {self.data_size_limit}")
        if self.tls_context and not self._tls_protocol:
            extensions.append("STARTTLS")
        extensions += ["ENHANCEDSTATUSCODES", "8BITMIME"]
        if self.enable_SMTPUTF8:
            extensions.append("SMTPUTF8")
        return extensions

    # -- STARTTLS ------------------------------------------------------------------

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str | None) -> None:
        """aiosmtpd's STARTTLS, refused once TLS is on (RFC 3207 4.2: ``503 5.5.1``).

        aiosmtpd 1.4 answered a second STARTTLS with 220 and began a handshake inside the
        first TLS layer; when that one stalled asyncio never told the protocol its
        connection was lost, so the connection's slot was never given back: a few
        dozen such clients locked everyone out of SMTP until a restart.
        """
        if self._tls_protocol is not None:
            await self.push(S503_TLS_ACTIVE)
            return
        await super().smtp_STARTTLS(arg or "")

    # -- deadlines -----------------------------------------------------------------

    def _start_deadline(self, seconds: float | None) -> None:
        """Cut the connection off ``seconds`` from now, or earlier if already set so."""
        if seconds is None:
            return
        when = self.loop.time() + seconds
        if self._deadline is not None:
            if self._deadline.when() <= when:
                return
            self._deadline.cancel()
        self._deadline = self.loop.call_at(when, self._close_with, S421_DEADLINE)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _close_with(self, reply: str) -> None:
        """Say ``reply`` and close: the handler is cancelled, an unfinished message dropped.

        Called from the handler itself (the junk limit), the cancellation lands at its next
        wait, so no command the client pipelined behind runs to its end."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        log.info("%r: %s", self.session.peer if self.session else None, reply)
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()
        if self._tls_protocol is not None and self.session is not None and self.session.ssl is None:
            # Mid-handshake there is no one to say it to, and asyncio never tells a protocol
            # whose handshake did not finish that its connection is lost: do it here.
            assert isinstance(self._original_transport, asyncio.WriteTransport)
            self._original_transport.abort()
            self.connection_lost(None)
            return
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(reply.encode("ascii") + b"\r\n")
        transport.close()

    def _timeout_cb(self) -> None:
        """The idle timeout, with a reply (aiosmtpd closes without one)."""
        self._close_with(S421_IDLE)

    def _lifetime_over(self) -> None:
        """The connection's time is up: close it now, or once the message being received
        is answered (it has its own deadline; cutting it would waste what the client sent)."""
        self._lifetime = None
        if self._message_open:
            self._expired = True
        else:
            self._close_with(S421_LIFETIME)

    def data_received(self, data: bytes) -> None:
        """Bytes of a message restart the idle timeout (aiosmtpd restarts it per command
        line only, so a large message on a slow link was cut off while its bytes kept
        coming); its deadline still bounds it.  Between commands only a whole command
        does, so a command line trickled byte by byte cannot hold the connection."""
        if self._in_data:
            self._reset_timeout()
        super().data_received(data)

    # -- commands --------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, arg[plain.end():]

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """aiosmtpd's MAIL; the transaction it opened must end before its deadline.

        A deadline already running is kept: only the end of a DATA stops it, not RSET,
        HELO, EHLO or STARTTLS, so MAIL, RSET, MAIL… cannot hold a connection for ever."""
        await super().smtp_MAIL(arg)
        if self.envelope is not None and self.envelope.mail_from:
            self._start_deadline(self.transaction_timeout)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        await self._data(arg)

    def _reset_envelope(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    async def _data(self, arg: str | None) -> None:
        """aiosmtpd's ``smtp_DATA`` (checks, answers, hook) with the block reader."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(S503_NEED_RCPT)
            return
        if arg:
            await self.push(S501_DATA_SYNTAX)
            return
        self._message_open = True
        try:
            accepted = await self._message()
        finally:
            self._message_open = False
        if accepted:  # as Postfix: a message taken clears the junk count
            self._junk = 0
        if self._expired:
            self._close_with(S421_LIFETIME)

    async def _message(self) -> bool:
        """354, the message, its answer (250 only after the commit); True if taken."""
        assert self.envelope is not None
        self._start_deadline(self.data_timeout)
        await self.push(S354_START_DATA)
        self._in_data = True
        try:
            result = await read_data(self._reader, size_limit=self.data_size_limit)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise
        finally:
            self._in_data = False
        self._stop_deadline()  # the client's part is done (the transaction too); storing is ours
        if result is None:  # the client closed the connection mid-message
            return False
        if result.state is DataState.TOO_MUCH:
            await self.push(S552_TOO_BIG)
            self._reset_envelope()
            return False
        content: bytes | str = result.content
        if self._decode_data:  # pragma: no cover - the gateway keeps raw bytes
            content = result.content.decode("utf-8", errors="surrogateescape")
        self.envelope.content = content
        self.envelope.original_content = result.content
        status = await self._call_handler_hook("DATA")
        self._reset_envelope()
        if self.priority is not None:
            self.priority.taken()
        reply = S250_QUEUED if status is MISSING else str(status)
        await self.push(reply)
        return reply.startswith("2")


class SmtpIntake(Controller):
    """A threaded aiosmtpd controller with our limits; ``start()`` returns once it listens.

    ``tls_context`` offers STARTTLS (``require_tls``: nothing but EHLO, NOOP, STARTTLS
    and QUIT before it); ``limits`` caps connections; ``transaction_timeout`` bounds
    MAIL to the end of DATA and ``data_timeout`` DATA, ``timeout`` is the idle timeout;
    ``junk_command_limit`` and ``connection_seconds`` bound what a connection may do
    without sending mail, and how long it may stay open.
    """

    protocol: type[GatewaySMTP] = GatewaySMTP
    """The protocol of each connection (the LMTP intake puts its own here)."""

    def __init__(self, handler: GatewayHandler, host: str, port: int, *,
                 data_size_limit: int, timeout: float, server_hostname: str | None = None,
                 priority: IntakePriority | None = None,
                 tls_context: ssl.SSLContext | None = None, require_tls: bool = False,
                 limits: ConnectionLimits | None = None,
                 transaction_timeout: float | None = None,
                 data_timeout: float | None = None,
                 junk_command_limit: int | None = None,
                 connection_seconds: float | None = None) -> None:
        self.priority = priority
        self.limits = limits
        self.transaction_timeout = transaction_timeout
        self.data_timeout = data_timeout
        self.junk_command_limit = junk_command_limit
        self.connection_seconds = connection_seconds
        super().__init__(handler, hostname=host, port=port, server_hostname=server_hostname,
                         ready_timeout=10.0, data_size_limit=data_size_limit,
                         enable_SMTPUTF8=True, decode_data=False, timeout=timeout,
                         ident="support-gateway ESMTP", tls_context=tls_context,
                         require_starttls=require_tls)

    def factory(self) -> SMTP:
        kwargs: dict[str, Any] = dict(self.SMTP_kwargs)
        smtp = self.protocol(self.handler, **kwargs)
        smtp.priority = self.priority
        smtp.limits = self.limits
        smtp.transaction_timeout = self.transaction_timeout
        smtp.data_timeout = self.data_timeout
        smtp.junk_command_limit = self.junk_command_limit
        smtp.connection_seconds = self.connection_seconds
        return smtp
