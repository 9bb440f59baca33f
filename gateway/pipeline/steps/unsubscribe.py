"""Handle mail to ``unsubscribe+TOKEN@<support domain>`` (the mailto of List-Unsubscribe).

Reads the envelope recipients; records the unsubscribe named by the token (the token, not
the From header, is the authority: only the recipient of the bulk mail holds it) and stops
the message as ignored with the reason "unsubscribe request".  Mail that is also addressed
to support itself goes on through the pipeline.
"""

from __future__ import annotations

from gateway.bulk.unsubscribe import UNSUBSCRIBE_LOCAL_PART, redeem
from gateway.directory import support_identity
from gateway.pipeline.context import Disposition, MailContext
from inbound.addresses import split_address

name = "unsubscribe"
description = "record unsubscribe requests sent to the List-Unsubscribe mailto address"


def run(ctx: MailContext) -> None:
    recipients = [r for r in (split_address(a) for a in ctx.spool.rcpt_tos) if r is not None]
    if not any(r.local == UNSUBSCRIBE_LOCAL_PART for r in recipients):
        return  # nearly all mail: no need to read our domains (a SELECT, first in a session)
    domains = set(support_identity(ctx.session).domains)
    requests = [r for r in recipients
                if r.local == UNSUBSCRIBE_LOCAL_PART and r.domain in domains]
    if not requests:
        return
    for request in requests:
        outcome = redeem(ctx.session, request.detail, source="mail") if request.detail else None
        if outcome is not None and outcome.ok:
            ctx.note(name, "unsubscribed", f"{outcome.email} left {outcome.list_name}")
        else:
            ctx.note(name, "refused", outcome.reason if outcome else "no token in the address")
    if len(requests) == len(recipients):
        ctx.stop(Disposition.IGNORED, "unsubscribe request")
