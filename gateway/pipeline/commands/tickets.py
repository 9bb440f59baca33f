"""``#tickets [all | since YYYY-MM-DD]``: a customer asks for their ticket list by mail.

A new mail (not a reply on a ticket: there ``#tickets`` is just text) whose visible text
starts with the line ``#tickets``, ``#tickets all`` or ``#tickets since YYYY-MM-DD`` opens
no ticket: it gets an automatic ``ticket_list`` answer and the spool row ends ignored with
the outcome.

The answer goes to the From address only (never Reply-To), and only when the sender
authority vouches for it (``ctx.sender_verified``): a person's ticket list is private, and
an unverified request gets no answer at all (the spool row ends ignored with the reason),
neither a list nor an empty one that would be false.  Token mode verifies no new mail, so
there the command never answers (development only).  What it lists comes from the directory
(:mod:`gateway.visible_tickets`).  Like every automatic answer it is never sent for
automatic mail, and it passes the gate of every automatic answer
(``gateway/pipeline/answer_gate.py``: DMARC, bounce marks, per-mailbox and per-domain caps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gateway.notices import queue_ticket_list
from gateway.pipeline.answer_gate import refusal as answer_refusal
from gateway.pipeline.commands.base import Handled
from gateway.pipeline.context import MailContext
from gateway.visible_tickets import visible_tickets

__all__ = ["ListCommand", "handle", "parse_command", "word"]

word = "tickets"

_COMMAND = re.compile(r"^#tickets\b[ \t]*(.*?)[ \t]*$", re.IGNORECASE)
_SINCE = re.compile(r"^since[ \t]+(\d{4}-\d{2}-\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class ListCommand:
    include_old: bool = False
    since: date | None = None


def parse_command(text: str) -> ListCommand | None:
    """``#tickets [all | since YYYY-MM-DD]`` on the first non-empty line, else None.

    Unknown words after ``#tickets`` are not the command (a sentence that happens to
    begin with it is a request like any other)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    match = _COMMAND.match(first)
    if match is None:
        return None
    argument = match[1]
    if not argument:
        return ListCommand()
    if argument.lower() == "all":
        return ListCommand(include_old=True)
    since = _SINCE.match(argument)
    if since is None:
        return None
    try:
        return ListCommand(since=date.fromisoformat(since[1]))
    except ValueError:
        return None


def handle(ctx: MailContext, text: str) -> Handled | None:
    command = parse_command(text)
    if command is None:
        return None
    address = ctx.sender.email
    if ctx.automatic is not None:
        return Handled(f"command: ticket list not sent: automatic mail "
                       f"({ctx.automatic.kind}) is never answered")
    if not ctx.sender_verified:
        return Handled(f"command: ticket list not sent: {address} is not a verified sender "
                       f"({ctx.sender_trust.reason}); a ticket list is private")
    refused = answer_refusal(ctx, address)  # DMARC, bounce mark, per-mailbox/domain caps
    if refused:
        return Handled(f"command: ticket list not sent: {refused}")
    listing = visible_tickets(ctx.session, address,
                              cutoff=ctx.services.settings.colleague_cutoff,
                              now=ctx.services.now(), include_old=command.include_old,
                              since=command.since)
    item = queue_ticket_list(
        ctx.session, ctx.services, listing, to_address=address, to_name=ctx.sender.name,
        language=ctx.language, include_old=command.include_old,
        since=command.since.isoformat() if command.since else None,
        in_reply_to=ctx.parsed.message_id, references=ctx.parsed.references,
        spool_id=ctx.spool.id)
    ctx.outbox_ids.append(item.id)
    count = len(listing.lines) + listing.more
    return Handled(f"command: ticket list ({count} found) sent to {address}",
                   (("queued", f"ticket list ({count} found) to {address} (outbox {item.id})"),))
