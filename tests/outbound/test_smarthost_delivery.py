"""Delivery through an SMTP smarthost: temporary refusals are retried with backoff and the
mail arrives once; a permanent refusal ends the outbox row dead with the server's answer.

The smarthost is a real aiosmtpd server on loopback whose answers are scripted: a
refusing remote server is a fault we cannot cause for real.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from gateway.config import Settings
from gateway.errors import PermanentFailure, TemporaryFailure
from gateway.models import OutboxItem
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import free_port, wait_for
from tests.mail import make_mail, send


class ScriptedSmarthost:
    """Answers RCPT from a script (``None`` = accept), then accepts and keeps the mail."""

    def __init__(self) -> None:
        self.script: list[str | None] = []
        self.received: list[bytes] = []
        self.rcpt_answers: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        with self._lock:
            answer = self.script.pop(0) if self.script else None
            self.rcpt_answers.append(answer or "250 OK")
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append(envelope.original_content)
        return "250 2.0.0 queued"


@pytest.fixture
def smarthost() -> Iterator[tuple[ScriptedSmarthost, int]]:
    handler = ScriptedSmarthost()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings],
             smarthost: tuple[ScriptedSmarthost, int]) -> Settings:
    return settings_factory(outbound_url=f"smtp://127.0.0.1:{smarthost[1]}",
                            delivery_min_backoff=0.3, delivery_max_backoff=1.0,
                            delivery_max_attempts=5)


def _outbox(gateway: Gateway) -> list[OutboxItem]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(OutboxItem)))


def test_temporary_refusals_then_acceptance_deliver_once(
        smarthost: tuple[ScriptedSmarthost, int], running: GatewayServer, gateway: Gateway,
        settings: Settings) -> None:
    host, _port = smarthost
    host.script = ["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"]
    send(settings.smtp_listen, make_mail(subject="Greylisted ack"))
    item = wait_for(lambda: [o for o in _outbox(gateway) if o.status.value == "sent"],
                    timeout=60, message="acknowledgement delivered")[0]
    assert len(host.received) == 1
    assert b"Greylisted ack" in host.received[0]
    assert item.attempts == 3
    # The acknowledgement was composed at the first attempt and kept: the bytes that
    # arrived at the third are the row's (a recomposition would differ in its boundary).
    assert item.recipe is None and host.received[0] == item.raw
    assert host.rcpt_answers[:2] == ["451 4.7.1 Greylisted, try again later", "421 4.3.2 Busy"]


def test_permanent_refusal_ends_dead_with_the_answer(
        smarthost: tuple[ScriptedSmarthost, int], running: GatewayServer, gateway: Gateway,
        settings: Settings) -> None:
    host, _port = smarthost
    host.script = ["550 5.1.1 <anna@acme.example>: Recipient address rejected"]
    send(settings.smtp_listen, make_mail(subject="Doomed ack"))
    item = wait_for(lambda: [o for o in _outbox(gateway) if o.status.value == "dead"],
                    timeout=60, message="outbox row dead")[0]
    assert "550" in item.last_error and "Recipient address rejected" in item.last_error
    assert item.attempts == 1 and host.received == []
    # No retry follows a permanent refusal.
    time.sleep(1.5)
    assert len(host.rcpt_answers) == 1
    assert _outbox(gateway)[0].attempts == 1


class _Authenticator:
    """Accepts one user/password pair; records what it saw."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        login, password = (v.decode() if isinstance(v, bytes) else str(v)
                           for v in (auth_data.login, auth_data.password))
        self.logins.append((mechanism, login))
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=(login, password) == ("relay-user", "s3cret pass"),
                          handled=False)


def test_starttls_and_auth_to_the_smarthost(settings_factory: Callable[..., Settings],
                                            tmp_path: Path) -> None:
    # Given a smarthost that requires STARTTLS and AUTH, with a certificate from our own CA
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    handler, authenticator, port = ScriptedSmarthost(), _Authenticator(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            tls_context=server_context, require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    controller.start()
    try:
        settings = settings_factory(
            outbound_url=f"smtp+starttls://relay-user:s3cret%20pass@127.0.0.1:{port}",
            smtp_ca_file=ca_file)
        transport = Gateway(settings).transport
        # When a message is handed over; Then it arrives, after STARTTLS and AUTH
        transport.send("support@support.example", "anna@acme.example",
                       make_mail(subject="Over TLS"))
        assert len(handler.received) == 1 and b"Over TLS" in handler.received[0]
        assert [login for _mechanism, login in authenticator.logins] == ["relay-user"]
        # A wrong password is a permanent refusal (535), never retried forever
        wrong = settings_factory(
            outbound_url=f"smtp+starttls://relay-user:nope@127.0.0.1:{port}",
            smtp_ca_file=ca_file)
        with pytest.raises(PermanentFailure, match="535"):
            Gateway(wrong).transport.send("support@support.example", "anna@acme.example",
                                          make_mail(subject="Refused"))
        # A certificate we cannot verify is a temporary failure (operator must fix)
        untrusted = settings_factory(
            outbound_url=f"smtp+starttls://relay-user:s3cret%20pass@127.0.0.1:{port}")
        with pytest.raises(TemporaryFailure, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            Gateway(untrusted).transport.send("support@support.example", "anna@acme.example",
                                              make_mail(subject="Untrusted"))
        assert len(handler.received) == 1
    finally:
        controller.stop()
