"""How sure are we of the sender?  Asks the one authority once, before any privilege.

Reads the envelope, the spool row's ``source`` and ``options`` (the hub's person),
``ctx.parsed``, ``ctx.analysis`` (the raw ``Authentication-Results``),
``ctx.dkim`` and ``ctx.sender``; writes ``ctx.token`` and ``ctx.to_note_address`` (a valid
reply token among the envelope recipients), ``ctx.sender_trust`` (see
:func:`gateway.trust.sender_auth.sender_trust`; ``ctx.sender_verified`` is derived from it) and,
for mail that claims an identity the directory would give something to (a person of a
team, an agent) without the evidence for it, or whose evidence failed, the visible flag
``unverified sender: …`` on the message.  Such mail is kept, never refused: the later
steps give it standard terms and no privilege.
"""

from __future__ import annotations

from gateway.directory import support_identity
from gateway.models import Participant
from gateway.pipeline.context import MailContext
from gateway.tickets import parse_address_detail
from gateway.trust.sender_auth import (
    UNVERIFIED_FLAG,
    MessageFacts,
    SenderTrust,
    TokenFacts,
    sender_trust,
)
from inbound.addresses import split_address
from inbound.spool import HUB_SOURCE
from outbound.outbox import answering

name = "authenticate"
description = "decide how sure we are of who sent the message"


def _find_token(ctx: MailContext) -> None:
    support = support_identity(ctx.session)
    for address in ctx.spool.rcpt_tos:
        recipient = split_address(address)
        if (recipient is None or not recipient.detail or recipient.domain not in support.domains
                or recipient.local != support.local_part):
            continue
        token, note = parse_address_detail(ctx.services.secret, recipient.detail)
        if token is not None:
            ctx.token, ctx.to_note_address = token, note
            return


def _token_facts(ctx: MailContext) -> TokenFacts | None:
    if ctx.token is None:
        return None
    participant = ctx.session.get(Participant, ctx.token.participant_id)
    if participant is None or participant.ticket_number != ctx.token.ticket_number:
        return TokenFacts(ctx.token.ticket_number, None)
    return TokenFacts(ctx.token.ticket_number, participant.email, participant.role)


def _sent_folder_of(ctx: MailContext) -> str | None:
    if not ctx.sent_copy:
        return None
    imap = (ctx.spool.options or {}).get("imap") or {}
    return str(imap.get("mailbox") or imap.get("account") or ctx.spool.source)


def _hub_person(ctx: MailContext) -> str | None:
    """The person the hub spooled this message for: only rows the hub wrote (source
    ``web``, set by the server; no intake edge writes it) count."""
    if ctx.spool.source != HUB_SOURCE:
        return None
    hub = (ctx.spool.options or {}).get("hub") or {}
    person = hub.get("person") if isinstance(hub, dict) else None
    return str(person) if person else None


def _facts(ctx: MailContext) -> MessageFacts:
    settings = ctx.services.settings
    return MessageFacts(
        from_address=ctx.sender.email, method=settings.sender_authentication,
        authserv_id=settings.authserv_id,
        authentication_results=ctx.analysis.authentication_results,
        dkim=ctx.dkim, token=_token_facts(ctx), sender_is_agent=ctx.sender.agent is not None,
        agents_address=settings.agents_address, sent_folder_of=_sent_folder_of(ctx),
        history=ctx.history, hub_person=_hub_person(ctx),
        repeated_headers=ctx.analysis.repeated_headers)


def _claim(ctx: MailContext) -> str | None:
    """What the From address would be given if it were believed (None: nothing)."""
    sender = ctx.sender
    if sender.agent is not None:
        return "a support agent"
    person = sender.person
    if person is None:
        return None
    what = f"{'an admin' if person.role == 'admin' else 'a member'} of team {person.team_id}" \
        if person.team_id else "a person of the directory"
    if person.champion and person.champion != "none":
        what += f", {person.champion} champion"
    return what


def _flag(ctx: MailContext, trust: SenderTrust) -> None:
    if trust.verified or trust.method in {"history", "sent_folder"}:
        return
    claim = _claim(ctx)
    if claim is None and not trust.failed:
        return  # a stranger: nothing to believe or not, the ordinary case
    said = f"claims to be {claim}" if claim else "is not in the directory"
    ctx.flags.append(f"{UNVERIFIED_FLAG}: {ctx.sender.email} {said}, but sender authentication "
                     f"{'failed' if trust.failed else 'did not vouch for it'} ({trust.reason}); "
                     "kept with standard terms, no privilege used")
    ctx.note(name, "flagged", ctx.flags[-1])


def run(ctx: MailContext) -> None:
    _find_token(ctx)
    trust = sender_trust(_facts(ctx))
    ctx.sender_trust = trust
    answering(ctx.session, verified=trust.verified)  # the outbox rows it queues say so
    ctx.note(name, trust.level.value, trust.explanation)
    _flag(ctx, trust)
