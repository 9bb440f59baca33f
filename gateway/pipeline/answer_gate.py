"""May the gateway send an automatic answer now?  One gate for every automatic answer.

Automatic answers (``gateway.notices.AUTOMATIC_ANSWERS``: acknowledgement, duplicate
notice, refusal, reopen notice, ticket list) go to an address nobody checked: a forged
``From`` turns them into backscatter, and two auto-responders into a ping-pong.  So:

- never in answer to a message whose authentication positively failed (the sender
  authority's ``failed`` level: ``dmarc=fail`` for its From domain in our MTA's topmost
  ``Authentication-Results``, or an aligned DKIM signature that does not verify): the
  message is still stored and its ticket opened, only the answer is withheld;
- never to an address with a live bounce mark (``gateway/trust/bounce_marks.py``);
- at most ``ack_limit_per_hour`` per **mailbox** per hour: the address case-folded with
  its ``+detail`` removed, so ``victim@``, ``Victim@`` and ``victim+1@`` share one count;
  for a verified sender only the answers to verified mail count (``outbox.for_verified``),
  so mail forged in their name cannot use up their allowance and silence them;
- at most ``ack_limit_per_domain_per_hour`` per recipient domain per hour, unless the
  message's sender is verified (a verified sender cannot be forged, and a team writing
  in numbers during an outage must still be answered).

``dmarc_failed`` and ``sender_verified`` are the two questions asked of the sender; both
are answered by the one sender authority (``gateway/trust/sender_auth.py``, ``ctx.sender_trust``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (
    Boolean,
    ColumnElement,
    ScalarSelect,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
)

from gateway.db import flush_if_pending
from gateway.models import BouncingAddress, OutboxItem
from gateway.notices import AUTOMATIC_ANSWERS
from gateway.pipeline.context import MailContext
from gateway.prepared import Prepared
from outbound.outbox import mailbox_of

__all__ = ["dmarc_failed", "refusal", "sender_verified"]

_OUTBOX = OutboxItem.__table__.c
_BOUNCING = BouncingAddress.__table__.c


def _answers_since(column: str, *criteria: ColumnElement[bool]) -> ScalarSelect[int]:
    """Automatic answers queued since ``:since`` whose ``column`` is ``:<column>``: a count
    the index ``ix_outbox_<column>_kind_created`` (rcpt_…, kind, created_at) covers (the
    ``criteria`` read the rows it finds: few, since the gate keeps them few)."""
    return (select(func.count()).select_from(OutboxItem.__table__)
            .where(_OUTBOX[column] == bindparam(column, type_=_OUTBOX[column].type),
                   # one plain parameter per kind: an expanding IN is re-rendered per call
                   _OUTBOX.kind.in_([literal(kind) for kind in sorted(AUTOMATIC_ANSWERS)]),
                   _OUTBOX.created_at >= bindparam("since", type_=_OUTBOX.created_at.type),
                   *criteria)
            .scalar_subquery())


# The gate's three questions in one statement, built once: a statement built per call
# spent most of its time making SQLAlchemy's cache key (ORM-annotated columns), and
# ``session.get`` for the bounce mark loaded a row only to read two columns.  Core
# columns: nothing is loaded into the session.  A NULL ``:rcpt_domain`` counts nothing.
_GATE = Prepared(select(
    _answers_since("rcpt_mailbox", or_(bindparam("every_answer", type_=Boolean()),
                                       _OUTBOX.for_verified)),
    _answers_since("rcpt_domain"),
    exists().where(  # the one reading of a mark: hard, last bounce within bounce_mark_days
        _BOUNCING.address == bindparam("address", type_=_BOUNCING.address.type),
        _BOUNCING.hard,
        _BOUNCING.last_at >= bindparam("marked_since", type_=_BOUNCING.last_at.type)),
))


def _gate_row(ctx: MailContext, address: str, mailbox: str, domain: str | None
              ) -> tuple[int, int, bool]:
    """``(answers to mailbox (a verified sender's: to verified mail only), answers to
    domain (0 if None), live hard bounce mark)``."""
    session = ctx.session
    flush_if_pending(session, OutboxItem, BouncingAddress)  # the gate counts and sees them
    now = ctx.services.now()
    days = ctx.services.settings.bounce_mark_days
    row = _GATE.first(session, {
        "rcpt_mailbox": mailbox, "every_answer": not ctx.sender_verified,
        "rcpt_domain": domain, "since": now - timedelta(hours=1),
        "address": address.strip().lower(), "marked_since": now - timedelta(days=days),
    })
    assert row is not None  # a SELECT without FROM answers one row
    to_mailbox, to_domain, bounced = row
    return int(to_mailbox), int(to_domain), bool(bounced)


def sender_verified(ctx: MailContext) -> bool:
    """Does the sender authority (``ctx.sender_trust``) vouch for the sender?"""
    return ctx.sender_verified


def dmarc_failed(ctx: MailContext) -> str | None:
    """Why the authority judged the sender's authentication a positive failure (``dmarc=fail``
    for the From domain in our MTA's topmost header, or an aligned DKIM signature that does
    not verify), or None."""
    trust = ctx.sender_trust
    return trust.reason if trust.failed else None


def refusal(ctx: MailContext, address: str) -> str | None:
    """Why no automatic answer may go to ``address`` for this message, or None."""
    settings = ctx.services.settings
    failed = dmarc_failed(ctx)
    if failed:
        return f"the sender's DMARC failed ({failed}): no automatic answer (backscatter)"
    mailbox, domain = mailbox_of(address)
    capped_domain = None if sender_verified(ctx) else domain  # the domain cap: unverified only
    to_mailbox, to_domain, bounced = _gate_row(ctx, address, mailbox, capped_domain)
    if bounced:
        return f"{address} hard-bounced our mail in the last {settings.bounce_mark_days} days"
    limit = settings.ack_limit_per_hour
    if to_mailbox >= limit:
        return (f"mailbox {mailbox} already got {limit} automatic answers this hour "
                "(loop brake)")
    domain_limit = settings.ack_limit_per_domain_per_hour
    if capped_domain is not None and to_domain >= domain_limit:
        return (f"domain {domain} already got {domain_limit} automatic answers this hour "
                "(backscatter brake)")
    return None
