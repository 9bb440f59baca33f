"""Step ``guard-loop``: our own mail coming back (X-Loop, our From address, a Message-ID
we sent) is ignored with the reason; anything else goes on."""

from __future__ import annotations

from sqlalchemy import select

from gateway.models import OutboxItem
from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import guard_loop
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import SENT_FOLDER, SUPPORT, context_before, processed, trace_of


def test_x_loop_naming_our_address_is_ignored(gw: Gateway) -> None:
    raw = make_mail(subject="Re: Sync fails", headers={"X-Loop": "Support@Support.example"})
    with context_before(gw, guard_loop.name, raw) as ctx:
        guard_loop.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason == f"loop: X-Loop names our own address {SUPPORT}"


def test_mail_from_our_own_address_is_ignored(gw: Gateway) -> None:
    raw = make_mail(sender=SUPPORT, subject="[#1] We received your request")
    with context_before(gw, guard_loop.name, raw, mail_from="") as ctx:
        guard_loop.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED, f"loop: the mail is from our own address {SUPPORT}")


def test_a_message_id_we_sent_is_ignored(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with gw.db.reading() as session:
        sent = session.scalars(select(OutboxItem.message_id)
                               .where(OutboxItem.ticket_number == number)).first()
    assert sent
    # our acknowledgement, sent back by a forwarding mail system under another From
    raw = make_mail(sender="relay@lists.example", message_id=f"<{sent}>", subject="Fwd")
    with context_before(gw, guard_loop.name, raw) as ctx:
        guard_loop.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED, f"loop: Message-ID {sent} is one we sent for ticket #{number}")


def test_a_copy_from_our_sent_folder_is_no_loop(gw: Gateway) -> None:
    raw = make_mail(sender=SUPPORT, to="anna@acme.example", subject="Re: [#1] Sync fails")
    with context_before(gw, guard_loop.name, raw, source="imap:support/Sent",
                        options=SENT_FOLDER) as ctx:
        guard_loop.run(ctx)
        assert not ctx.stopped
        assert trace_of(ctx, guard_loop.name) == [("miss", "not our own mail")]


def test_a_customers_mail_goes_on(gw: Gateway) -> None:
    with context_before(gw, guard_loop.name, make_mail()) as ctx:
        guard_loop.run(ctx)
        assert not ctx.stopped
        assert trace_of(ctx, guard_loop.name) == [("miss", "not our own mail")]
