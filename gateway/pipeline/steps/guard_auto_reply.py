"""Recognise automatic mail (RFC 3834 and practice) so that we never answer it.

Reads ``ctx.automatic`` (the analysis' verdict); writes, for auto-replies, ``ctx.kind``.
Out-of-office style replies, and any mail a mail system sent (null envelope sender,
MAILER-DAEMON/postmaster), are kept only when they thread to a ticket (checked
by the thread step); bulk and machine-generated mail may open a ticket but is
never acknowledged.
"""

from __future__ import annotations

from gateway.models import MessageKind
from gateway.pipeline.context import MailContext

name = "guard-auto-reply"
description = "automatic mail is marked so that nothing is sent in answer"

REPLY_KINDS = frozenset({"auto_reply", "challenge_response", "read_receipt"})


def run(ctx: MailContext) -> None:
    verdict = ctx.automatic
    if verdict is None:
        ctx.note(name, "miss", "written by a person")
        return
    if verdict.kind in REPLY_KINDS or verdict.mail_system:
        # A mail system's message (null sender, MAILER-DAEMON) is kept like an
        # out-of-office reply: on the ticket it belongs to, else ignored; never a new ticket.
        ctx.kind = MessageKind.AUTO_REPLY
    system = " (sent by a mail system)" if verdict.mail_system else ""
    ctx.note(name, "hit", f"{verdict.kind}: {verdict.reason}{system}")
