"""May the gateway send an automatic answer now?  One gate for every automatic answer.

Automatic answers (``outbound.notices.AUTOMATIC_ANSWERS``: acknowledgement, duplicate
notice, refusal, reopen notice, ticket list) go to an address nobody checked: a forged
``From`` turns them into backscatter, and two auto-responders into a ping-pong.  So:

- never in answer to a message whose DMARC failed (our MTA's topmost
  ``Authentication-Results`` says ``dmarc=fail`` for its From domain): the message is
  still stored and its ticket opened, only the answer is withheld;
- never to an address with a live bounce mark (``gateway/bounce_marks.py``);
- at most ``ack_limit_per_hour`` per **mailbox** per hour: the address case-folded with
  its ``+detail`` removed, so ``victim@``, ``Victim@`` and ``victim+1@`` share one count;
- at most ``ack_limit_per_domain_per_hour`` per recipient domain per hour, unless the
  message's sender is verified (a verified sender cannot be forged, and a team writing
  in numbers during an outage must still be answered).

``dmarc_failed`` and ``sender_verified`` are the two questions asked of the sender; they
are the points to connect to the sender authority (``SenderTrust``) when it exists.
"""

from __future__ import annotations

from datetime import timedelta

import authres
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from gateway import bounce_marks
from gateway.context import MailContext
from gateway.models import OutboxItem
from outbound.notices import AUTOMATIC_ANSWERS
from outbound.outbox import mailbox_of

__all__ = ["dmarc_failed", "refusal", "sender_verified"]


def sender_verified(ctx: MailContext) -> bool:
    """Is the message's sender verified?  (Today: ``ctx.sender_verified``.)"""
    return ctx.sender_verified


def _topmost_ours(ctx: MailContext) -> authres.AuthenticationResultsHeader | None:
    """The topmost Authentication-Results header of our ``authserv_id``, parsed, or None."""
    authserv_id = ctx.services.settings.authserv_id
    if not authserv_id or ctx.parsed is None:
        return None
    for value in ctx.parsed.headers.get("authentication-results", ()):
        words = value.split(";", 1)[0].split()  # "authserv-id [version]"
        if not words or words[0].lower() != authserv_id:
            continue
        try:
            return authres.AuthenticationResultsHeader.parse(
                "Authentication-Results: " + " ".join(value.split()))
        except Exception:  # authres raises several kinds on syntax errors
            return None  # unreadable: no verdict either way
    return None


def dmarc_failed(ctx: MailContext) -> str | None:
    """Why the message's DMARC failed for its From domain, or None if it did not (or we
    cannot tell).  Only the topmost header of our ``authserv_id`` counts (RFC 8601 §5)."""
    header = _topmost_ours(ctx)
    if header is None or ctx.sender is None:
        return None
    from_domain = ctx.sender.email.rpartition("@")[2].lower()
    for result in header.results:
        if str(result.method).lower() != "dmarc" or str(result.result).lower() != "fail":
            continue
        properties = {f"{p.type}.{p.name}".lower(): str(p.value).lower()
                      for p in result.properties}
        if properties.get("header.from", from_domain) == from_domain:
            return f"{header.authserv_id} reports dmarc=fail for {from_domain}"
    return None


def _count(ctx: MailContext, column: InstrumentedAttribute[str | None], value: str) -> int:
    """Automatic answers queued within the last hour where ``column`` is ``value``."""
    since = ctx.services.now() - timedelta(hours=1)
    return ctx.session.scalar(select(func.count(OutboxItem.id)).where(
        column == value, OutboxItem.kind.in_(AUTOMATIC_ANSWERS),
        OutboxItem.created_at >= since)) or 0


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
    limit = settings.ack_limit_per_hour
    if _count(ctx, OutboxItem.rcpt_mailbox, mailbox) >= limit:
        return (f"mailbox {mailbox} already got {limit} automatic answers this hour "
                "(loop brake)")
    domain_limit = settings.ack_limit_per_domain_per_hour
    if not sender_verified(ctx) and _count(ctx, OutboxItem.rcpt_domain, domain) >= domain_limit:
        return (f"domain {domain} already got {domain_limit} automatic answers this hour "
                "(backscatter brake)")
    return None
