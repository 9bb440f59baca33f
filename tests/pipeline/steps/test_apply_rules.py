"""Step ``apply-rules``: the entitlement of a new ticket (tier, queue, due time and why);
premium terms only for a verified sender, no clock for imported history, a new SLA round
for a reopened ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.pipeline.context import PipelineOrderError
from gateway.pipeline.steps import apply_rules
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import context_before, origin_of, passed, processed, trace_of

ANNA, MAX, KENJI = "anna@acme.example", "max@acme.example", "kenji@support.example"


def test_a_verified_member_gets_the_teams_terms(gw: Gateway) -> None:
    raw = make_mail(sender=MAX, subject="Files: sync fails", headers=passed(MAX))
    with context_before(gw, apply_rules.name, raw) as ctx:
        apply_rules.run(ctx)
        terms = ctx.terms
        found = terms.entitlement
        assert (found.tier, found.product, found.queue, terms.issue_type) == (
            "enhanced", "files", "en", "sync")
        assert terms.due is not None
        assert terms.due - ctx.spool.received_at == timedelta(hours=1)
        assert "team acme has the enhanced add-on for files" in terms.explanation
        assert trace_of(ctx, apply_rules.name) == [
            ("issue-type", "issue type sync: mentions 'sync'"), ("set", terms.explanation)]


def test_an_unverified_member_gets_standard_terms(gw: Gateway) -> None:
    raw = make_mail(sender=MAX, subject="Files: sync fails")  # no authentication
    with context_before(gw, apply_rules.name, raw) as ctx:
        apply_rules.run(ctx)
        assert ctx.terms.entitlement.tier == "standard"
        assert ctx.terms.explanation.startswith(
            f"{MAX} is in the directory but not a verified sender: standard terms")


def test_a_mostly_japanese_request_is_served_in_japanese(gw: Gateway) -> None:
    raw = corpus_bytes("multilingual", "mikel-mail/japanese_iso_2022.eml")
    with context_before(gw, apply_rules.name, raw) as ctx:
        assert ctx.language == gw.settings.ack_language_default
        apply_rules.run(ctx)
        assert ctx.language == "ja"


def test_imported_history_starts_no_clock(gw: Gateway) -> None:
    raw = make_mail(sender=MAX, subject="Files: sync fails", headers=passed(MAX))
    with context_before(gw, apply_rules.name, raw, options={"history": True}) as ctx:
        apply_rules.run(ctx)
        assert ctx.terms.due is None
        assert ctx.terms.explanation.endswith(
            "imported history: no SLA clock is started")


def test_a_reopened_ticket_starts_a_new_sla_round(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    processed(gw, make_mail(sender=KENJI, subject="Re: Sync fails", body="#status solved\nDone.",
                            in_reply_to=origin_of(gw, number), headers=passed(KENJI)))
    raw = make_mail(subject="Re: Sync fails", body="It fails again.",
                    in_reply_to=origin_of(gw, number), headers=passed(ANNA))
    with context_before(gw, apply_rules.name, raw) as ctx:
        assert ctx.reopened
        apply_rules.run(ctx)
        with pytest.raises(PipelineOrderError):  # not a new ticket: no new terms
            _ = ctx.terms
        [restart] = [e for o, e in trace_of(ctx, apply_rules.name) if o == "restart"]
        assert restart.startswith("reopened at ") and ", SLA round 2: " in restart
        assert ctx.ticket is not None and ctx.ticket.entitlement.endswith(restart)


def test_a_plain_reply_changes_no_terms(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    raw = make_mail(subject="Re: Sync fails", body="Here are the logs.",
                    in_reply_to=origin_of(gw, number), headers=passed(ANNA))
    with context_before(gw, apply_rules.name, raw) as ctx:
        apply_rules.run(ctx)
        with pytest.raises(PipelineOrderError):
            _ = ctx.terms
        [(outcome, explanation)] = trace_of(ctx, apply_rules.name)
        assert outcome == "skip" and explanation.startswith(f"reply on ticket #{number}")


def test_a_forward_on_behalf_gets_the_original_senders_terms(gw: Gateway) -> None:
    body = ("For Max.\n\n---------- Forwarded message ---------\n"
            f"From: Max Member <{MAX}>\nSubject: Files: sync fails\n\nSync fails since Monday.")
    raw = make_mail(sender="kenji@support.example", subject="Fwd: Files: sync fails", body=body,
                    headers=passed("kenji@support.example"))
    with context_before(gw, apply_rules.name, raw) as ctx:
        apply_rules.run(ctx)
        assert (ctx.terms.entitlement.tier, ctx.terms.entitlement.product) == (
            "enhanced", "files")
        assert "team acme has the enhanced add-on for files" in ctx.terms.explanation
