"""Step ``bounce-clear``: a verified message from a bouncing address lifts its mark; an
unverified one (a forged From) lifts nothing."""

from __future__ import annotations

from gateway.models import BouncingAddress, utcnow
from gateway.pipeline.steps import bounce_clear
from gateway.runtime.app import Gateway
from gateway.trust import bounce_marks
from tests.mail import make_mail
from tests.pipeline.build import context_before, passed, trace_of

MAX = "max@acme.example"


def _mark(gw: Gateway) -> None:
    with gw.db.transaction() as session:
        bounce_marks.mark(session, MAX, hard=True, reason="550 5.1.1 user unknown",
                          now=utcnow(), days=gw.settings.bounce_mark_days)


def _marked(gw: Gateway) -> bool:
    with gw.db.reading() as session:
        return session.get(BouncingAddress, MAX) is not None


def test_a_verified_message_clears_the_mark(gw: Gateway) -> None:
    _mark(gw)
    with context_before(gw, bounce_clear.name, make_mail(sender=MAX, headers=passed(MAX))) as ctx:
        bounce_clear.run(ctx)
        assert trace_of(ctx, bounce_clear.name) == [
            ("cleared", f"{MAX} wrote a verified message: its bounce mark is cleared")]
    assert not _marked(gw)


def test_an_unverified_message_clears_nothing(gw: Gateway) -> None:
    _mark(gw)
    with context_before(gw, bounce_clear.name, make_mail(sender=MAX)) as ctx:
        bounce_clear.run(ctx)
        assert trace_of(ctx, bounce_clear.name) == []
    assert _marked(gw)


def test_a_verified_message_without_a_mark_says_nothing(gw: Gateway) -> None:
    with context_before(gw, bounce_clear.name, make_mail(sender=MAX, headers=passed(MAX))) as ctx:
        bounce_clear.run(ctx)
        assert trace_of(ctx, bounce_clear.name) == []
    assert not _marked(gw)
