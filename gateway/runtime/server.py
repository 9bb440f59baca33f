"""``gateway serve`` and ``gateway worker``: start the parts in a safe order, stop cleanly.

Order: schema, directory files, a warm-up of processing, worker, a sweep of
everything left behind, and only then the listeners and the IMAP pollers, so a
client that can connect (and mail that is taken) is served end to end.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from gateway.active_policy import current_issue_types, current_policy
from gateway.config import parse_listen
from gateway.directory import SupportIdentity, load_directory_file
from gateway.memory import return_large_buffers
from gateway.runtime.app import Gateway
from gateway.runtime.handoff import HandoffListener
from gateway.runtime.processing_pool import pool_size
from gateway.runtime.scheduler import GatewayScheduler
from gateway.runtime.warm_up import warm_up
from gateway.web.app import make_web_app
from inbound.imap_poller import MailboxPollers
from inbound.intake_priority import IntakePriority, ProcessingFeed
from inbound.lmtp_server import LmtpIntake
from inbound.recipients import intake_identity
from inbound.smtp_server import GatewayHandler, SmtpIntake
from inbound.smtp_transport import ConnectionLimits, connections_that_fit, server_tls_context
from inbound.spool import SpoolWriter

__all__ = ["GatewayServer", "run_until_signalled"]

log = logging.getLogger(__name__)


class GatewayServer:
    def __init__(self, gateway: Gateway, *, run_worker: bool = True, run_web: bool = True) -> None:
        self.gateway = gateway
        self.run_worker = run_worker
        self.run_web = run_web
        self.smtp: SmtpIntake | None = None
        self.lmtp: LmtpIntake | None = None
        self.spool_writer: SpoolWriter | None = None
        self._web: uvicorn.Server | None = None
        self._web_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.scheduler: GatewayScheduler | None = None
        self.pollers: MailboxPollers | None = None
        self.intake_priority = IntakePriority(one_at_a_time=gateway.db.is_sqlite)
        self.feed: ProcessingFeed | None = None
        self.handoff: HandoffListener | None = None

    def _support(self) -> SupportIdentity:
        return intake_identity(self.gateway.db, self.gateway.settings)

    def start(self) -> None:
        gateway, settings = self.gateway, self.gateway.settings
        return_large_buffers()  # a 25 MB message's buffers go back to the system when freed
        tls_context = None  # unreadable certificate or key: ConfigError before anything runs
        if settings.smtp_tls_cert is not None and settings.smtp_tls_key is not None:
            tls_context = server_tls_context(settings.smtp_tls_cert, settings.smtp_tls_key)
        gateway.db.upgrade()
        for path in settings.directory:
            with gateway.db.transaction() as session:
                load_directory_file(session, path)
        gateway.services  # noqa: B018 - fail now on a missing secret or template dir
        current_policy(settings)  # a bad policy file stops serve here (ConfigError, exit 78)
        current_issue_types(settings)
        if self.run_worker:
            self._start_worker()
        gateway.sweep(everything=settings.embedded)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        self._sweeper.start()
        if settings.embedded and self.run_worker:  # what gateway ingest stores, processed here
            self.handoff = HandoffListener(settings.var_dir, gateway.enqueue_processing)
            if not self.handoff.start():
                self.handoff = None
        if settings.scheduler_enabled:
            self.scheduler = GatewayScheduler(gateway)
            self.scheduler.start()
        else:
            log.warning("scheduler_enabled is off: this node runs no periodic jobs (escalation, "
                        "expiring-grant notices, bulk mail); another node must run them")
        self.spool_writer = SpoolWriter(gateway.db)
        handler = GatewayHandler(
            store=self.spool_writer.submit,
            support=self._support, on_stored=gateway.enqueue_processing,
            max_recipients=settings.max_recipients)
        handler.prime(self._support())
        host, port = parse_listen(settings.smtp_listen)
        # One budget of descriptors for both listeners: each cap alone fitting the open-file
        # limit let the two together exhaust it.
        caps = connections_that_fit([settings.smtp_max_connections] * (
            2 if settings.lmtp_listen else 1))
        self.smtp = SmtpIntake(handler, host, port, data_size_limit=settings.max_message_size,
                               timeout=settings.smtp_timeout,
                               server_hostname=settings.smtp_hostname or None,
                               priority=self.intake_priority,
                               tls_context=tls_context, require_tls=settings.smtp_require_tls,
                               limits=ConnectionLimits(
                                   caps[0], settings.smtp_max_connections_per_ip),
                               transaction_timeout=settings.smtp_transaction_timeout,
                               data_timeout=settings.smtp_data_timeout,
                               junk_command_limit=settings.smtp_junk_command_limit,
                               connection_seconds=settings.smtp_connection_seconds)
        # What start-up built (modules, templates, compiled patterns) lives as long as the
        # process: keep the cyclic garbage collector from walking it again and again.
        gc.freeze()
        self.smtp.start()
        log.info("SMTP intake listening on %s%s", settings.smtp_listen,
                 " (STARTTLS offered)" if tls_context else "")
        if settings.lmtp_listen:  # the same handler: same RCPT check, same spool writer
            lmtp_host, lmtp_port = parse_listen(settings.lmtp_listen)
            # TLS as SMTP's; required (smtp_require_tls) of peers beyond loopback only.
            self.lmtp = LmtpIntake(handler, lmtp_host, lmtp_port,
                                   data_size_limit=settings.max_message_size,
                                   timeout=settings.smtp_timeout,
                                   server_hostname=settings.smtp_hostname or None,
                                   priority=self.intake_priority,
                                   tls_context=tls_context,
                                   require_tls=settings.smtp_require_tls,
                                   limits=ConnectionLimits(
                                       caps[1], settings.smtp_max_connections_per_ip),
                                   transaction_timeout=settings.smtp_transaction_timeout,
                                   data_timeout=settings.smtp_data_timeout,
                                   junk_command_limit=settings.smtp_junk_command_limit,
                                   connection_seconds=settings.smtp_connection_seconds)
            self.lmtp.start()
            log.info("LMTP intake listening on %s%s", settings.lmtp_listen,
                     "" if tls_context is None else " (STARTTLS offered; required beyond "
                     "loopback)" if settings.smtp_require_tls else " (STARTTLS offered)")
        if settings.sender_authentication == "token":
            log.warning("sender_authentication = token is for DEVELOPMENT ONLY: a reply token "
                        "vouches only for the address it was sent to, and new mail is never "
                        "verified (no premium terms, commands or ticket lists by mail); use "
                        "authres or dkim in production")
        if self.run_web:
            web_host, web_port = parse_listen(settings.web_listen)
            config = uvicorn.Config(make_web_app(gateway.db, gateway), host=web_host, port=web_port,
                                    log_level="warning", lifespan="off")
            self._web = uvicorn.Server(config)
            self._web_thread = threading.Thread(target=self._web.run, name="web", daemon=True)
            self._web_thread.start()
            log.info("web listening on %s", settings.web_listen)
        # Shared mailboxes last: what they take goes through the spool writer above.
        self.pollers = MailboxPollers(settings.mailboxes, gateway.db, self.spool_writer.submit,
                                      gateway.enqueue_processing,
                                      max_message_size=settings.max_message_size,
                                      max_header_block_size=settings.max_header_block_size)
        self.pollers.start()

    def _start_worker(self) -> None:
        gateway = self.gateway
        if pool_size(gateway.settings):
            # Processing children at a higher nice value: intake here gets the CPU first
            # from the kernel, and processing is never held back.
            gateway.start_worker(beside_intake=True)
            return
        warm_up(gateway.services)  # first-message costs now, not during the first burst
        # The worker threads share this process's GIL with SMTP intake: intake first.
        gateway.services.turn = self.intake_priority.turn
        gateway.start_worker()
        self.feed = ProcessingFeed(self.intake_priority, gateway.send_processing)
        gateway.processing_feed = self.feed.submit

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.gateway.settings.sweep_interval):
            try:
                self.gateway.sweep()
            except Exception:  # noqa: BLE001 - an outage must not kill the sweeper
                log.exception("sweep failed; trying again later")

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.pollers is not None:
            self.pollers.stop()
            self.pollers = None
        if self.lmtp is not None:
            self.lmtp.stop()
            self.lmtp = None
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None
        if self.handoff is not None:
            self.handoff.stop()
            self.handoff = None
        if self.spool_writer is not None:
            self.spool_writer.close()
            self.spool_writer = None
        if self.feed is not None:  # what it still holds is received rows: the next sweep's
            self.gateway.processing_feed = None
            self.feed.close()
            self.feed = None
        if self._web is not None:
            self._web.should_exit = True
            if self._web_thread is not None:
                self._web_thread.join(timeout=10)
        self.gateway.close()
        log.info("gateway stopped")


def run_until_signalled(start: Callable[[], None], stop: Callable[[], None]) -> None:
    """Start, then block until SIGTERM or SIGINT, then stop."""
    done = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received, stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        stop()
