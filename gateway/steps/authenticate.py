"""How sure are we of the sender?  Decides ``ctx.sender_verified`` before any privilege.

Reads the envelope, ``ctx.parsed`` and ``ctx.sender``; writes ``ctx.token`` and
``ctx.to_note_address`` (a valid reply token among the envelope recipients) and
``ctx.sender_verified``, by the method ``sender_authentication`` names (see
``gateway/sender_auth.py``).  Only people the directory knows can be verified: a
privilege always comes from the directory, never from a header.
"""

from __future__ import annotations

from gateway.context import MailContext
from gateway.directory import support_identity
from gateway.models import Participant
from gateway.sender_auth import Verdict, authres_verdict
from gateway.tickets import parse_address_detail
from inbound.addresses import split_address

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


def _token_verdict(ctx: MailContext) -> Verdict:
    """Development mode: a valid reply token of a real ticket vouches for the sender.

    Whoever can write to ``support+TOKEN@`` received (or was shown) our mail about that
    ticket; that is all this mode checks, which is why it is not for production."""
    if ctx.token is None:
        return Verdict(False, "no valid reply token among the recipients")
    participant = ctx.session.get(Participant, ctx.token.participant_id)
    if participant is None or participant.ticket_number != ctx.token.ticket_number:
        return Verdict(False, "the reply token names no participant of its ticket")
    return Verdict(True, f"valid reply token of ticket #{ctx.token.ticket_number} "
                   "(development mode: the token alone is trusted)")


def _verdict(ctx: MailContext) -> Verdict:
    assert ctx.sender is not None and ctx.parsed is not None
    settings = ctx.services.settings
    method = settings.sender_authentication
    if method == "authres":
        return authres_verdict(ctx.parsed.headers.get("authentication-results", ()),
                               settings.authserv_id, ctx.sender.email)
    if method == "dkim":
        return ctx.dkim or Verdict(False, "DKIM was not verified")
    return _token_verdict(ctx)


def run(ctx: MailContext) -> None:
    assert ctx.sender is not None
    _find_token(ctx)
    if ctx.spool.options.get("history") if ctx.spool.options else False:
        ctx.note(name, "history", "imported history: nobody acts, nothing is verified")
        return
    if ctx.sender.kind == "unknown":
        ctx.note(name, "unknown", f"{ctx.sender.email} is not in the directory: no privilege "
                 "to verify")
        return
    verdict = _verdict(ctx)
    ctx.sender_verified = verdict.verified
    ctx.note(name, "verified" if verdict.verified else "unverified", verdict.explanation)
