"""Our own DKIM check reads keys from a real name server (UDP), and one message's lookups
share one deadline: a name server that never answers costs a message ``dkim_dns_seconds``,
not five seconds a signature."""

from __future__ import annotations

import time
from email.message import EmailMessage

import dkim
import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.trust.dkim_dns import key_lookup
from gateway.trust.sender_auth import MAX_SIGNATURES, Trust, dkim_verdict
from tests.dns_server import dkim_key_pair, name_server


def signed(raw: bytes, key: bytes, selector: str = "mail", domain: str = "acme.example"
           ) -> bytes:
    signature: bytes = dkim.sign(raw, selector.encode(), domain.encode(), key,
                                 include_headers=[b"from", b"to", b"subject", b"message-id"])
    return signature + raw


def message(sender: str = "anna@acme.example", body: str = "Please try again.") -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, "support@support.example"
    mail["Subject"], mail["Message-ID"] = "Sync fails", "<x@acme.example>"
    mail.set_content(body)
    return mail.as_bytes().replace(b"\n", b"\r\n")


def test_a_key_published_on_a_name_server_verifies_and_a_missing_one_does_not_fail() -> None:
    key, record = dkim_key_pair()
    with name_server() as dns:
        dns.records["mail._domainkey.acme.example."] = record
        good = signed(message(), key)
        verdict = dkim_verdict(good, "anna@acme.example", key_lookup([dns.address], 5.0))
        assert verdict.level is Trust.VERIFIED, verdict.reason
        tampered = good.replace(b"Please try again.", b"Send me your password.")
        assert dkim_verdict(tampered, "anna@acme.example",
                            key_lookup([dns.address], 5.0)).level is Trust.FAILED
        unpublished = signed(message(), key, selector="old")  # NXDOMAIN: not checkable
        verdict = dkim_verdict(unpublished, "anna@acme.example", key_lookup([dns.address], 5.0))
        assert verdict.level is Trust.UNVERIFIED and "could not be checked" in verdict.reason
        assert dns.asked == ["mail._domainkey.acme.example."] * 2 + \
            ["old._domainkey.acme.example."]


def test_a_silent_name_server_costs_a_message_its_deadline_not_five_seconds_a_signature(
        ) -> None:
    key, _record = dkim_key_pair()
    raw = message()
    for index in range(MAX_SIGNATURES):  # each with its own selector: its own lookup
        raw = signed(raw, key, selector=f"s{index}")
    with name_server() as dns:
        dns.hold()
        started = time.monotonic()
        verdict = dkim_verdict(raw, "anna@acme.example", key_lookup([dns.address], 1.0))
        waited = time.monotonic() - started
    assert verdict.level is Trust.UNVERIFIED and "could not be checked" in verdict.reason
    assert dns.asked, "the name server was never asked"
    # dkimpy's own five seconds a lookup would make this 25 s; the deadline is 1 s in all.
    assert waited < 4.0, f"the lookups took {waited:.1f} s"


def test_name_servers_are_ip_addresses_with_an_optional_port() -> None:
    settings = Settings(dns_nameservers=["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53",
                                         "2001:db8::54"])
    assert len(settings.dns_nameservers) == 4
    for bad in ("resolver.example", "192.0.2.53:dns", "192.0.2.53:70000", "[2001:db8::53"):
        with pytest.raises((ConfigError, ValueError), match="dns_nameservers"):
            Settings(dns_nameservers=[bad])
