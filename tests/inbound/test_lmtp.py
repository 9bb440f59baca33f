"""LMTP intake (``GATEWAY_LMTP_LISTEN``): LHLO, RCPT as SMTP, one reply per recipient after DATA."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from email.utils import getaddresses
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from tests.conftest import DIRECTORY, Processes, free_port, serve_in_process, wait_for
from tests.mail import maildir_messages, make_mail


@pytest.fixture
def lmtp_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(lmtp_listen=f"127.0.0.1:{free_port()}")


@pytest.fixture
def lmtp_gateway(lmtp_settings: Settings, processes: Processes) -> Iterator[Gateway]:
    gateway = Gateway(lmtp_settings)
    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    with serve_in_process(gateway, lmtp_settings, processes):
        yield gateway
    gateway.close()


def _client(settings: Settings) -> smtplib.LMTP:
    host, port = settings.lmtp_listen.rsplit(":", 1)
    client = smtplib.LMTP(timeout=30)
    client.connect(host, int(port))
    return client


def _spool(gateway: Gateway, message_id: str) -> SpoolEntry | None:
    with gateway.db.reading() as session:
        row = session.scalar(select(SpoolEntry).where(SpoolEntry.message_id == message_id))
        return row if row is not None and row.state != SpoolState.RECEIVED else None


def test_lmtp_answers_each_recipient_after_data_and_stays_in_step(
        lmtp_settings: Settings, lmtp_gateway: Gateway) -> None:
    client = _client(lmtp_settings)
    try:
        # LMTP greets with LHLO (and asks for it, not for the HELO it refuses).
        assert client.docmd("MAIL", "FROM:<anna@acme.example>") == (
            503, b"5.5.1 Error: send LHLO first")
        assert client.docmd("EHLO", "client.example")[0] == 500
        assert client.docmd("HELO", "client.example")[0] == 500
        code, _ = client.ehlo("client.example")  # smtplib.LMTP sends LHLO
        assert code == 250
        assert client.mail("anna@acme.example")[0] == 250
        assert client.rcpt("support@support.example")[0] == 250
        assert client.rcpt("postmaster@support.example")[0] == 250
        # The RCPT check is SMTP's: an unknown local part and a foreign domain are refused.
        code, text = client.rcpt("nobody@support.example")
        assert (code, text[:5]) == (550, b"5.1.1")
        code, text = client.rcpt("anna@other.example")
        assert (code, text[:5]) == (550, b"5.7.1")
        raw = make_mail(subject="Sync fails (LMTP)", message_id="<lmtp-1@acme.example>")
        first = client.data(raw)
        second = client.getreply()  # one reply per accepted recipient (RFC 2033 4.2)
        assert first[0] == 250 and second[0] == 250, (first, second)
        # The connection is in step: a second transaction is answered normally.
        assert client.rset()[0] == 250
        assert client.mail("max@acme.example")[0] == 250
        assert client.rcpt("support@support.example")[0] == 250
        reply = client.data(make_mail(sender="max@acme.example", subject="Printer (LMTP)",
                                      message_id="<lmtp-2@acme.example>"))
        assert reply[0] == 250, reply
        assert client.noop()[0] == 250
    finally:
        client.quit()

    row = wait_for(lambda: _spool(lmtp_gateway, "lmtp-1@acme.example"), message="processing")
    assert row.source == "lmtp" and row.mail_from == "anna@acme.example"
    assert row.rcpt_tos == ["support@support.example", "postmaster@support.example"]
    assert row.state == SpoolState.PROCESSED and row.ticket_number is not None
    wait_for(lambda: _spool(lmtp_gateway, "lmtp-2@acme.example"), message="second message")
    sent = Path(lmtp_settings.outbound_url.removeprefix("maildir:"))
    def acknowledged() -> set[str]:
        acks = [m for m in maildir_messages(sent)
                if "(LMTP)" in str(m["Subject"]) and m["Auto-Submitted"]]
        return {address for m in acks for _name, address in getaddresses([str(m["To"])])}
    assert wait_for(lambda: len(acknowledged()) == 2 and acknowledged(),
                    message="both acknowledgements") == {"anna@acme.example", "max@acme.example"}


def test_lmtp_answers_every_recipient_when_the_message_is_too_big(
        settings_factory: Callable[..., Settings], processes: Processes) -> None:
    settings = settings_factory(lmtp_listen=f"127.0.0.1:{free_port()}", max_message_size=5_000)
    gateway = Gateway(settings)
    try:
        with serve_in_process(gateway, settings, processes):
            client = _client(settings)
            try:
                client.ehlo("client.example")
                client.mail("anna@acme.example")
                client.rcpt("support@support.example")
                client.rcpt("postmaster@support.example")
                replies = [client.data(make_mail(body="x" * 10_000)), client.getreply()]
                assert [code for code, _ in replies] == [552, 552], replies
                assert client.noop()[0] == 250  # still in step
            finally:
                client.quit()
            with gateway.db.reading() as session:
                assert session.scalar(select(SpoolEntry.id)) is None
    finally:
        gateway.close()
