"""Step ``sent-copy``: a copy from the shared mailbox's Sent folder is recorded as the
agent's reply on its ticket (found by the thread step, else by any subject tag); a copy
that matches no ticket is ignored."""

from __future__ import annotations

from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import sent_copy
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import (
    SENT_FOLDER,
    SUPPORT,
    context_before,
    origin_of,
    processed,
    trace_of,
)

IMAP = {"source": "imap:support/Sent", "options": SENT_FOLDER}


def _answer(subject: str, in_reply_to: str | None = None) -> bytes:
    """What an agent sent from their mail client, as the shared mailbox."""
    return make_mail(sender=SUPPORT, sender_name="Example Support", to="anna@acme.example",
                     subject=subject, in_reply_to=in_reply_to,
                     body="Please update to 4.2, that fixes the sync.")


def test_a_copy_of_a_reply_is_the_agents_message_on_its_ticket(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = _answer("Re: Sync fails", in_reply_to=origin_of(gw, number))
    with context_before(gw, sent_copy.name, raw, **IMAP) as ctx:
        assert ctx.threaded_by == "headers"
        sent_copy.run(ctx)
        assert ctx.role == "agent"
        assert ctx.sender is not None and ctx.sender.agent is not None
        assert ctx.sender.email == SUPPORT and ctx.sender.name == "Example Support"
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert trace_of(ctx, sent_copy.name) == [
            ("agent", f"copy of a reply sent from the shared mailbox by {SUPPORT}: recorded "
             f"on ticket #{number} as the agent's, nothing is sent")]


def test_our_mailbox_may_use_any_subject_tag(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, sent_copy.name, _answer(f"Re: [#{number}] Sync fails"),
                        **IMAP) as ctx:
        assert ctx.new_ticket  # thread did not trust the tag from this From address
        sent_copy.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert (ctx.new_ticket, ctx.threaded_by, ctx.role) == (False, "subject_tag", "agent")
        assert trace_of(ctx, sent_copy.name)[0] == (
            "hit", f"subject tag [#{number}] (our own mailbox may use any tag)")


def test_a_copy_that_matches_no_ticket_is_ignored(gw: Gateway) -> None:
    with context_before(gw, sent_copy.name, _answer("Lunch on Friday?"), **IMAP) as ctx:
        sent_copy.run(ctx)
        assert (ctx.disposition, ctx.reason) == (Disposition.IGNORED, sent_copy.NO_MATCH)


def test_mail_from_elsewhere_is_not_a_copy(gw: Gateway) -> None:
    with context_before(gw, sent_copy.name, make_mail(subject="Sync fails")) as ctx:
        sent_copy.run(ctx)
        assert ctx.role == "requester" and not ctx.stopped
        assert trace_of(ctx, sent_copy.name) == [("skip", "not from a Sent folder")]
