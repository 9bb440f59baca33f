"""One address, several spellings: a quoted local part that needs no quoting, and an
internationalised support domain in Unicode or in its IDNA (``xn--``) form, are our
addresses over SMTP, LMTP and the pipe alike (RFC 5321 4.1.2, RFC 5890, RFC 6531)."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import SupportIdentity, load_directory_file
from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from inbound.addresses import RecipientVerdict, classify_recipient, split_address
from tests.conftest import DIRECTORY, Processes, free_port, run_gateway, serve_in_process
from tests.mail import make_mail

UNICODE = SupportIdentity("Support", "support@bücher.example", ("bücher.example",),
                          aliases=("emergency",))
PUNYCODE = SupportIdentity("Support", "support@xn--bcher-kva.example",
                           ("xn--bcher-kva.example",), aliases=("emergency",))

OURS = [
    "support@bücher.example", "support@xn--bcher-kva.example", "Support@XN--BCHER-KVA.EXAMPLE",
    "support@BÜCHER.example", "support@bücher.example.", '"support"@bücher.example',
    '"support"@xn--bcher-kva.example', '"Support+abc"@bücher.example', '"sup\\port"@bücher.example',
    "<\"emergency\"@bücher.example>", "postmaster@xn--bcher-kva.example",
]


@pytest.mark.parametrize("support", [UNICODE, PUNYCODE], ids=["unicode", "punycode"])
@pytest.mark.parametrize("address", OURS)
def test_every_spelling_of_our_addresses_is_ours(support: SupportIdentity, address: str) -> None:
    assert classify_recipient(address, support) is RecipientVerdict.OURS


@pytest.mark.parametrize("support", [UNICODE, PUNYCODE], ids=["unicode", "punycode"])
def test_what_is_not_ours_stays_refused(support: SupportIdentity) -> None:
    # A quoted local part that needs its quotes is another mailbox, not ours.
    assert classify_recipient('"sup port"@bücher.example', support) is RecipientVerdict.UNKNOWN_USER
    assert classify_recipient('"support."@bücher.example', support) is RecipientVerdict.UNKNOWN_USER
    assert classify_recipient("support@bucher.example", support) is RecipientVerdict.FOREIGN_DOMAIN
    assert classify_recipient("support@xn--bcher-kva.example.org", support) is (
        RecipientVerdict.FOREIGN_DOMAIN)


def test_split_address_gives_the_forms_compared() -> None:
    recipient = split_address('"Support+Access"@BÜCHER.Example.')
    assert recipient is not None
    assert (recipient.local, recipient.detail, recipient.domain) == (
        "support", "access", "xn--bcher-kva.example")


def _directory(tmp_path: Path, domain: str) -> Path:
    path = tmp_path / "idn.toml"
    path.write_text(f'[support]\nname = "Example Support"\naddress = "support@{domain}"\n'
                    f'domains = ["{domain}", "support.example"]\n', encoding="utf-8")
    return path


def _rcpt(client: smtplib.SMTP, address: str) -> tuple[int, bytes]:
    client.command_encoding = "utf-8"  # SMTPUTF8: the path as the client wrote it
    return client.docmd("RCPT", f"TO:<{address}>")


@pytest.mark.parametrize("configured", ["bücher.example", "xn--bcher-kva.example"])
def test_smtp_lmtp_and_the_pipe_take_every_spelling(
        configured: str, settings_factory: Callable[..., Settings], tmp_path: Path,
        processes: Processes) -> None:
    settings = settings_factory(lmtp_listen=f"127.0.0.1:{free_port()}")
    gateway = Gateway(settings)
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
            load_directory_file(session, _directory(tmp_path, configured))
        with serve_in_process(gateway, settings, processes):
            for listen, kind in ((settings.smtp_listen, smtplib.SMTP),
                                 (settings.lmtp_listen, smtplib.LMTP)):
                host, port = listen.rsplit(":", 1)
                client = kind(timeout=30)
                client.connect(host, int(port))
                try:
                    client.ehlo("client.example")
                    assert client.docmd("MAIL", "FROM:<anna@acme.example> SMTPUTF8")[0] == 250
                    for address in ('"support"@support.example', "support@bücher.example",
                                    "support@xn--bcher-kva.example",
                                    '"support"@XN--BCHER-KVA.example'):
                        code, text = _rcpt(client, address)
                        assert code == 250, (kind.__name__, address, text)
                    assert _rcpt(client, '"sup port"@bücher.example')[0] == 550
                finally:
                    client.quit()
            for address in ('"support"@support.example', "support@bücher.example",
                            '"support"@xn--bcher-kva.example'):
                piped = run_gateway(settings, "ingest", "-f", "anna@acme.example",
                                    "-r", address, "-", input=make_mail(
                                        message_id=f"<{len(address)}@acme.example>"))
                assert piped.returncode == 0, (address, piped.stderr.decode())
        with gateway.db.reading() as session:
            assert len(session.scalars(select(SpoolEntry.id)).all()) == 3
    finally:
        gateway.close()
