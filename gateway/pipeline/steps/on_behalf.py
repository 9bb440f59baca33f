"""A verified agent's forward of a customer's mail opens the ticket for that customer.

Issue 16: an agent who forwards a customer's mail to support (a new mail, on no ticket)
means "open this for them".  Acts only on a new ticket whose sender ``authorize`` made an
``agent`` (a directory agent the sender authority vouches for, ``ctx.sender_verified``),
that is no note or ``#access`` command, no automatic mail, no imported history, and whose
analysis found a forward (:mod:`inbound.parsing.forwarded`).  Anybody else's forward (a
customer's, an unverified claim to be an agent) is their own request, unchanged.

Then the original sender becomes ``ctx.sender`` (looked up in the directory: team and
language), the requester of the new ticket, speaking ``public`` as ``requester``; the
message ``ctx.analysis`` is the original's (its subject, text, Message-ID when the forward
carries one, attachments), so ``duplicates`` and ``apply-rules`` decide for the customer
(on the customer's terms: the verified agent vouches for the forward, so they count as
verified), ``record`` stores the original as the first message and ``notify`` acknowledges
it to the customer, in their language, threaded to the original.  ``ctx.on_behalf`` keeps
the agent and their words, which ``record`` stores as an internal note (never sent).
Reads ``ctx.analysis``, ``ctx.sender``, ``ctx.role``, ``ctx.kind``; writes ``ctx.sender``,
``ctx.language``, ``ctx.role``, ``ctx.analysis``, ``ctx.reply`` and ``ctx.on_behalf``.
"""

from __future__ import annotations

import dataclasses

from gateway.directory import support_identity
from gateway.models import Agent, MessageKind, Person, Role, Team
from gateway.notices import bare_subject
from gateway.pipeline.context import MailContext, OnBehalf, Sender
from inbound.addresses import split_address
from inbound.parsing.analysis import Analysis
from inbound.parsing.forwarded import Forwarded
from inbound.parsing.reply_text import ReplyParts

name = "on-behalf"
description = "open a verified agent's forward for the original sender"


def _acts(ctx: MailContext) -> bool:
    return (ctx.new_ticket and not ctx.history and ctx.automatic is None
            and ctx.role == Role.AGENT and ctx.kind == MessageKind.PUBLIC
            and ctx.sender.agent is not None and ctx.sender_verified
            and ctx.analysis.forwarded is not None)


def _refused(ctx: MailContext, forwarded: Forwarded) -> str:
    """Why the forward's sender cannot be the requester ("" when they can)."""
    address = forwarded.from_address
    recipient = split_address(address)
    support = support_identity(ctx.session)
    if recipient is None:
        return f"the forwarded From {address!r} is no address"
    if recipient.domain in support.domains:
        return f"the forwarded mail is from our own address {address}"
    if ctx.session.get(Agent, address) is not None:
        return f"the forwarded mail is from support agent {address}"
    return ""


def _original_sender(ctx: MailContext, forwarded: Forwarded) -> Sender:
    sender = Sender(email=forwarded.from_address, name=forwarded.from_name)
    sender.person = ctx.session.get(Person, sender.email)
    if sender.person is not None and sender.person.team_id:
        sender.team = ctx.session.get(Team, sender.person.team_id)
    if sender.person is not None:
        ctx.language = sender.person.language
    elif sender.team is not None:
        ctx.language = sender.team.language
    else:
        ctx.language = ctx.services.settings.ack_language_default
    return sender


def _original(analysis: Analysis, forwarded: Forwarded) -> Analysis:
    """The analysis as if the customer had written to us: the forward's envelope stays
    (recipients, date, trust), its subject, text, ids and attachments are the original's."""
    parsed = analysis.parsed
    attached = forwarded.how == "attached"
    attachments = (tuple(a for a in parsed.attachments
                         if a.content_type not in {"message/rfc822", "message/global"})
                   + forwarded.attachments) if attached else parsed.attachments
    original = dataclasses.replace(
        parsed, subject=forwarded.subject or bare_subject(parsed.subject),
        from_address=forwarded.from_address, from_name=forwarded.from_name,
        message_id=forwarded.message_id, in_reply_to=(), references=(),
        text=forwarded.text, html=forwarded.html, attachments=attachments)
    reply = ReplyParts(visible=forwarded.text, quoted="", signature="")
    # no forward any more: the customer's own mail, their words their own
    return dataclasses.replace(analysis, parsed=original, reply=reply, forwarded=None)


def run(ctx: MailContext) -> None:
    forwarded = ctx.analysis.forwarded
    if not _acts(ctx) or forwarded is None:
        return
    refused = _refused(ctx, forwarded)
    if refused:
        ctx.note(name, "skip", f"a forward, but {refused}: the agent's own ticket")
        return
    agent, parsed = ctx.sender, ctx.parsed
    ctx.on_behalf = OnBehalf(agent=agent, words=forwarded.words, message_id=parsed.message_id,
                             subject=parsed.subject, full_text=parsed.text)
    ctx.sender = _original_sender(ctx, forwarded)
    ctx.analysis = _original(ctx.analysis, forwarded)
    ctx.reply = ctx.analysis.reply
    ctx.role, ctx.kind = Role.REQUESTER, MessageKind.PUBLIC
    team = f", team {ctx.sender.team.id}" if ctx.sender.team else ""
    ctx.note(name, "on-behalf", f"verified agent {agent.email} forwarded ({forwarded.how}) a "
             f"mail of {ctx.sender.email}{team}: a ticket for them, the agent's words an "
             "internal note")
