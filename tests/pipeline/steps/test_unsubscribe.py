"""Step ``unsubscribe``: mail to the List-Unsubscribe mailto address records the
unsubscribe its token names, and ends ignored unless it was also addressed to support."""

from __future__ import annotations

from sqlalchemy import select

from gateway.bulk.unsubscribe import issue_token
from gateway.models import Unsubscribe
from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import unsubscribe
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import SUPPORT, context_before, trace_of


def _token(gw: Gateway, email: str) -> str:
    with gw.db.transaction() as session:
        return issue_token(session, email, "quarterly", days=30)


def _unsubscribed(gw: Gateway) -> list[tuple[str, str, str]]:
    with gw.db.reading() as session:
        return [(u.email, u.list_name, u.source) for u in session.scalars(select(Unsubscribe))]


def test_the_token_in_the_address_unsubscribes_its_recipient(gw: Gateway) -> None:
    address = f"unsubscribe+{_token(gw, 'max@acme.example')}@support.example"
    # Anybody may send it (a forwarded mail): the token, not From, names who leaves.
    raw = make_mail(sender="max.private@mail.example", to=address, subject="unsubscribe")
    with context_before(gw, unsubscribe.name, raw, rcpt_tos=[address]) as ctx:
        unsubscribe.run(ctx)
        assert (ctx.disposition, ctx.reason) == (Disposition.IGNORED, "unsubscribe request")
        assert trace_of(ctx, unsubscribe.name) == [
            ("unsubscribed", "max@acme.example left quarterly")]
    assert _unsubscribed(gw) == [("max@acme.example", "quarterly", "mail")]


def test_an_unknown_token_is_refused_and_changes_nothing(gw: Gateway) -> None:
    address = "unsubscribe+notatoken@support.example"
    raw = make_mail(to=address, subject="unsubscribe")
    with context_before(gw, unsubscribe.name, raw, rcpt_tos=[address]) as ctx:
        unsubscribe.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert trace_of(ctx, unsubscribe.name) == [("refused", "unknown unsubscribe token")]
    assert _unsubscribed(gw) == []


def test_mail_also_to_support_goes_on_through_the_pipeline(gw: Gateway) -> None:
    address = f"unsubscribe+{_token(gw, 'anna@acme.example')}@support.example"
    raw = make_mail(to=f"{SUPPORT}, {address}", subject="Stop the newsletter, and a question")
    with context_before(gw, unsubscribe.name, raw, rcpt_tos=[SUPPORT, address]) as ctx:
        unsubscribe.run(ctx)
        assert not ctx.stopped
        assert [o for o, _ in trace_of(ctx, unsubscribe.name)] == ["unsubscribed"]
    assert _unsubscribed(gw) == [("anna@acme.example", "quarterly", "mail")]


def test_mail_to_support_only_is_no_unsubscribe_request(gw: Gateway) -> None:
    with context_before(gw, unsubscribe.name, make_mail(subject="unsubscribe")) as ctx:
        unsubscribe.run(ctx)
        assert not ctx.stopped and trace_of(ctx, unsubscribe.name) == []
    assert _unsubscribed(gw) == []
