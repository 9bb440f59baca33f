"""Step ``authenticate``: the sender authority's one answer (``ctx.sender_trust``), the
reply token among the recipients, and the ``unverified sender`` flag on a claim the
evidence does not carry."""

from __future__ import annotations

from gateway.pipeline.steps import authenticate
from gateway.runtime.app import Gateway
from gateway.trust.sender_auth import UNVERIFIED_FLAG, Trust
from inbound.spool import HUB_SOURCE
from tests.mail import make_mail
from tests.pipeline.build import (
    AUTHSERV,
    context_before,
    origin_of,
    passed,
    processed,
    reply_address,
    trace_of,
)


def test_dmarc_pass_from_our_mta_verifies_the_sender(gw: Gateway) -> None:
    raw = make_mail(sender="max@acme.example", headers=passed("max@acme.example"))
    with context_before(gw, authenticate.name, raw) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_verified
        assert ctx.sender_trust.method == "authres"
        assert trace_of(ctx, authenticate.name) == [
            ("verified", f"verified (authres): {AUTHSERV}: dmarc=pass for acme.example")]
        assert ctx.flags == [] and ctx.token is None


def test_an_agents_address_without_evidence_is_flagged(gw: Gateway) -> None:
    with context_before(gw, authenticate.name, make_mail(sender="kenji@support.example")) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_trust.level == Trust.UNVERIFIED
        assert not ctx.sender_verified
        [flag] = ctx.flags
        assert flag.startswith(f"{UNVERIFIED_FLAG}: kenji@support.example claims to be a "
                               "support agent, but sender authentication did not vouch for it")
        assert ("flagged", flag) in trace_of(ctx, authenticate.name)


def test_a_failed_dmarc_is_failed_and_flagged_even_for_a_stranger(gw: Gateway) -> None:
    raw = make_mail(sender="someone@nowhere.example", headers={
        "Authentication-Results": f"{AUTHSERV}; dmarc=fail header.from=nowhere.example"})
    with context_before(gw, authenticate.name, raw) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_trust.failed
        [flag] = ctx.flags
        assert flag.startswith(f"{UNVERIFIED_FLAG}: someone@nowhere.example is not in the "
                               "directory, but sender authentication failed")


def test_a_stranger_without_evidence_is_unverified_and_not_flagged(gw: Gateway) -> None:
    with context_before(gw, authenticate.name,
                        make_mail(sender="someone@nowhere.example")) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_trust.level == Trust.UNVERIFIED
        assert ctx.flags == []
        assert trace_of(ctx, authenticate.name) == [
            ("unverified", f"unverified (authres): no Authentication-Results from {AUTHSERV}")]


def test_a_forged_header_below_ours_does_not_count(gw: Gateway) -> None:
    # the sender wrote a "pass" himself; our MTA's header (topmost) found nothing
    raw = make_mail(sender="anna@acme.example", headers={
        "Authentication-Results": f"{AUTHSERV}; dmarc=none header.from=acme.example",
        "X-Filler": "x"}).replace(
        b"X-Filler: x", f"Authentication-Results: {AUTHSERV}; dmarc=pass "
        "header.from=acme.example".encode())
    with context_before(gw, authenticate.name, raw) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and not ctx.sender_verified
        assert "1 lower header claiming" in ctx.sender_trust.reason


def test_the_reply_token_among_the_recipients_is_found(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    address = reply_address(gw, number, "anna@acme.example")
    raw = make_mail(to=address, subject="Re: Sync fails")
    with context_before(gw, authenticate.name, raw, rcpt_tos=[address]) as ctx:
        authenticate.run(ctx)
        assert ctx.token is not None and ctx.token.ticket_number == number
        assert not ctx.to_note_address


def test_the_note_address_is_recognised(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    processed(gw, make_mail(sender="kenji@support.example", subject="Re: Sync fails",
                            headers=passed("kenji@support.example"),
                            in_reply_to=origin_of(gw, number)))
    address = reply_address(gw, number, "kenji@support.example", note=True)
    raw = make_mail(sender="kenji@support.example", to=address, subject="Re: Sync fails")
    with context_before(gw, authenticate.name, raw, rcpt_tos=[address]) as ctx:
        authenticate.run(ctx)
        assert ctx.token is not None and ctx.token.ticket_number == number
        assert ctx.to_note_address



def test_the_hubs_own_message_for_its_person_is_verified(gw: Gateway) -> None:
    # Given a message the hub spooled for Anna's session, From Anna, no other evidence
    raw = make_mail(sender="anna@acme.example")
    with context_before(gw, authenticate.name, raw, source=HUB_SOURCE,
                        options={"hub": {"person": "anna@acme.example"}}) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_verified
        assert ctx.sender_trust.method == "hub" and ctx.flags == []


def test_a_hub_message_from_someone_else_is_not_verified(gw: Gateway) -> None:
    # Given a hub row for Max's session whose From names Anna (never written by the hub)
    raw = make_mail(sender="anna@acme.example")
    with context_before(gw, authenticate.name, raw, source=HUB_SOURCE,
                        options={"hub": {"person": "max@acme.example"}}) as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and not ctx.sender_verified
        assert ctx.sender_trust.method == "hub"
        [flag] = ctx.flags
        assert flag.startswith(f"{UNVERIFIED_FLAG}: anna@acme.example claims to be an admin")


def test_mail_naming_the_hub_in_its_headers_is_judged_as_mail(gw: Gateway) -> None:
    raw = make_mail(sender="anna@acme.example", headers={"X-Gateway-Source": "web"})
    with context_before(gw, authenticate.name, raw, source="smtp") as ctx:
        authenticate.run(ctx)
        assert ctx.sender_trust is not None and ctx.sender_trust.method != "hub"
        assert not ctx.sender_verified
