"""Step ``guard-bounce``: delivery reports open no ticket; only a report about mail we sent,
naming the address it went to, marks the outbox row bounced and the address bouncing."""

from __future__ import annotations

from sqlalchemy import select

from gateway.models import BouncingAddress, OutboxItem, OutboxStatus
from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import guard_bounce
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import context_before, processed, trace_of

# A real Postfix report (BounceParser's corpus) about the mail <ORIGINAL> to <FAILED>.
ORIGINAL, FAILED = b"20060527213404.GN13012@mta.domain-1.com", b"bounce@dest.example.com"


def _report(message_id: str, recipient: str) -> bytes:
    """The real report, about our mail ``message_id`` to ``recipient``."""
    raw = corpus_bytes("bounces", "bounceparser/postfix.msg")
    return raw.replace(ORIGINAL, message_id.encode()).replace(FAILED, recipient.encode())


def _acknowledgement(gw: Gateway, requester: str) -> OutboxItem:
    number = processed(gw, make_mail(sender=requester, subject="Invoices"))
    with gw.db.reading() as session:
        item = session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_number == number, OutboxItem.kind == "acknowledgement")).one()
        return item


def _marks(gw: Gateway) -> dict[str, bool]:
    with gw.db.reading() as session:
        return {row.address: row.hard for row in session.scalars(select(BouncingAddress))}


def test_a_report_of_our_mail_marks_the_row_and_the_address(gw: Gateway) -> None:
    ack = _acknowledgement(gw, "ghost@acme.example")
    raw = _report(ack.message_id, "ghost@acme.example")
    with context_before(gw, guard_bounce.name, raw, mail_from="") as ctx:
        guard_bounce.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.startswith("bounce: delivery failed for ghost@acme.example")
        assert ctx.reason.endswith(f"; outbox {ack.id} (acknowledgement for ticket "
                                   f"#{ack.ticket_number}) marked bounced; bouncing: "
                                   "ghost@acme.example")
    assert _marks(gw) == {"ghost@acme.example": True}
    with gw.db.reading() as session:
        item = session.get(OutboxItem, ack.id)
        assert item is not None and item.status == OutboxStatus.BOUNCED
        assert item.bounced_at is not None and item.last_error.startswith("bounced: ")


def test_a_strangers_report_marks_nothing(gw: Gateway) -> None:
    raw = corpus_bytes("bounces", "bounceparser/postfix.msg")  # about mail we never sent
    with context_before(gw, guard_bounce.name, raw, mail_from="") as ctx:
        guard_bounce.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.endswith("; not about mail we sent: nothing marked")
        assert trace_of(ctx, guard_bounce.name) == [
            ("untrusted", "the report names no Message-ID of mail we sent")]
    assert _marks(gw) == {}


def test_a_report_of_our_mail_naming_someone_else_marks_nothing(gw: Gateway) -> None:
    ack = _acknowledgement(gw, "mallory@evil.example")
    raw = _report(ack.message_id, "max@acme.example")
    with context_before(gw, guard_bounce.name, raw, mail_from="") as ctx:
        guard_bounce.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.endswith(f"; about outbox {ack.id} but not its recipient "
                                   "mallory@evil.example: nothing marked")
    assert _marks(gw) == {}
    with gw.db.reading() as session:
        item = session.get(OutboxItem, ack.id)
        assert item is not None and item.status != OutboxStatus.BOUNCED


def test_a_feedback_report_is_ignored_with_its_kind(gw: Gateway) -> None:
    raw = corpus_bytes("bounces", "sisimai/arf-01.eml")
    with context_before(gw, guard_bounce.name, raw, mail_from="") as ctx:
        guard_bounce.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.startswith("feedback report: feedback report (abuse)")
    assert _marks(gw) == {}


def test_a_persons_mail_is_no_report(gw: Gateway) -> None:
    with context_before(gw, guard_bounce.name, make_mail()) as ctx:
        guard_bounce.run(ctx)
        assert not ctx.stopped
        assert trace_of(ctx, guard_bounce.name) == [("miss", "not a delivery report")]
