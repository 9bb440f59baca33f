"""The answer gate (``gateway/pipeline/answer_gate.py``) asks its three questions of the
database in one statement: hard bounce mark, automatic answers to the mailbox this hour,
to the domain this hour.  These tests pin what that statement counts (the automatic kinds,
the last hour, the mailbox without case or ``+detail``), that it sees rows still waiting in
the session, and which refusal comes first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from gateway.models import OutboxItem, OutboxStatus
from gateway.pipeline.answer_gate import refusal
from gateway.pipeline.context import MailContext
from gateway.runtime.app import Gateway
from gateway.trust import bounce_marks
from outbound.outbox import mailbox_of
from tests.mail import make_mail
from tests.pipeline.build import context_before, passed

ANNA = "anna@acme.example"
CAPS = {"ack_limit_per_hour": 2, "ack_limit_per_domain_per_hour": 3}
LOOP_BRAKE = f"mailbox {ANNA} already got 2 automatic answers this hour (loop brake)"
BACKSCATTER_BRAKE = ("domain acme.example already got 3 automatic answers this hour "
                     "(backscatter brake)")


def _answered(session: Session, ctx: MailContext, rcpt: str, *, kind: str = "acknowledgement",
              ago: timedelta = timedelta(minutes=5)) -> None:
    """An outbox row to ``rcpt``, ``ago`` before now, left unflushed in the session."""
    mailbox, domain = mailbox_of(rcpt)
    session.add(OutboxItem(
        kind=kind, mail_from="support@support.example", rcpt_to=rcpt,
        message_id=f"{len(session.new)}.{rcpt}@support.example", subject="", raw=b"",
        rcpt_mailbox=mailbox, rcpt_domain=domain, status=OutboxStatus.PENDING,
        created_at=ctx.services.now() - ago))


def _unverified() -> bytes:
    return make_mail(subject="Sync fails")  # no Authentication-Results: unverified


@pytest.mark.parametrize("settings", [CAPS], indirect=True)
def test_only_automatic_answers_of_the_last_hour_count_per_mailbox(gw: Gateway) -> None:
    with context_before(gw, "notify", _unverified()) as ctx:
        session = ctx.session
        _answered(session, ctx, "Anna+billing@ACME.example")  # the same mailbox
        _answered(session, ctx, ANNA, kind="agent_reply")  # a person's words: not counted
        _answered(session, ctx, ANNA, ago=timedelta(minutes=61))  # before this hour
        session.flush()
        assert refusal(ctx, ANNA) is None
        _answered(session, ctx, ANNA, kind="duplicate_notice")  # still in the session
        assert refusal(ctx, ANNA) == LOOP_BRAKE
        assert refusal(ctx, "ANNA+x@acme.example") == LOOP_BRAKE  # the mailbox, folded


@pytest.mark.parametrize("settings", [CAPS], indirect=True)
def test_the_domain_cap_holds_for_unverified_senders_only(gw: Gateway) -> None:
    for verified, expected in ((False, BACKSCATTER_BRAKE), (True, None)):
        raw = make_mail(subject="Sync fails", headers=passed(ANNA) if verified else None)
        with context_before(gw, "notify", raw) as ctx:
            for colleague in ("max@acme.example", "olga@acme.example", "ben@Acme.Example"):
                _answered(ctx.session, ctx, colleague)
            _answered(ctx.session, ctx, "eve@other.example")
            assert refusal(ctx, ANNA) == expected


@pytest.mark.parametrize("settings", [CAPS], indirect=True)
def test_a_live_hard_bounce_mark_comes_before_the_caps(gw: Gateway) -> None:
    days = gw.settings.bounce_mark_days
    marked = f"{ANNA} hard-bounced our mail in the last {days} days"
    with context_before(gw, "notify", _unverified()) as ctx:
        session, now = ctx.session, ctx.services.now()
        for _ in range(3):
            _answered(session, ctx, ANNA)
        bounce_marks.mark(session, "Anna@acme.example ", hard=True, reason="550", now=now,
                          days=days)  # unflushed
        assert refusal(ctx, ANNA) == marked
        session.flush()
        assert bounce_marks.clear(session, ANNA)  # the deletion is unflushed
        assert refusal(ctx, ANNA) == LOOP_BRAKE


def test_a_soft_or_expired_bounce_mark_refuses_nothing(gw: Gateway) -> None:
    days = gw.settings.bounce_mark_days
    with context_before(gw, "notify", _unverified()) as ctx:
        session, now = ctx.session, ctx.services.now()
        bounce_marks.mark(session, ANNA, hard=False, reason="451", now=now, days=days)
        bounce_marks.mark(session, "max@acme.example", hard=True, reason="550",
                          now=now - timedelta(days=days, minutes=1), days=days)
        assert refusal(ctx, ANNA) is None
        assert refusal(ctx, "max@acme.example") is None
        bounce_marks.mark(session, "max@acme.example", hard=True, reason="550",
                          now=now - timedelta(days=days, minutes=-1), days=days)
        assert refusal(ctx, "max@acme.example") == (
            f"max@acme.example hard-bounced our mail in the last {days} days")
