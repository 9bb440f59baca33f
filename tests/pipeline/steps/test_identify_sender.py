"""Step ``identify-sender``: the From address is looked up in the directory (person with
team, agent, or unknown) and the language follows; no address at all is quarantined."""

from __future__ import annotations

import pytest

from gateway.pipeline.context import Disposition, PipelineOrderError
from gateway.pipeline.steps import identify_sender
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import context_before, trace_of

NO_FROM = (b"To: support@support.example\nSubject: Who am I\n"
           b"Message-ID: <no-from@client.example>\n\nNo From header here.\n")


def test_a_team_member_is_found_with_team_and_language(gw: Gateway) -> None:
    raw = make_mail(sender="Max@Acme.example", sender_name="Max Member")
    with context_before(gw, identify_sender.name, raw) as ctx:
        identify_sender.run(ctx)
        assert ctx.sender is not None and ctx.sender.kind == "person"
        assert (ctx.sender.email, ctx.sender.name) == ("max@acme.example", "Max Member")
        assert ctx.sender.team is not None and ctx.sender.team.id == "acme"
        assert ctx.language == "de"
        assert trace_of(ctx, identify_sender.name) == [
            ("person", "max@acme.example is a person, team acme")]


def test_an_agent_is_found(gw: Gateway) -> None:
    with context_before(gw, identify_sender.name,
                        make_mail(sender="kenji@support.example")) as ctx:
        identify_sender.run(ctx)
        assert ctx.sender is not None and ctx.sender.kind == "agent"
        assert ctx.sender.agent is not None and ctx.sender.team is None
        assert trace_of(ctx, identify_sender.name) == [
            ("agent", "kenji@support.example is an agent")]


def test_a_stranger_is_unknown_and_gets_the_default_language(gw: Gateway) -> None:
    with context_before(gw, identify_sender.name,
                        make_mail(sender="someone@nowhere.example")) as ctx:
        identify_sender.run(ctx)
        assert ctx.sender is not None and ctx.sender.kind == "unknown"
        assert ctx.language == gw.settings.ack_language_default
        [(outcome, explanation)] = trace_of(ctx, identify_sender.name)
        assert outcome == "unknown" and explanation.startswith("someone@nowhere.example is")


def test_without_from_the_envelope_sender_is_used(gw: Gateway) -> None:
    with context_before(gw, identify_sender.name, NO_FROM,
                        mail_from="<Giulia@Globex.example>") as ctx:
        identify_sender.run(ctx)
        assert ctx.sender is not None and ctx.sender.email == "giulia@globex.example"
        assert ctx.sender.kind == "person" and ctx.language == "it"


def test_no_sender_address_at_all_is_quarantined(gw: Gateway) -> None:
    with context_before(gw, identify_sender.name, NO_FROM, mail_from="") as ctx:
        identify_sender.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.QUARANTINED, "no sender address in From or envelope")
        with pytest.raises(PipelineOrderError):  # no sender was set
            _ = ctx.sender
