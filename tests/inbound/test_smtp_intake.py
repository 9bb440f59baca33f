"""The SMTP front door over a real socket: relay refusal, limits, 250-after-commit, duplicates."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.mail import make_mail, send


def _client(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_listen.rsplit(":", 1)
    client = smtplib.SMTP(host, int(port), timeout=30)
    client.ehlo("client.example")
    return client


def _spool_count(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(SpoolEntry)) or 0


def test_foreign_domain_is_refused_as_relay(running: GatewayServer, settings: Settings) -> None:
    with _client(settings) as client:
        client.mail("anna@acme.example")
        code, text = client.rcpt("someone@elsewhere.example")
    assert (code, text[:5]) == (550, b"5.7.1")


def test_unknown_local_part_on_our_domain_is_refused(
    running: GatewayServer, settings: Settings
) -> None:
    with _client(settings) as client:
        client.mail("anna@acme.example")
        code, text = client.rcpt("nobody@support.example")
        ok_code, _ = client.rcpt("Support+anything@SUPPORT.example")
    assert (code, text[:5]) == (550, b"5.1.1")
    assert ok_code == 250


def test_size_is_advertised_and_enforced(
    running: GatewayServer, gateway: Gateway, settings_factory: Callable[..., Settings]
) -> None:
    with _client(running.gateway.settings) as client:
        assert int(client.esmtp_features["size"]) == running.gateway.settings.max_message_size
        big = make_mail(body="x" * 70 + "\n") + b"y" * (running.gateway.settings.max_message_size)
        with pytest.raises(smtplib.SMTPException) as refused:
            client.sendmail("anna@acme.example", ["support@support.example"], big)
    error = refused.value
    code = (
        getattr(error, "smtp_code", None)
        or next(iter(getattr(error, "recipients", {}).values()), (None,))[0]
    )
    assert code == 552
    assert _spool_count(gateway) == 0


def test_too_many_recipients_get_452(gateway: Gateway,
                                     settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(max_recipients=3)
    server = GatewayServer(Gateway(settings), run_worker=False, run_web=False)
    server.start()
    try:
        with _client(settings) as client:
            client.mail("anna@acme.example")
            codes = [client.rcpt(f"support+{n}@support.example")[0] for n in range(4)]
    finally:
        server.stop()
    assert codes == [250, 250, 250, 452]


def test_250_means_committed_and_duplicate_delivery_is_stored_once(
    running: GatewayServer, gateway: Gateway, settings: Settings
) -> None:
    raw = make_mail(subject="Only once")
    assert send(settings.smtp_listen, raw) == {}
    # The row is there the moment the client has its 250.
    assert _spool_count(gateway) == 1
    # An MTA that lost our 250 sends the same message again: accepted, stored once.
    assert send(settings.smtp_listen, raw) == {}
    assert _spool_count(gateway) == 1
    with gateway.db.reading() as session:
        entry = session.scalars(select(SpoolEntry)).one()
    # Kept byte for byte as it came over the wire (smtplib only ends it with CRLF).
    assert entry.raw == raw + b"\r\n" and entry.mail_from == "anna@acme.example"
    assert entry.rcpt_tos == ["support@support.example"] and entry.peer == "127.0.0.1"
    assert len(entry.sha256) == 64 and entry.received_at.tzinfo is not None


def test_long_lines_and_8bit_bytes_are_kept_verbatim(
    running: GatewayServer, gateway: Gateway, settings: Settings
) -> None:
    raw = (
        b"From: anna@acme.example\r\nTo: support@support.example\r\nSubject: raw\r\n"
        b"Message-ID: <long-line@client.example>\r\nContent-Type: text/plain; charset=latin-1"
        b"\r\n\r\n" + b"\xe9" * 3000 + b"\r\n"
    )
    send(settings.smtp_listen, raw)
    with gateway.db.reading() as session:
        entry = session.scalars(select(SpoolEntry)).one()
    assert entry.raw == raw
