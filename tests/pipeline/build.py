"""The one way a step test gets its context: as production builds it, up to the step.

A real message is spooled (``inbound.spool.store_message``), analysed
(``inbound.parsing.analysis.analyze`` with the configured limits), and the context is
created in the row's transaction as ``gateway.pipeline.processing`` creates it; then the
real steps that come BEFORE the one under test run in pipeline order
(``gateway.pipeline.flow.run_pipeline``).  The test calls the step's ``run(ctx)`` itself
and checks what it decided.  Leaving the ``with`` block commits, so the rows the step
wrote can be read back afterwards.

Build contexts only here: when the context's type changes, this is the one place to
follow it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from gateway.models import OutboxItem, Participant, SpoolEntry, Ticket
from gateway.pipeline.analysis_pool import limits_of
from gateway.pipeline.context import MailContext, context_for
from gateway.pipeline.flow import PIPELINE, run_pipeline
from gateway.pipeline.processing import dkim_evidence, process_spool_entry
from gateway.runtime.app import Gateway
from gateway.tickets import make_reply_token
from inbound.parsing.analysis import analyze
from inbound.spool import HUB_SOURCE, header_identity, store_hub_message, store_message

__all__ = ["AUTHSERV", "SENT_FOLDER", "SUPPORT", "context_before", "origin_of", "outbox_of",
           "passed", "processed", "reply_address", "spool", "ticket_of", "trace_of"]

AUTHSERV = "mx.support.example"
"""The ``authserv_id`` of the MTA in front of the gateway in these tests (``authres``)."""
SUPPORT = "support@support.example"
SENT_FOLDER: dict[str, Any] = {
    "sent": True, "imap": {"mailbox": "support", "account": SUPPORT, "folder": "Sent", "uid": 7}}
"""The spool options of a copy the IMAP poller took from the shared mailbox's Sent folder."""


def passed(sender: str) -> dict[str, str]:
    """The header our MTA writes when DMARC passed for the sender's domain."""
    return {"Authentication-Results":
            f"{AUTHSERV}; dmarc=pass header.from={sender.rpartition('@')[2]}"}


def spool(gateway: Gateway, raw: bytes, *, mail_from: str | None = None,
          rcpt_tos: Sequence[str] = (SUPPORT,), source: str = "smtp",
          options: dict[str, Any] | None = None) -> int:
    """Commit ``raw`` to the spool as intake does; the envelope sender defaults to From."""
    sender = header_identity(raw)[1] if mail_from is None else mail_from
    if source == HUB_SOURCE:  # as the hub writes it: for the person named in its options
        person = str(((options or {}).get("hub") or {}).get("person") or sender)
        return store_hub_message(gateway.db, raw, person=person,
                                 rcpt_tos=list(rcpt_tos)).spool_id
    return store_message(gateway.db, raw, source=source, mail_from=sender,
                         rcpt_tos=list(rcpt_tos), options=options).spool_id


def processed(gateway: Gateway, raw: bytes, **envelope: Any) -> int:
    """Run ``raw`` through the whole production pipeline (the state a test starts from);
    returns its ticket number."""
    outcome = process_spool_entry(gateway.db, gateway.services, spool(gateway, raw, **envelope))
    assert outcome.state == "processed" and outcome.ticket_number is not None, outcome.reason
    return outcome.ticket_number


def outbox_of(gateway: Gateway, ids: Sequence[int]) -> list[tuple[str, str]]:
    """``(kind, recipient)`` of the outbox rows ``ids``, in order."""
    with gateway.db.reading() as session:
        rows = session.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))
                               .order_by(OutboxItem.id)).all()
        return [(row.kind, row.rcpt_to) for row in rows]


@contextmanager
def context_before(gateway: Gateway, step: str, raw: bytes, **envelope: Any
                   ) -> Iterator[MailContext]:
    """The context of ``raw`` (spooled with ``envelope``, see :func:`spool`) after every
    step before ``step`` ran, inside the row's transaction (committed on leaving)."""
    spool_id = spool(gateway, raw, **envelope)
    services, settings = gateway.services, gateway.services.settings
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        stored, mail_from = bytes(entry.raw), entry.mail_from
    analysis = analyze(stored, mail_from, limits_of(settings))
    # the DKIM verdict as gateway.pipeline.processing computes it before the transaction
    dkim = dkim_evidence(settings, stored, mail_from, analysis)
    with gateway.db.transaction() as session:
        entry = session.get(SpoolEntry, spool_id, with_for_update=True)
        assert entry is not None
        ctx = context_for(entry, session, services, analysis, dkim=dkim)
        before = PIPELINE[:PIPELINE.index(step)]
        run_pipeline(ctx, before)
        assert not ctx.stopped, f"stopped before {step}: {ctx.disposition}: {ctx.reason}"
        yield ctx


def trace_of(ctx: MailContext, step: str) -> list[tuple[str, str]]:
    """``(outcome, explanation)`` of the trace lines ``step`` wrote."""
    return [(line["outcome"], line["explanation"]) for line in ctx.trace if line["step"] == step]


def reply_address(gateway: Gateway, number: int, email: str, *, note: bool = False) -> str:
    """The ticket's reply address for its participant ``email`` (as our mail carries it)."""
    with gateway.db.reading() as session:
        participant = session.scalars(select(Participant).where(
            Participant.ticket_number == number, Participant.email == email)).one()
        token = make_reply_token(gateway.services.secret, number, participant.id)
    return f"support+{token}{'+note' if note else ''}@support.example"


def ticket_of(gateway: Gateway, number: int) -> Ticket:
    """The ticket as it is now (detached: read its columns, not its relations)."""
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket


def origin_of(gateway: Gateway, number: int) -> str:
    """The Message-ID that opened the ticket, as a reply names it in In-Reply-To."""
    origin = ticket_of(gateway, number).origin_message_id
    assert origin
    return f"<{origin}>"
