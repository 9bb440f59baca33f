"""Step ``ticket-list``: a new mail starting with ``#tickets`` is answered with the sender's
ticket list, only when the sender is verified and the answer gate allows it; it opens no
ticket either way."""

from __future__ import annotations

from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import ticket_list
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import context_before, origin_of, outbox_of, passed, processed

ANNA = "anna@acme.example"


def _command(body: str = "#tickets", subject: str = "my tickets", in_reply_to: str | None = None
             ) -> bytes:
    return make_mail(subject=subject, body=body, in_reply_to=in_reply_to, headers=passed(ANNA))


def test_a_verified_sender_gets_the_list(gw: Gateway) -> None:
    processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, ticket_list.name, _command()) as ctx:
        ticket_list.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED, f"command: ticket list (1 found) sent to {ANNA}")
        ids = list(ctx.outbox_ids)
    assert outbox_of(gw, ids) == [("ticket_list", ANNA)]


def test_an_unverified_sender_gets_no_answer(gw: Gateway) -> None:
    raw = make_mail(subject="my tickets", body="#tickets all")  # no authentication
    with context_before(gw, ticket_list.name, raw) as ctx:
        ticket_list.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.startswith(f"command: ticket list not sent: {ANNA} is not a "
                                     "verified sender")
        assert ctx.reason.endswith("a ticket list is private")
        assert ctx.outbox_ids == []


def test_the_answer_gate_can_refuse_it(gw: Gateway) -> None:
    # the hourly cap of automatic answers to one mailbox is reached (by her verified mail:
    # answers to mail forged in her name do not count against her)
    for n in range(gw.settings.ack_limit_per_hour):
        processed(gw, make_mail(subject=f"Request {n}", body=f"Question number {n} here.",
                                headers=passed(ANNA)))
    with context_before(gw, ticket_list.name, _command()) as ctx:
        ticket_list.run(ctx)
        assert ctx.disposition == Disposition.IGNORED and ctx.outbox_ids == []
        assert ctx.reason == (f"command: ticket list not sent: mailbox {ANNA} already got "
                              f"{gw.settings.ack_limit_per_hour} automatic answers this hour "
                              "(loop brake)")


def test_hash_tickets_in_a_reply_on_a_ticket_is_just_text(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = _command(subject="Re: Sync fails", in_reply_to=origin_of(gw, number))
    with context_before(gw, ticket_list.name, raw) as ctx:
        ticket_list.run(ctx)
        assert not ctx.stopped and ctx.outbox_ids == []


def test_an_ordinary_request_is_no_command(gw: Gateway) -> None:
    with context_before(gw, ticket_list.name, _command(body="#tickets are lost, help")) as ctx:
        ticket_list.run(ctx)
        assert not ctx.stopped and ctx.outbox_ids == []


def test_automatic_mail_is_never_answered(gw: Gateway) -> None:
    raw = make_mail(subject="my tickets", body="#tickets", headers={
        **passed(ANNA), "Auto-Submitted": "auto-generated"})
    with context_before(gw, ticket_list.name, raw) as ctx:
        ticket_list.run(ctx)
        assert ctx.disposition == Disposition.IGNORED and ctx.outbox_ids == []
        assert ctx.reason.startswith("command: ticket list not sent: automatic mail")
