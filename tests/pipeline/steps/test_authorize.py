"""Step ``authorize``: the role the sender speaks in on the ticket (requester, agent,
colleague) and the refusals of MISSION §2; an unverified claim gets no privilege."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from gateway.models import Ticket
from gateway.pipeline.steps import authorize
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import context_before, origin_of, passed, processed, trace_of

ANNA, MAX, KENJI = "anna@acme.example", "max@acme.example", "kenji@support.example"


def _reply(gw: Gateway, number: int, sender: str, *, verified: bool = True) -> bytes:
    return make_mail(sender=sender, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     headers=passed(sender) if verified else None)


def test_the_requester_replies_as_requester(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, authorize.name, _reply(gw, number, ANNA)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("requester", "")
        assert trace_of(ctx, authorize.name) == [
            ("requester", f"{ANNA} opened ticket #{number}")]


def test_a_verified_agent_replies_as_agent(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, authorize.name, _reply(gw, number, KENJI)) as ctx:
        authorize.run(ctx)
        assert ctx.role == "agent"
        assert trace_of(ctx, authorize.name) == [
            ("agent", f"{KENJI} is a verified support agent")]


def test_an_unverified_agent_address_gets_no_privilege(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, authorize.name, _reply(gw, number, KENJI, verified=False)) as ctx:
        authorize.run(ctx)
        assert ctx.role == "requester" and ctx.refusal == ""
        [(outcome, explanation)] = trace_of(ctx, authorize.name)
        assert outcome == "unverified"
        assert explanation.startswith(f"{KENJI} claims to be support agent {KENJI} but")


def test_a_verified_team_admin_replies_as_colleague(gw: Gateway) -> None:
    number = processed(gw, make_mail(sender=MAX, subject="Sync fails", headers=passed(MAX)))
    with context_before(gw, authorize.name, _reply(gw, number, ANNA)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("colleague", "")
        assert trace_of(ctx, authorize.name) == [
            ("colleague", f"{ANNA}, admin of team acme, replies on a ticket of {MAX}")]


def test_a_team_member_is_refused_on_a_colleagues_ticket(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    with context_before(gw, authorize.name, _reply(gw, number, MAX)) as ctx:
        authorize.run(ctx)
        assert ctx.refusal == "not_admin"
        assert trace_of(ctx, authorize.name)[0][0] == "refused"


def test_an_admin_is_refused_on_a_ticket_from_before_the_cutoff(gw: Gateway) -> None:
    number = processed(gw, make_mail(sender=MAX, subject="Sync fails", headers=passed(MAX)))
    old = datetime(2024, 1, 5, 9, 0, tzinfo=UTC)
    with gw.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(
            created_at=old, updated_at=old))
    with context_before(gw, authorize.name, _reply(gw, number, ANNA)) as ctx:
        authorize.run(ctx)
        assert ctx.refusal == "before_cutoff" and ctx.role == "requester"


def test_an_unverified_admin_is_no_colleague(gw: Gateway) -> None:
    number = processed(gw, make_mail(sender=MAX, subject="Sync fails", headers=passed(MAX)))
    with context_before(gw, authorize.name, _reply(gw, number, ANNA, verified=False)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("requester", "")
        assert trace_of(ctx, authorize.name)[0][0] == "unverified"


def test_an_outsider_on_the_ticket_is_flagged(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    giulia = "giulia@globex.example"
    with context_before(gw, authorize.name, _reply(gw, number, giulia)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("requester", "")
        assert ctx.flags == [f"{giulia} takes no part in ticket #{number} and is not on the "
                             "requester's team"]


def test_a_verified_agent_opens_a_ticket_as_agent(gw: Gateway) -> None:
    with context_before(gw, authorize.name, make_mail(
            sender=KENJI, to=ANNA, subject="Your licence", headers=passed(KENJI))) as ctx:
        authorize.run(ctx)
        assert ctx.new_ticket and ctx.role == "agent"
        assert trace_of(ctx, authorize.name) == [
            ("agent", f"{KENJI} opens a ticket as agent")]


def test_imported_history_takes_the_role_from_the_directory(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = _reply(gw, number, KENJI, verified=False)
    with context_before(gw, authorize.name, raw, options={"history": True}) as ctx:
        authorize.run(ctx)
        assert ctx.role == "agent"
        assert trace_of(ctx, authorize.name) == [
            ("agent", "imported history: role from the directory, nothing is sent")]


# -- people copied on the ticket (Cc participants) ---------------------------------------

BOB = "bob@partner.example"


def _copied(gw: Gateway, *cc: str) -> int:
    """Anna's verified request with ``cc`` in Cc: they are copied on the ticket."""
    return processed(gw, make_mail(subject="Sync fails",
                                   headers={**passed(ANNA), "Cc": ", ".join(cc)}))


def test_a_person_copied_on_the_ticket_replies_as_cc(gw: Gateway) -> None:
    number = _copied(gw, BOB)
    with context_before(gw, authorize.name, _reply(gw, number, BOB)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal, ctx.flags) == ("cc", "", [])
        assert trace_of(ctx, authorize.name) == [
            ("cc", f"{BOB} is copied on ticket #{number}: a public reply, no privilege")]


def test_a_copied_team_member_is_cc_not_refused_and_a_copied_admin_stays_colleague(
        gw: Gateway) -> None:
    number = processed(gw, make_mail(sender="olga@acme.example", subject="Sync fails",
                                     headers={**passed("olga@acme.example"),
                                              "Cc": f"{MAX}, {ANNA}"}))
    with context_before(gw, authorize.name, _reply(gw, number, MAX)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("cc", "")
    with context_before(gw, authorize.name, _reply(gw, number, ANNA)) as ctx:
        authorize.run(ctx)
        assert (ctx.role, ctx.refusal) == ("colleague", "")


def test_someone_taken_off_the_cc_takes_no_part_again(gw: Gateway) -> None:
    number = _copied(gw, BOB)
    processed(gw, make_mail(sender=KENJI, subject="Re: Sync fails", body=f"#cc remove {BOB}",
                            in_reply_to=origin_of(gw, number), headers=passed(KENJI)))
    for _ in range(2):  # flagged every time: their own reply does not put them back
        with context_before(gw, authorize.name, _reply(gw, number, BOB)) as ctx:
            authorize.run(ctx)
            assert ctx.role == "requester"
            assert ctx.flags == [f"{BOB} takes no part in ticket #{number} and is not on the "
                                 "requester's team"]
        processed(gw, _reply(gw, number, BOB))
