"""LMTP intake (``GATEWAY_LMTP_LISTEN``): LHLO, RCPT as SMTP, one reply per recipient after DATA."""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from email.utils import getaddresses
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from inbound.lmtp_server import is_local_peer
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


def _address_beyond_loopback() -> str:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("198.51.100.1", 9))
        address = str(probe.getsockname()[0])
    finally:
        probe.close()
    assert not ipaddress.ip_address(address).is_loopback, address
    return address


def test_lmtp_beyond_loopback_must_starttls_when_tls_is_required(
        settings_factory: Callable[..., Settings], tmp_path: Path,
        processes: Processes) -> None:
    """``GATEWAY_SMTP_REQUIRE_TLS`` used not to reach LMTP: bound beyond loopback, it took
    mail in plain text from any host.  Now LHLO offers STARTTLS, a peer beyond loopback
    gets ``530 5.7.0`` for MAIL before it, and the local MTA on loopback goes on as before."""
    remote = _address_beyond_loopback()
    ca = trustme.CA()
    cert = ca.issue_cert(remote, "127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    port = free_port()
    settings = settings_factory(lmtp_listen=f"0.0.0.0:{port}", smtp_tls_cert=cert_file,
                                smtp_tls_key=key_file, smtp_require_tls=True)
    gateway = Gateway(settings)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        with serve_in_process(gateway, settings, processes):
            client = smtplib.LMTP(timeout=30, source_address=(remote, 0))
            client.connect(remote, port)
            # smtplib.LMTP.connect keeps no host name for the TLS handshake to check
            setattr(client, "_host", remote)  # noqa: B010
            try:
                client.ehlo("mta.example")
                assert client.has_extn("starttls")
                code, text = client.mail("anna@acme.example")
                assert (code, text[:5]) == (530, b"5.7.0")
                assert client.starttls(context=context)[0] == 220
                client.ehlo("mta.example")
                assert not client.has_extn("starttls")
                assert client.mail("anna@acme.example")[0] == 250
                assert client.rcpt("support@support.example")[0] == 250
                reply = client.data(make_mail(subject="LMTP over TLS",
                                              message_id="<lmtp-tls@acme.example>"))
                assert reply[0] == 250, reply
            finally:
                client.quit()
            local = smtplib.LMTP(timeout=30)  # the local MTA: loopback, plain text
            local.connect("127.0.0.1", port)
            try:
                local.ehlo("mta.example")
                assert local.mail("max@acme.example")[0] == 250
                assert local.rcpt("support@support.example")[0] == 250
                reply = local.data(make_mail(sender="max@acme.example", subject="Local LMTP",
                                             message_id="<lmtp-local@acme.example>"))
                assert reply[0] == 250, reply
            finally:
                local.quit()
            with gateway.db.reading() as session:
                peers = {row.message_id: row.peer for row in session.execute(
                    select(SpoolEntry.message_id, SpoolEntry.peer))}
            assert peers == {"lmtp-tls@acme.example": remote,
                             "lmtp-local@acme.example": "127.0.0.1"}
    finally:
        gateway.close()


@pytest.mark.parametrize(("peer", "local"), [
    (("127.0.0.1", 5000), True), (("127.8.9.1", 5000), True), (("::1", 5000, 0, 0), True),
    (("::ffff:127.0.0.1", 5000, 0, 0), True), ("", True),  # a unix socket has no address
    (("192.0.2.7", 5000), False), (("::ffff:192.0.2.7", 5000, 0, 0), False),
    (("fe80::1%eth0", 5000, 0, 2), False), (("not an address", 1), False),
])
def test_only_loopback_and_unix_peers_are_local(peer: object, local: bool) -> None:
    assert is_local_peer(peer) is local
