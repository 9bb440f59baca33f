"""Outbound mail is DKIM-signed at delivery with the configured key: the delivered file
verifies with dkimpy (DNS answered by a stub holding the public key: the one fake here,
as the test cannot publish a DNS record), the stored outbox bytes stay unsigned, and the
signature covers the List-Unsubscribe headers of bulk mail (RFC 8058)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.bulk.conftest import _files, wait_delivered
from tests.conftest import free_port, run_gateway
from tests.mail import make_mail, send

SELECTOR = "gw2026"
DOMAIN = "support.example"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "private.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], key_pair: tuple[Path, bytes]) -> Settings:
    web = f"127.0.0.1:{free_port()}"
    return settings_factory(web_listen=web, public_url=f"http://{web}", dkim_selector=SELECTOR,
                            dkim_domain=DOMAIN, dkim_private_key_file=key_pair[0])


def _dns(public: bytes) -> Callable[..., bytes]:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return lookup


def test_acknowledgement_and_announcement_verify(
        running: GatewayServer, bulk: Gateway, settings: Settings,
        key_pair: tuple[Path, bytes], tmp_path: Path) -> None:
    send(settings.smtp_listen, make_mail(subject="Sync fails"))
    wait_delivered(settings, 1)
    body = tmp_path / "body.txt"
    body.write_text("Maintenance on Saturday.\n")
    result = run_gateway(settings, "announce", "--subject", "Maintenance", "--body-file",
                         str(body), "--audience", "team:globex")
    assert result.returncode == 0, result.stderr
    wait_delivered(settings, 3)
    for path in _files(settings):
        data = path.read_bytes()
        assert dkim.verify(data, dnsfunc=_dns(key_pair[1])), path
        signature = data.split(b"DKIM-Signature:", 1)[1].split(b"bh=", 1)[0]
        signed = signature.replace(b"\r\n", b"").replace(b" ", b"")
        if b"List-Unsubscribe:" in data:
            assert b"list-unsubscribe:list-unsubscribe-post" in signed
        # A changed subject no longer verifies
        tampered = data.replace(b"Subject: ", b"Subject: FWD ", 1)
        assert not dkim.verify(tampered, dnsfunc=_dns(key_pair[1]))
    with bulk.db.reading() as session:
        stored = list(session.scalars(select(OutboxItem.raw)))
    assert len(stored) == 3 and not any(b"DKIM-Signature" in raw for raw in stored)


