"""Queue the mail this message calls for; never sends anything itself.

Reads what the earlier steps decided; writes outbox rows (``ctx.outbox_ids``):

- a new ticket from a person: an acknowledgement (or, for a duplicate, a notice naming
  the ticket that holds the request), and a copy to team admins who asked for one (only
  for a verified sender: a claim to be of the team mails nobody of it);
- a refused reply: a polite refusal to its sender;
- a colleague's reply: a notice to the requester with the colleague's words;
- a verified agent's public reply (text, attachments or both): relayed to the
  requester from the support address (the agent's own address never shows),
  attachments carried; a bare ``#status`` command: a status notice; an internal
  note or an agent's automatic mail (out-of-office): nothing;
- an agent's mail that solved the ticket (``#status solved``, relayed reply or bare
  status notice): the requester's mail carries a "was this helpful?" link
  (``gateway.satisfaction``), unless the ticket was rated already;
- the relayed agent reply and the status notice go as well to everyone copied on the
  ticket (Cc participants, ``gateway/participants.py``), each with their own reply token
  (the satisfaction link only to the requester, whose answer it asks for); a cc's own
  reply is relayed to nobody but the agents (their reply-all reached the others already);
- a reply that reopened a ticket: a notice to whoever wrote it (the requester, or the
  cc whose reply it was);
- with ``agents_address`` set, a new request or a customer's or colleague's follow-up:
  an ``agents_notice`` to that address (English, the message's text and attachments up
  to ``agents_notice_attachment_limit``, the others named with their size,
  Reply-To the ticket's address for the agents' participant: an agent's answer from
  their own, authenticated address is an agent reply).  Not for tickets agents open,
  not for duplicates (the ticket holding the request was announced already), never
  for mail from verified agents or from that address, never to our own address; a
  message flagged ``unverified sender`` says so in the notice.

Never in answer to automatic mail or imported history (RFC 3834); automatic answers
pass ``gateway/pipeline/answer_gate.py``: none after a DMARC failure, none to an address that
hard-bounced lately, at most ``ack_limit_per_hour`` per mailbox and
``ack_limit_per_domain_per_hour`` per domain per hour (no ping-pong, no backscatter).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from gateway.directory import support_identity
from gateway.models import MessageKind, OutboxItem, Person, Role, Ticket, TicketStatus
from gateway.notices import (
    bare_subject,
    display_subject,
    excerpt,
    queue_acknowledgement,
    queue_notice,
    thread_of,
)
from gateway.participants import cc_participants
from gateway.pipeline.answer_gate import refusal as answer_refusal
from gateway.pipeline.context import MailContext
from gateway.satisfaction import issue_link
from gateway.trust.sender_auth import UNVERIFIED_FLAG
from inbound.addresses import split_address
from outbound.attachment_cap import within_limit
from outbound.promise import acknowledgement_promise

name = "notify"
description = "queue acknowledgements and notices in the outbox"


def _queued(ctx: MailContext, item: OutboxItem, what: str) -> None:
    ctx.outbox_ids.append(item.id)
    ctx.note(name, "queued", f"{what} to {item.rcpt_to} (outbox {item.id})")


AGENTS_NOTICE = "agents_notice"


def _may_answer(ctx: MailContext, address: str, what: str) -> bool:
    """Automatic answers pass one gate (``gateway/pipeline/answer_gate.py``): not after a DMARC
    failure, not to bouncing addresses, not beyond the per-mailbox and per-domain caps."""
    refused = answer_refusal(ctx, address)
    if refused:
        ctx.note(name, "skip", f"{what}: {refused}")
        return False
    return True


def _text(ctx: MailContext) -> str:
    return ctx.reply.visible.strip() or ctx.parsed.text.strip()


def _in_directory(ctx: MailContext, address: str) -> bool | None:
    """Whether ``address`` is a person of the directory, when identify-sender (or on-behalf)
    looked this very address up in this transaction (the sender's); else None (ask)."""
    sender = ctx.sender
    if ctx.sent_copy or sender.email != address.strip().lower():
        return None
    return sender.person is not None


def _new_ticket(ctx: MailContext, ticket: Ticket) -> None:
    if ctx.sender.agent is not None:
        ctx.note(name, "skip", "opened by a support agent: no acknowledgement")
        return
    original = ctx.duplicate_of
    if original is not None:
        if _may_answer(ctx, ticket.requester, "duplicate notice"):
            item = queue_notice(
                ctx.session, ctx.services, ticket, kind="duplicate_notice",
                to_address=ticket.requester, to_name=ticket.requester_name, role=Role.REQUESTER,
                context={"requester_name": ticket.requester_name,
                         "original_number": original.number,
                         "original_subject": display_subject(original),
                         "excerpt": excerpt(_text(ctx))},
                spool_id=ctx.spool.id, auto_submitted="auto-replied",
                in_reply_to=ctx.parsed.message_id, references=list(ctx.parsed.references),
                reply_ticket=original)
            _queued(ctx, item, f"duplicate notice (#{original.number} holds the request)")
        return
    if _may_answer(ctx, ticket.requester, "acknowledgement"):
        terms = ctx.terms
        promise = (acknowledgement_promise(terms.entitlement, ctx.language, terms.ask_product)
                   if terms.due is not None else None)
        item = queue_acknowledgement(ctx.session, ctx.services, ticket, ctx.parsed, ctx.reply,
                                     ctx.language, ctx.spool.id, promise=promise,
                                     requester_in_directory=_in_directory(ctx,
                                                                          ticket.requester))
        _queued(ctx, item, "acknowledgement")
    _copy_to_admins(ctx, ticket)
    _to_agents(ctx, ticket)


def _copy_to_admins(ctx: MailContext, ticket: Ticket) -> None:
    team = ctx.sender.team
    if team is None:
        return
    if not ctx.sender_verified:  # a claim to be of the team: no mail to its admins
        ctx.note(name, "skip", "copy to the team's admins: the sender is not verified")
        return
    admins = ctx.session.scalars(select(Person).where(
        Person.team_id == team.id, Person.role == "admin", Person.email != ticket.requester)
        .order_by(Person.email)).all()
    for admin in admins:
        if not (admin.extra or {}).get("copy_on_team_tickets"):
            continue
        item = queue_notice(
            ctx.session, ctx.services, ticket, kind="team_ticket_copy", to_address=admin.email,
            to_name=admin.name, role=Role.COLLEAGUE,
            context={"admin_name": admin.name, "requester_name": ticket.requester_name,
                     "requester_email": ticket.requester, "team_name": team.name,
                     "text": _text(ctx)},
            spool_id=ctx.spool.id)
        _queued(ctx, item, "copy of the team's new ticket")


def _is_ours(ctx: MailContext, address: str) -> bool:
    """Our support address or one of its aliases (with or without a ``+detail``)."""
    support = support_identity(ctx.session)
    recipient = split_address(address)
    return recipient is not None and recipient.domain in support.domains and (
        recipient.local == support.local_part or recipient.local in support.aliases)


def _utc_text(moment: datetime | None) -> str | None:
    """``2026-11-23 14:00 UTC`` (naive values are UTC, as SQLite returns them)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _to_agents(ctx: MailContext, ticket: Ticket) -> None:
    """Tell the support team's mailbox of a new request or a follow-up on one.

    Its Reply-To is the ticket's address for a participant with the role ``agent``,
    sent to that mailbox only.  Whoever answers through it still needs the directory's
    agent entry and a verified sender (``authorize``) to speak as an agent: a customer
    who got hold of the address would only be a customer writing on the ticket."""
    address = ctx.services.settings.agents_address
    if not address:
        return
    if (ctx.sender.agent is not None and ctx.sender_verified) or ctx.sender.email == address:
        ctx.note(name, "skip", "agents' notice: the mail comes from the support team")
        return
    if _is_ours(ctx, address):
        ctx.note(name, "skip", f"agents' notice: agents_address {address} is our own "
                 "support address (it would come back as a loop)")
        return
    # a new ticket's terms are on it already (record wrote them)
    due = ticket.first_response_due if ticket.first_response_at is None else None
    team = ctx.sender.team
    attachments, not_attached = within_limit(
        [(a.filename, a.content_type, a.data) for a in ctx.parsed.attachments if not a.inline],
        ctx.services.settings.agents_notice_attachment_limit)
    first_notice = ctx.session.scalar(select(OutboxItem.message_id).where(
        OutboxItem.ticket_number == ticket.number, OutboxItem.kind == AGENTS_NOTICE,
        OutboxItem.rcpt_to == address).order_by(OutboxItem.id).limit(1))
    references = [i for i in (first_notice, *ctx.parsed.references, ctx.parsed.message_id)
                  if i]
    item = queue_notice(
        ctx.session, ctx.services, ticket, kind=AGENTS_NOTICE, to_address=address,
        to_name="", role=Role.AGENT, language="en",
        context={"new_ticket": ctx.new_ticket,
                 "author_name": ctx.sender.name or None, "author_email": ctx.sender.email,
                 "author_role": "colleague" if ctx.role == Role.COLLEAGUE else "cc" if (
                     ctx.role == Role.CC) else (
                     "requester" if ctx.sender.email == ticket.requester else "other"),
                 "team_name": team.name if team is not None else None,
                 "tier": ticket.tier, "queue": ticket.queue,
                 "first_response_due": _utc_text(due),
                 "status": ticket.status.value, "reopened": ctx.reopened,
                 "follows": ctx.follows, "flags": list(ctx.flags),
                 "unverified": any(f.startswith(UNVERIFIED_FLAG) for f in ctx.flags),
                 "text": _text(ctx), "attachments": [a[0] for a in attachments],
                 "not_attached": not_attached},
        spool_id=ctx.spool.id, auto_submitted="auto-generated",
        in_reply_to=ctx.parsed.message_id, references=list(dict.fromkeys(references)),
        attachments=attachments)
    _queued(ctx, item, "agents' notice" + ("" if ctx.new_ticket else " (follow-up)"))


def _refusal(ctx: MailContext, ticket: Ticket) -> None:
    if not _may_answer(ctx, ctx.sender.email, "refusal"):
        return
    item = queue_notice(
        ctx.session, ctx.services, ticket, kind="reply_refused", to_address=ctx.sender.email,
        to_name=ctx.sender.name, role=Role.COLLEAGUE,
        context={"recipient_name": ctx.sender.name, "reason": ctx.refusal,
                 "reply_subject": bare_subject(ctx.parsed.subject),
                 "cutoff_date": ctx.services.settings.colleague_cutoff.isoformat(),
                 "support_address": support_identity(ctx.session).address},
        spool_id=ctx.spool.id, auto_submitted="auto-replied",
        in_reply_to=ctx.parsed.message_id, references=list(ctx.parsed.references))
    _queued(ctx, item, f"refusal ({ctx.refusal})")


def _to_requester(ctx: MailContext, ticket: Ticket, kind: str, context: dict[str, object],
                  *, auto_submitted: str | None = "auto-generated",
                  attachments: list[tuple[str, str, bytes]] | None = None,
                  to: tuple[str, str, Role] | None = None) -> None:
    """``kind`` to the requester, or to ``to`` (address, name, role on the ticket)."""
    address, to_name, role = to or (ticket.requester, ticket.requester_name, Role.REQUESTER)
    in_reply_to, references = thread_of(ctx.session, ticket, address)
    item = queue_notice(
        ctx.session, ctx.services, ticket, kind=kind, to_address=address,
        to_name=to_name, role=role, context={"requester_name": to_name, **context},
        spool_id=ctx.spool.id, auto_submitted=auto_submitted, in_reply_to=in_reply_to,
        references=references, attachments=attachments or [])
    _queued(ctx, item, kind.replace("_", " ") + ("" if to is None else f" ({role})"))


def _to_requester_and_cc(ctx: MailContext, ticket: Ticket, kind: str,
                         context: dict[str, object], *, auto_submitted: str | None,
                         attachments: list[tuple[str, str, bytes]] | None = None,
                         requester_only: dict[str, object] | None = None) -> None:
    """Support's answers and status notices: the requester (with ``requester_only`` added
    to what the mail says) and everyone copied on it."""
    _to_requester(ctx, ticket, kind, {**context, **(requester_only or {})},
                  auto_submitted=auto_submitted, attachments=attachments)
    for participant in cc_participants(ctx.session, ticket):
        person = ctx.session.get(Person, participant.email)
        _to_requester(ctx, ticket, kind, context, auto_submitted=auto_submitted,
                      attachments=attachments,
                      to=(participant.email, person.name if person else "", Role.CC))


def _satisfaction_url(ctx: MailContext, ticket: Ticket) -> str | None:
    """The "was this helpful?" link when this mail solved the ticket (DESIGN §13)."""
    if ctx.set_status != TicketStatus.SOLVED or ticket.status != TicketStatus.SOLVED:
        return None
    url = issue_link(ctx.session, ticket, ctx.services.settings.public_url,
                     ctx.services.now())
    ctx.note(name, "satisfaction", "solved: the requester is asked whether it helped"
             if url else "solved: the ticket was rated already, nobody is asked again")
    return url


def _agent_reply(ctx: MailContext, ticket: Ticket) -> None:
    if ctx.kind == MessageKind.NOTE:
        ctx.note(name, "skip", "internal note: never sent")
        return
    settings = ctx.services.settings
    status = ticket.status.value if ticket.status != TicketStatus.OPEN else None
    reopen_days = None if settings.replies_only_to_open else settings.reopen_window_days
    text = ctx.reply.visible.strip()
    agent_name = (ctx.sender.agent.name if ctx.sender.agent else "") or None
    attachments = [(a.filename, a.content_type, a.data) for a in ctx.parsed.attachments
                   if not a.inline]
    if not ctx.answers_requester:
        if ctx.set_status:
            _to_requester_and_cc(ctx, ticket, "status_notice",
                                 {"status": ticket.status.value, "reopen_days": reopen_days},
                                 auto_submitted="auto-generated",
                                 requester_only={"satisfaction_url":
                                                 _satisfaction_url(ctx, ticket)})
        else:
            ctx.note(name, "skip", "the agent's reply has no text and no attachment: "
                     "nothing to relay")
        return
    _to_requester_and_cc(ctx, ticket, "agent_reply",
                         {"agent_name": agent_name, "text": text, "status": status,
                          "reopen_days": reopen_days},
                         auto_submitted=None, attachments=attachments,
                         requester_only={"satisfaction_url": _satisfaction_url(ctx, ticket)})


def run(ctx: MailContext) -> None:
    ticket = ctx.ticket
    if ctx.sent_copy:
        ctx.note(name, "skip", "copy from the shared Sent folder: already sent by the agent")
        return
    if ctx.history:
        ctx.note(name, "skip", "imported history: nothing is sent")
        return
    if ctx.automatic is not None:  # an agent's out-of-office included: it is no reply
        ctx.note(name, "skip", f"automatic mail ({ctx.automatic.kind}): never answered "
                 "nor relayed")
        return
    if ctx.role == Role.AGENT and not ctx.new_ticket:
        _agent_reply(ctx, ticket)  # a person's words, relayed: not an automatic answer
        return
    if ctx.refusal:
        _refusal(ctx, ticket)
        return
    if ctx.new_ticket:
        _new_ticket(ctx, ticket)
        return
    if ctx.role == Role.COLLEAGUE:
        _to_requester(ctx, ticket, "colleague_reply",
                      {"colleague_name": ctx.sender.name or None,
                       "colleague_email": ctx.sender.email, "text": _text(ctx)})
    writer = ((ctx.sender.email, ctx.sender.name, Role.CC) if ctx.role == Role.CC
              else None)  # a cc's reply reopened it: they are thanked, not the requester
    if ctx.reopened and _may_answer(ctx, writer[0] if writer else ticket.requester,
                                    "reopen notice"):
        _to_requester(ctx, ticket, "reopened", {}, to=writer)
    _to_agents(ctx, ticket)
    if not ctx.outbox_ids:
        ctx.note(name, "skip", "a reply: nothing to send")
