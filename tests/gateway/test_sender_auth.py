"""Sender authentication: which Authentication-Results count, how they are read (fail
closed, values as received), our own DKIM check, and the token mode's limits."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

import dkim
import pytest

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.trust.sender_auth import (
    MAX_SIGNATURES,
    MessageFacts,
    TokenFacts,
    Trust,
    aligned,
    authres_verdict,
    dkim_verdict,
    sender_trust,
)
from inbound.parsing.analysis import analyze
from tests.dns_server import dkim_key_pair

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


SIGNED_FIELDS = [b"from", b"to", b"subject", b"message-id"]


def _unsigned(from_address: str, body: str = "Please try again.") -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = from_address, "support@support.example"
    message["Subject"], message["Message-ID"] = "Re: [#1] VPN", "<x@acme.example>"
    message.set_content(body)
    return message.as_bytes().replace(b"\n", b"\r\n")


def _signed(domain: str, from_address: str, key: bytes) -> bytes:
    raw = _unsigned(from_address)
    signature: bytes = dkim.sign(raw, b"mail", domain.encode(), key,
                                 include_headers=SIGNED_FIELDS)
    return signature + raw


def _acme_keys(record: bytes) -> Callable[..., bytes | None]:
    """The key lookup of ``dkim_verdict``: acme.example's "mail" key (the one fake: no DNS
    here; tests/gateway/test_dkim_dns.py asks a real name server)."""
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"mail._domainkey.acme.example." else None
    return dns


def test_our_own_dkim_check_needs_a_valid_aligned_signature() -> None:
    key, record = dkim_key_pair()
    dns = _acme_keys(record)
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


# -- issue 12: one authority, fail closed, values as received --------------------------------

FORGED = f"{MTA}; dkim=pass header.d=support.example; dmarc=pass header.from=support.example"


@pytest.mark.parametrize("top", [
    f"{MTA}; dmarc=fail header.from=support.example; spf=pass smtp.mailfrom",  # no value
    f"{MTA}; dkim=pass header.d=support.example (unclosed comment",
    f"{MTA}; dkim pass header.d=support.example",                               # no "="
    f"{MTA}; dmarc=pass header.from=\"support.example",                         # open quote
])
def test_an_unreadable_topmost_header_of_ours_is_unverified_whatever_lies_below(
        top: str) -> None:
    verdict = authres_verdict([top, FORGED], MTA, "kenji@support.example")
    assert verdict.level is Trust.UNVERIFIED and "unreadable" in verdict.reason


def test_an_unreadable_header_above_ours_stops_the_search() -> None:
    verdict = authres_verdict(["(no id at all", FORGED], MTA, "kenji@support.example")
    assert verdict.level is Trust.UNVERIFIED


@pytest.mark.parametrize("results", [
    "spf=none smtp.mailfrom=<> smtp.helo=[192.0.2.7]; dmarc=pass header.from=acme.example",
    "spf=pass smtp.mailfrom=anna@äcme.example; dmarc=pass header.from=acme.example",
    "dkim=pass (1024-bit key; unprotected) header.d=acme.example header.s=mail; "
    "spf=pass smtp.mailfrom=anna@acme.example",
    "dmarc=pass (p=reject dis=none) header.from=\"acme.example\"",
    "dkim/1=pass header.i=@acme.example;",                         # version, trailing ";"
    "dmarc=pass action=none header.from=acme.example; compauth=pass reason=100",
])
def test_legal_values_are_read_and_an_aligned_pass_verifies(results: str) -> None:
    for value in (f"{MTA}; {results}", f"{MTA} 1; {results}"):
        verdict = authres_verdict([value], MTA, "anna@acme.example")
        assert verdict.level is Trust.VERIFIED, verdict.reason


@pytest.mark.parametrize("results", [
    "dmarc==?utf-8?q?pass?= header.from=acme.example",     # RFC 2047 is not a value here
    "dmarc=pass header.from==?utf-8?q?acme.example?=",
    "dmarc=?utf-8?q?pass?= header.from=acme.example",
    "dmarc=pass",                                          # about no domain
    "dmarc=pass header.from=acme.example.evil.example",
    "dkim=pass header.d=example",                          # a public suffix aligns nothing
])
def test_encoded_or_unaligned_passes_verify_nothing(results: str) -> None:
    verdict = authres_verdict([f"{MTA}; {results}"], MTA, "anna@acme.example")
    assert not verdict.verified


@pytest.mark.parametrize(("results", "level"), [
    ("dmarc=fail header.from=acme.example", Trust.FAILED),
    ("dmarc=fail", Trust.FAILED),
    ("dkim=pass header.d=acme.example; dmarc=fail header.from=acme.example", Trust.FAILED),
    ("dkim=fail header.d=acme.example", Trust.FAILED),
    ("dkim=fail header.d=acme.example; dkim=pass header.d=acme.example", Trust.VERIFIED),
    ("dkim=fail header.d=evil.example", Trust.UNVERIFIED),   # not about our From domain
    ("dmarc=fail header.from=evil.example", Trust.UNVERIFIED),
    ("none", Trust.UNVERIFIED),
])
def test_failed_means_the_evidence_positively_fails_for_the_from_domain(
        results: str, level: Trust) -> None:
    assert authres_verdict([f"{MTA}; {results}"], MTA, "anna@acme.example").level is level


def test_the_analysis_keeps_authentication_results_as_received() -> None:
    raw = (b"Authentication-Results: mx.support.example;\r\n dmarc==?utf-8?q?pass?=\r\n"
           b"\theader.from=acme.example\r\nFrom: anna@acme.example\r\nSubject: x\r\n\r\nhi\r\n")
    (value,) = analyze(raw).authentication_results
    assert value == "mx.support.example; dmarc==?utf-8?q?pass?= header.from=acme.example"


def _facts(**values: object) -> MessageFacts:
    base: dict[str, object] = {"from_address": "anna@acme.example", "method": "token"}
    base.update(values)
    return MessageFacts(**base)  # type: ignore[arg-type]


def test_token_mode_vouches_only_for_the_participant_the_token_was_issued_to() -> None:
    anna = TokenFacts(7, "anna@acme.example", "requester")
    assert sender_trust(_facts(token=anna)).verified
    assert not sender_trust(_facts(token=anna, from_address="kenji@support.example",
                                   sender_is_agent=True)).verified
    assert not sender_trust(_facts(token=None)).verified
    assert not sender_trust(_facts(token=TokenFacts(7, None))).verified
    agents = TokenFacts(7, "agents@support.example", "agent")
    kenji = _facts(token=agents, from_address="kenji@support.example",
                   agents_address="agents@support.example")
    assert not sender_trust(kenji).verified  # not a directory agent
    assert sender_trust(MessageFacts(**{**kenji.__dict__, "sender_is_agent": True})).verified


def test_the_authority_trusts_our_sent_folder_and_verifies_no_history() -> None:
    sent = sender_trust(_facts(method="authres", sent_folder_of="shared"))
    assert (sent.level, sent.method) == (Trust.VERIFIED, "sent_folder")
    history = sender_trust(_facts(method="authres", history=True))
    assert (history.level, history.method) == (Trust.UNVERIFIED, "history")


def test_dkim_mode_tries_only_aligned_signatures_and_at_most_a_few() -> None:
    key, record = dkim_key_pair()
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:  # the one fake: no DNS here
        asked.append(name)
        return record if name.endswith(b"._domainkey.acme.example.") else None

    good = _signed("acme.example", "anna@acme.example", key)
    raw = good
    for index in range(MAX_SIGNATURES + 3):  # signatures of other domains: never tried
        raw = dkim.sign(raw, f"s{index}".encode(), b"evil.example", key,
                        include_headers=[b"from"]) + raw
    assert dkim_verdict(raw, "anna@acme.example", dnsfunc=dns).verified
    assert asked == [b"mail._domainkey.acme.example."]

    asked.clear()
    tampered = good.replace(b"Please try again.", b"Send me your password.")
    for _index in range(MAX_SIGNATURES + 3):  # many aligned signatures: a few are tried
        tampered = dkim.sign(tampered, b"mail", b"acme.example", key,
                             include_headers=[b"from"]) + tampered
    tampered = tampered.replace(b"Send me your password.", b"Send me your PIN now.")
    verdict = dkim_verdict(tampered, "anna@acme.example", dnsfunc=dns)
    assert verdict.level is Trust.FAILED and len(asked) == MAX_SIGNATURES

    unknown_key = _signed("acme.example", "anna@acme.example", key)
    verdict = dkim_verdict(unknown_key, "anna@acme.example", dnsfunc=lambda *a, **k: None)
    assert verdict.level is Trust.UNVERIFIED  # no key found: nothing proves a forgery


@pytest.mark.parametrize("method", ["authres", "dkim", "token"])
def test_the_hub_vouches_for_its_own_person_whatever_the_method(method: str) -> None:
    # A dmarc=fail header in a hub message changes nothing: the hub wrote the headers
    failing = ("mx.example; dmarc=fail header.from=acme.example",)
    mine = sender_trust(MessageFacts(from_address="Anna@acme.example", method=method,
                                     authserv_id="mx.example", hub_person="anna@acme.example",
                                     authentication_results=failing))
    assert mine.verified and mine.method == "hub"
    other = sender_trust(MessageFacts(from_address="max@acme.example", method=method,
                                      authserv_id="mx.example", hub_person="anna@acme.example"))
    assert not other.verified and other.method == "hub"


def test_a_field_added_above_a_signed_one_makes_the_pass_vouch_for_nothing() -> None:
    """A customer's genuinely signed mail with the forger's Subject added on top (to thread
    it onto another ticket, say): DKIM checks the bottom-most instance, the signed one,
    and we would read the top one."""
    key, record = dkim_key_pair()
    dns = _acme_keys(record)
    raw = _unsigned("anna@acme.example", "Thanks, that solved it: please close the ticket.")
    signer = dkim.DKIM(raw)
    signer.frozen_sign = set()  # signs each field once, as many signers do (no oversigning)
    genuine = signer.sign(b"mail", b"acme.example", key, include_headers=SIGNED_FIELDS) + raw
    forged = b"Subject: Re: [#2] Server migration\r\n" + genuine
    analysis = analyze(forged)
    assert analysis.parsed.subject == "Re: [#2] Server migration"
    assert analysis.repeated_headers == ("subject",)
    facts = _facts(method="dkim", dkim=dkim_verdict(forged, "anna@acme.example", dnsfunc=dns),
                   repeated_headers=analysis.repeated_headers)
    assert facts.dkim is not None and facts.dkim.verified  # the signature itself holds …
    verdict = sender_trust(facts)
    assert verdict.level is Trust.UNVERIFIED and "more than one subject header" in verdict.reason
    # … and the same in authres mode, whatever instance the upstream checker read.
    passed = (f"{MTA}; dmarc=pass header.from=acme.example",)
    assert sender_trust(_facts(method="authres", authserv_id=MTA,
                               authentication_results=passed)).verified
    assert not sender_trust(_facts(method="authres", authserv_id=MTA,
                                   authentication_results=passed,
                                   repeated_headers=("from",))).verified
    # Fields a message may repeat (Received, Comments) leave the verdict alone.
    assert analyze(b"Received: a\r\nReceived: b\r\nComments: x\r\nComments: y\r\n" + genuine
                   ).repeated_headers == ()


def test_a_signature_of_part_of_the_body_is_not_tried() -> None:
    """``l=``: the signer vouches for the first bytes only; a forger appends his commands."""
    key, record = dkim_key_pair()
    dns = _acme_keys(record)
    raw = _unsigned("anna@acme.example")
    partial = dkim.sign(raw, b"mail", b"acme.example", key, length=True,
                        include_headers=SIGNED_FIELDS) + raw
    assert dkim.verify(partial + b"#status closed\r\n", dnsfunc=dns)  # dkimpy says pass
    verdict = dkim_verdict(partial + b"#status closed\r\n", "anna@acme.example", dnsfunc=dns)
    assert verdict.level is Trust.UNVERIFIED and "l=" in verdict.reason
    whole = _signed("acme.example", "anna@acme.example", key)
    assert dkim_verdict(whole, "anna@acme.example", dnsfunc=dns).verified  # control
