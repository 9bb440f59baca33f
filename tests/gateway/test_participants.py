"""``gateway/participants.py``: who may be copied on a ticket (never support's addresses,
agents, automatic senders or the requester), the limit, copying, taking off, and what the
ticket JSON shows of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import Participant, Ticket
from gateway.participants import (
    CC_LIMIT,
    FORMER_CC,
    cc_participants,
    cc_refusal,
    copy_on,
    is_cc,
    uncopy,
)
from gateway.runtime.app import Gateway
from gateway.views import participants_view
from tests.mail import make_mail
from tests.pipeline.build import processed

ANNA, BOB = "anna@acme.example", "bob@partner.example"
AGENTS = "agents@team.support.example"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(agents_address=AGENTS)


def _ticket(gw: Gateway) -> int:
    return processed(gw, make_mail(sender=ANNA, subject="Sync fails"))


@pytest.mark.parametrize(("address", "reason"), [
    ("support@support.example", "one of support's own addresses"),
    ("sales@support.example", "one of support's own addresses"),
    (AGENTS, "the support team's mailbox (agents_address)"),
    ("kenji@support.example", "one of support's own addresses"),
    ("mailer-daemon@partner.example", "an automatic sender's address"),
    ("no-reply@partner.example", "an automatic sender's address"),
    ("postmaster@partner.example", "an automatic sender's address"),
    ("bounces+123@partner.example", "an automatic sender's address"),
    (ANNA, "the ticket's requester"),
    ("not an address", "not an email address"),
    ("bob@localhost", "not an email address"),
])
def test_who_may_never_be_copied(gw: Gateway, address: str, reason: str) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        assert cc_refusal(session, gw.settings, ticket, address) == reason
        assert cc_refusal(session, gw.settings, ticket, BOB) is None


def test_an_agent_outside_the_support_domains_is_never_copied(
        gw: Gateway, settings_factory: Callable[..., Settings]) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        lena = "lena@support.example"
        with_other_domain = settings_factory(agents_address="")
        assert cc_refusal(session, with_other_domain, ticket, lena) == (
            "one of support's own addresses")
        session.add(Participant(ticket_number=number, email="freelancer@outsourced.example",
                                role="agent"))
        session.flush()
        assert cc_refusal(session, gw.settings, ticket, "freelancer@outsourced.example") == (
            "takes part in the ticket as an agent")


def test_copy_then_take_off_and_copy_again(gw: Gateway) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        done = copy_on(session, gw.settings, ticket, [BOB, "Bob@Partner.example",
                                                      "support@support.example"])
        assert [(c.address, c.added) for c in done] == [
            (BOB, True), ("support@support.example", False)]
        again = copy_on(session, gw.settings, ticket, [BOB])
        assert again[0].explanation == f"{BOB} is copied on the ticket already"
        assert is_cc(session, ticket, BOB)
        assert uncopy(session, ticket, BOB) and not uncopy(session, ticket, BOB)
        assert not is_cc(session, ticket, BOB) and cc_participants(session, ticket) == []
        row = session.scalars(select(Participant).where(Participant.email == BOB)).one()
        assert row.role == FORMER_CC
        assert copy_on(session, gw.settings, ticket, [BOB])[0].explanation == (
            f"{BOB} not copied: an agent took them off the ticket (only '#cc add' copies "
            "them again)")
        assert copy_on(session, gw.settings, ticket, [BOB], by_agent=True)[0].added
        assert [p.email for p in cc_participants(session, ticket)] == [BOB]
        assert session.scalars(select(Participant.id).where(
            Participant.email == BOB)).all() == [row.id]  # the same row, the same token


def test_no_more_than_the_limit_are_copied(gw: Gateway) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        many = [f"person{i}@partner.example" for i in range(CC_LIMIT + 2)]
        done = copy_on(session, gw.settings, ticket, many)
        assert sum(c.added for c in done) == CC_LIMIT
        assert done[-1].explanation == (f"{many[-1]} not copied: the ticket has {CC_LIMIT} "
                                        "people in Cc already")


def test_the_ticket_json_lists_the_participants_but_not_those_taken_off(gw: Gateway) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        copy_on(session, gw.settings, ticket, [BOB, "carla@partner.example"])
        uncopy(session, ticket, "carla@partner.example")
        session.refresh(ticket)
        assert participants_view(ticket) == [  # the agents' mailbox got the agents' notice
            {"email": ANNA, "role": "requester"}, {"email": AGENTS, "role": "agent"},
            {"email": BOB, "role": "cc"}]
