"""Step ``thread``: the reply token, then In-Reply-To/References, then a usable ``[#N]``
subject tag find the ticket; anything else opens a new one.  A reply that came before its
parent is joined by the parent; an automatic reply that belongs to nothing, and a
Message-ID already on the ticket, are ignored."""

from __future__ import annotations

import pytest

from gateway.pipeline.context import Disposition, PipelineOrderError
from gateway.pipeline.steps import thread
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import (
    context_before,
    origin_of,
    processed,
    reply_address,
    ticket_of,
    trace_of,
)

# A real mailing-list exchange (notmuch's test corpus): a patch and the reply to it.
PARENT = "notmuch-default/bar__baz__23.eml"
PARENT_ID = "20091118005829.GB25380@dottiness.seas.harvard.edu"  # as stored
REPLY = "notmuch-default/bar__baz__24.eml"


def test_a_reply_finds_its_ticket_by_in_reply_to(gw: Gateway) -> None:
    number = processed(gw, corpus_bytes("threads", PARENT))
    with context_before(gw, thread.name, corpus_bytes("threads", REPLY)) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert (ctx.threaded_by, ctx.new_ticket) == ("headers", False)
        assert trace_of(ctx, thread.name) == [
            ("hit", f"references Message-ID {PARENT_ID} of ticket #{number}")]


def test_a_parent_after_its_reply_joins_the_ticket_the_reply_opened(gw: Gateway) -> None:
    number = processed(gw, corpus_bytes("threads", REPLY))  # the reply came first
    with context_before(gw, thread.name, corpus_bytes("threads", PARENT)) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert ctx.threaded_by == "headers" and ctx.opens_conversation
        outcomes = [o for o, _ in trace_of(ctx, thread.name)]
        assert outcomes[0] == "hit" and "adopted" in outcomes
        assert ctx.ticket.origin_message_id == PARENT_ID


def test_the_reply_token_comes_first(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    other = processed(gw, make_mail(subject="Printer"))
    address = reply_address(gw, number, "anna@acme.example")
    # headers name the other ticket: the keyed token wins
    raw = make_mail(to=address, subject="Re: Sync fails", in_reply_to=origin_of(gw, other))
    with context_before(gw, thread.name, raw, rcpt_tos=[address]) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert ctx.threaded_by == "reply_token"
        assert trace_of(ctx, thread.name) == [
            ("hit", f"reply token in {address} names ticket #{number}")]


def test_a_forged_token_is_ignored(gw: Gateway) -> None:
    processed(gw, make_mail(subject="Sync fails"))
    address = "support+1-1-aaaaaaaaaaaaaaaa@support.example"
    with context_before(gw, thread.name, make_mail(to=address, subject="Hello"),
                        rcpt_tos=[address]) as ctx:
        thread.run(ctx)
        assert ctx.new_ticket
        assert trace_of(ctx, thread.name)[0] == (
            "miss", f"reply token in {address} is not valid (ignored)")


def test_the_subject_tag_counts_for_the_requester(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, thread.name, make_mail(subject=f"Re: [#{number}] Sync fails")) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert ctx.threaded_by == "subject_tag"
        assert trace_of(ctx, thread.name) == [
            ("hit", f"subject tag [#{number}]: the sender takes part in it")]


def test_the_subject_tag_counts_for_a_colleague_of_the_requester(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = make_mail(sender="max@acme.example", subject=f"[#{number}] Sync fails")
    with context_before(gw, thread.name, raw) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert trace_of(ctx, thread.name) == [
            ("hit", f"subject tag [#{number}]: the sender is a colleague of the requester "
             "(team acme)")]


def test_a_strangers_subject_tag_opens_a_new_ticket(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = make_mail(sender="giulia@globex.example", subject=f"[#{number}] Sync fails")
    with context_before(gw, thread.name, raw) as ctx:
        thread.run(ctx)
        assert ctx.new_ticket and ctx.threaded_by == "new_ticket"
        assert [o for o, _ in trace_of(ctx, thread.name)] == ["miss", "new"]
        assert trace_of(ctx, thread.name)[0][1].startswith(
            f"subject tag [#{number}] ignored: the sender neither takes part")


def test_a_new_request_opens_a_new_ticket(gw: Gateway) -> None:
    with context_before(gw, thread.name, make_mail(subject="Printer")) as ctx:
        thread.run(ctx)
        assert (ctx.new_ticket, ctx.threaded_by) == (True, "new_ticket")
        with pytest.raises(PipelineOrderError):  # a new ticket exists only after record
            _ = ctx.ticket
        assert trace_of(ctx, thread.name) == [
            ("new", "no reply token, known Message-ID or usable subject tag: new ticket")]


def test_an_auto_reply_that_belongs_to_nothing_is_ignored(gw: Gateway) -> None:
    raw = corpus_bytes("autoreplies", "sisimai/rfc3834-01.eml")
    with context_before(gw, thread.name, raw) as ctx:
        thread.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED, "automatic reply that belongs to no ticket of ours: "
            "Auto-Submitted: auto-replied header")


def test_a_message_id_already_on_the_ticket_is_ignored(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    origin = origin_of(gw, number)
    processed(gw, make_mail(subject="Re: Sync fails", in_reply_to=origin,
                            message_id="<again@acme.example>"))
    # the same message once more, through a list that rewrote From (DMARC mitigation)
    copy = make_mail(sender="team@lists.acme.example", subject="Re: Sync fails",
                     in_reply_to=origin, message_id="<again@acme.example>")
    with context_before(gw, thread.name, copy) as ctx:
        thread.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED,
            f"duplicate: Message-ID again@acme.example is already on ticket #{number}")
    assert ticket_of(gw, number).number == number
