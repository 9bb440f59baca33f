"""A verified message from an address proves it receives mail again: clear its bounce mark.

Runs right after ``authenticate``.  Reads ``ctx.sender`` and whether the sender is
verified (``gateway.pipeline.answer_gate.sender_verified``); deletes the address's row of
``bouncing_addresses`` (``gateway/trust/bounce_marks.py``).  An unverified message clears
nothing: whoever forged a bounce could otherwise forge the "all clear" too, and the
other way round a forged From must not lift a genuine mark.
"""

from __future__ import annotations

from gateway.pipeline.answer_gate import sender_verified
from gateway.pipeline.context import MailContext
from gateway.trust import bounce_marks

name = "bounce-clear"
description = "a verified message from a bouncing address clears its mark"


def run(ctx: MailContext) -> None:
    if not sender_verified(ctx):
        return
    if bounce_marks.clear(ctx.session, ctx.sender.email):
        ctx.note(name, "cleared", f"{ctx.sender.email} wrote a verified message: its bounce "
                 "mark is cleared")
