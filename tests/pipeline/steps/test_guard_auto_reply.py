"""Step ``guard-auto-reply``: automatic mail is marked (``ctx.automatic``) so that nothing
answers it; out-of-office style replies become kind ``auto_reply``."""

from __future__ import annotations

from gateway.pipeline.steps import guard_auto_reply
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import context_before, trace_of


def test_an_out_of_office_reply_is_an_auto_reply(gw: Gateway) -> None:
    raw = corpus_bytes("autoreplies", "sisimai/rfc3834-01.eml")
    with context_before(gw, guard_auto_reply.name, raw) as ctx:
        guard_auto_reply.run(ctx)
        assert ctx.automatic is not None and ctx.automatic.kind == "auto_reply"
        assert ctx.kind == "auto_reply" and not ctx.stopped
        assert trace_of(ctx, guard_auto_reply.name) == [
            ("hit", "auto_reply: Auto-Submitted: auto-replied header")]


def test_a_read_receipt_is_kept_like_an_auto_reply(gw: Gateway) -> None:
    raw = corpus_bytes("autoreplies", "flanker/disposition-notification.eml")
    with context_before(gw, guard_auto_reply.name, raw) as ctx:
        guard_auto_reply.run(ctx)
        assert ctx.automatic is not None and ctx.automatic.kind == "read_receipt"
        assert ctx.kind == "auto_reply"


def test_mailing_list_mail_is_automatic_but_may_open_a_ticket(gw: Gateway) -> None:
    raw = corpus_bytes("threads", "notmuch-default/bar__baz__23.eml")
    with context_before(gw, guard_auto_reply.name, raw) as ctx:
        guard_auto_reply.run(ctx)
        assert ctx.automatic is not None and ctx.automatic.kind == "bulk"
        assert ctx.kind == "public"  # not a reply: it is never answered, yet may be a request
        assert trace_of(ctx, guard_auto_reply.name) == [
            ("hit", "bulk: List-Id header (mailing list)")]


def test_a_persons_mail_is_not_automatic(gw: Gateway) -> None:
    with context_before(gw, guard_auto_reply.name, make_mail()) as ctx:
        guard_auto_reply.run(ctx)
        assert ctx.automatic is None and ctx.kind == "public"
        assert trace_of(ctx, guard_auto_reply.name) == [("miss", "written by a person")]
