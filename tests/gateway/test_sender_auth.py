"""Sender authentication: which Authentication-Results count, and our own DKIM check."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.sender_auth import aligned, authres_verdict, dkim_verdict

MTA = "mx.support.example"


def test_only_the_topmost_header_of_our_mta_counts() -> None:
    real = f"{MTA}; dmarc=fail header.from=support.example"
    forged = f"{MTA}; dmarc=pass header.from=support.example"
    verdict = authres_verdict([real, forged], MTA, "kenji@support.example")
    assert not verdict.verified and "1 lower header" in verdict.explanation
    assert authres_verdict([forged, real], MTA, "kenji@support.example").verified


def test_headers_of_other_servers_are_ignored() -> None:
    other = "mx.evil.example; dmarc=pass header.from=support.example"
    assert not authres_verdict([other], MTA, "kenji@support.example").verified
    ours_after_other = [other, f"{MTA}; dkim=pass header.d=support.example"]
    assert authres_verdict(ours_after_other, MTA, "kenji@support.example").verified


@pytest.mark.parametrize(("results", "verified"), [
    ("dkim=pass header.d=acme.example", True),
    ("dkim=pass header.d=mail.acme.example", False),  # a subdomain cannot speak for its parent
    ("dkim=pass header.i=@acme.example", True),
    ("dkim=pass header.d=evil.example", False),
    ("dkim=fail header.d=acme.example", False),
    ("dmarc=pass header.from=acme.example", True),
    ("dmarc=pass header.from=evil.example", False),
    ("spf=pass smtp.mailfrom=acme.example", False),  # SPF says nothing about From
    ("none", False),
])
def test_a_pass_must_align_with_the_from_domain(results: str, verified: bool) -> None:
    assert authres_verdict([f"{MTA}; {results}"], MTA, "anna@acme.example").verified is verified


def test_garbage_headers_verify_nothing() -> None:
    assert not authres_verdict([";;;", "", "\x00"], MTA, "anna@acme.example").verified


def test_alignment_is_relaxed_but_never_to_public_suffixes() -> None:
    assert aligned("acme.example", "sub.acme.example")
    assert not aligned("example", "acme.example")
    assert not aligned("cme.example", "acme.example")


def _signed(domain: str, from_address: str, key: bytes) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = from_address, "support@support.example"
    message["Subject"], message["Message-ID"] = "Re: [#1] VPN", "<x@acme.example>"
    message.set_content("Please try again.")
    raw = message.as_bytes().replace(b"\n", b"\r\n")
    signature = dkim.sign(raw, b"mail", domain.encode(), key,
                          include_headers=[b"from", b"to", b"subject", b"message-id"])
    return signature + raw


def test_our_own_dkim_check_needs_a_valid_aligned_signature() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:  # the one fake: no DNS here
        return record if name == b"mail._domainkey.acme.example." else None

    good = _signed("acme.example", "anna@acme.example", key)
    assert dkim_verdict(good, "anna@acme.example", dnsfunc=dns).verified
    # Signed by acme.example but claiming another From domain: not aligned.
    assert not dkim_verdict(_signed("acme.example", "kenji@support.example", key),
                            "kenji@support.example", dnsfunc=dns).verified
    # Tampered after signing.
    tampered = good.replace(b"Please try again.", b"Send me your password.")
    assert not dkim_verdict(tampered, "anna@acme.example", dnsfunc=dns).verified
    assert not dkim_verdict(b"From: a@b.example\r\n\r\nhi", "a@b.example", dnsfunc=dns).verified


def test_authres_mode_needs_the_upstream_authserv_id() -> None:
    with pytest.raises(ConfigError, match="authserv_id"):
        load_settings(None, sender_authentication="authres")
    assert Settings(sender_authentication="authres", authserv_id=" MX.Support.Example ") \
        .authserv_id == MTA
