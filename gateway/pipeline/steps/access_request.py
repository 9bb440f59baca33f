"""An authenticated agent asks for access to a customer's system by mail.

Acts only when ``ctx.sender_verified`` (sender authentication vouches for the From
address) and the sender is a directory agent; the From header alone never starts a
request.  The message is a request when it was sent to the grants address
(``support+<grant_address_tag>@domain``) or its text starts with a line
``#access [team=T] [agent=EMAIL | department=D] [export]``.  The team defaults to the
ticket's team and the agent to the sender; the reason is the rest of the text (or
the subject).  Reads ``ctx.sender``, ``ctx.ticket``, ``ctx.parsed``, ``ctx.reply``;
writes outbox rows (``ctx.outbox_ids``) and a trace note.  On a ticket the command is
recorded as an internal note (never relayed to the customer); mail to the grants
address that belongs to no ticket opens none: it ends ignored with the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.directory import support_identity
from gateway.grants.service import GrantError, request_access
from gateway.models import MessageKind
from gateway.pipeline.context import Disposition, MailContext
from inbound.addresses import split_address

__all__ = ["AccessCommand", "description", "name", "parse_command", "run"]

name = "access-request"
description = "turn an authenticated agent's #access mail into an access request"


@dataclass(frozen=True)
class AccessCommand:
    team: str | None
    agent: str | None
    department: str | None
    export: bool
    reason: str


def parse_command(text: str, *, required: bool) -> AccessCommand | None:
    """Read ``#access …`` from the first non-empty line (``required``: the line may be absent)."""
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if first.lower().startswith("#access"):
        words, rest = first[len("#access"):].split(), "\n".join(lines[1:]).strip()
    elif required:
        return None
    else:
        words, rest = [], text.strip()
    options: dict[str, str] = {}
    export = False
    extra: list[str] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key.lower() in {"team", "agent", "department"}:
            options[key.lower()] = value
        elif word.lower() == "export":
            export = True
        else:
            extra.append(word)
    rest = "\n".join(part for part in (" ".join(extra), rest) if part)
    return AccessCommand(options.get("team"), options.get("agent"), options.get("department"),
                         export, rest)


def _to_grants_address(ctx: MailContext) -> bool:
    support = support_identity(ctx.session)
    tag = ctx.services.settings.grant_address_tag.lower()
    for address in ctx.spool.rcpt_tos:
        recipient = split_address(address)
        if (recipient is not None and recipient.domain in support.domains
                and recipient.local == support.local_part.lower()
                and (recipient.detail or "").lower() == tag):
            return True
    return False


def run(ctx: MailContext) -> None:
    if ctx.history or ctx.automatic is not None:
        return
    if not (ctx.sender_verified and ctx.sender.agent is not None):
        return
    text = ctx.own_text  # a forwarded mail's lines are somebody else's: never a command
    to_grants = _to_grants_address(ctx)
    if to_grants and ctx.parsed.subject.strip().lower().startswith("#access"):
        text = f"{ctx.parsed.subject.strip()}\n{text}"  # the command may be the subject
    command = parse_command(text, required=not to_grants)
    if command is None:
        return
    ctx.kind = MessageKind.NOTE  # the command is for us, never for the customer
    team = command.team or (None if ctx.new_ticket else ctx.ticket.team_id)
    if not team:
        _done(ctx, "refused", "access request names no team and its ticket has none")
        return
    agent = None if command.department else (command.agent or ctx.sender.email)
    try:
        outbox_ids = request_access(
            ctx.session, ctx.services, team, agent_email=agent, department=command.department,
            reason=command.reason or ctx.parsed.subject, export=command.export,
            requested_by=ctx.sender.email, via="mail")
    except GrantError as error:
        _done(ctx, "refused", f"access request refused: {error}")
        return
    ctx.outbox_ids.extend(outbox_ids)
    _done(ctx, "requested", f"access to team {team} requested for "
          f"{command.department or agent}: {len(outbox_ids)} activation mails queued")


def _done(ctx: MailContext, outcome: str, explanation: str) -> None:
    ctx.note(name, outcome, explanation)
    if ctx.new_ticket:  # mail to the grants address outside any ticket: no ticket for it
        ctx.stop(Disposition.IGNORED, explanation)
