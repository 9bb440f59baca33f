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
- at most ``ack_limit_per_domain_per_hour`` per recipient domain per hour, unless the
  message's sender is verified (a verified sender cannot be forged, and a team writing
  in numbers during an outage must still be answered).

``dmarc_failed`` and ``sender_verified`` are the two questions asked of the sender; both
are answered by the one sender authority (``gateway/trust/sender_auth.py``, ``ctx.sender_trust``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, literal, or_, select

from gateway.db import no_flush_unless_pending
from gateway.models import OutboxItem
from gateway.notices import AUTOMATIC_ANSWERS
from gateway.pipeline.context import MailContext
from gateway.trust import bounce_marks
from outbound.outbox import mailbox_of

__all__ = ["dmarc_failed", "refusal", "sender_verified"]


def sender_verified(ctx: MailContext) -> bool:
    """Does the sender authority (``ctx.sender_trust``) vouch for the sender?"""
    return ctx.sender_verified


def dmarc_failed(ctx: MailContext) -> str | None:
    """Why the authority judged the sender's authentication a positive failure (``dmarc=fail``
    for the From domain in our MTA's topmost header, or an aligned DKIM signature that does
    not verify), or None."""
    trust = ctx.sender_trust
    return trust.reason if trust.failed else None


def _counts(ctx: MailContext, mailbox: str, domain: str | None) -> tuple[int, int]:
    """Automatic answers queued within the last hour to ``mailbox``, and to ``domain``
    unless it is None (both in one statement)."""
    since = ctx.services.now() - timedelta(hours=1)
    to_mailbox = OutboxItem.rcpt_mailbox == mailbox
    recent = (OutboxItem.kind.in_(AUTOMATIC_ANSWERS), OutboxItem.created_at >= since)
    if domain is None:
        query = select(func.count(OutboxItem.id), literal(0)).where(to_mailbox, *recent)
    else:
        to_domain = OutboxItem.rcpt_domain == domain
        query = select(func.count(OutboxItem.id).filter(to_mailbox),
                       func.count(OutboxItem.id).filter(to_domain),
                       ).where(or_(to_mailbox, to_domain), *recent)
    with no_flush_unless_pending(ctx.session, OutboxItem):
        row = ctx.session.execute(query).one()
    return int(row[0] or 0), int(row[1] or 0)


def refusal(ctx: MailContext, address: str) -> str | None:
    """Why no automatic answer may go to ``address`` for this message, or None."""
    settings = ctx.services.settings
    failed = dmarc_failed(ctx)
    if failed:
        return f"the sender's DMARC failed ({failed}): no automatic answer (backscatter)"
    if bounce_marks.is_marked(ctx.session, address, ctx.services.now(),
                              settings.bounce_mark_days):
        return f"{address} hard-bounced our mail in the last {settings.bounce_mark_days} days"
    mailbox, domain = mailbox_of(address)
    capped_domain = None if sender_verified(ctx) else domain  # the domain cap: unverified only
    to_mailbox, to_domain = _counts(ctx, mailbox, capped_domain)
    limit = settings.ack_limit_per_hour
    if to_mailbox >= limit:
        return (f"mailbox {mailbox} already got {limit} automatic answers this hour "
                "(loop brake)")
    domain_limit = settings.ack_limit_per_domain_per_hour
    if capped_domain is not None and to_domain >= domain_limit:
        return (f"domain {domain} already got {domain_limit} automatic answers this hour "
                "(backscatter brake)")
    return None
