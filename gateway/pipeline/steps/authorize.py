"""Decide in which role the sender speaks on this ticket, and whether they may.

Reads ``ctx.sender``, ``ctx.sender_verified`` (from the sender authority,
``ctx.sender_trust``) and ``ctx.ticket``; writes ``ctx.role``, ``ctx.refusal`` and
``ctx.flags``.  MISSION §2:

- the requester may always add to their own ticket;
- a verified **agent** speaks as ``agent`` (relayed, may set status);
- a verified team **admin** may reply to a ticket of another member of the same team
  as ``colleague``, if the ticket was created or updated on or after the cut-off date;
  a non-admin member is refused (``not_admin``), and so is an admin on an older
  ticket (``before_cutoff``);
- a sender who claims an agent's or admin's address but is not verified gets no
  privilege: the message is kept as plain customer input (``authenticate`` flagged it);
- a person copied on the ticket (a Cc participant, ``gateway/participants.py``) speaks as
  ``cc``: a public reply with a customer's voice and no privilege (a team member who is
  copied is no longer refused as ``not_admin``; an admin of the team stays a colleague).
  Someone taken off with ``#cc remove`` is flagged as taking no part, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from gateway.models import Person, Role, Ticket
from gateway.participants import FORMER_CC, participant_row
from gateway.pipeline.context import MailContext

name = "authorize"
description = "tag the sender's role on the ticket and refuse what they may not do"


def _cutoff(ctx: MailContext) -> datetime:
    return datetime.combine(ctx.services.settings.colleague_cutoff, time(), tzinfo=UTC)


def _visible_to_team(ctx: MailContext, ticket: Ticket) -> bool:
    cutoff = _cutoff(ctx)
    return ticket.created_at >= cutoff or ticket.updated_at >= cutoff


def _unverified(ctx: MailContext, claim: str) -> None:
    """No role from an unverified claim (``authenticate`` flagged the message already)."""
    ctx.role = Role.REQUESTER
    ctx.note(name, "unverified", f"{ctx.sender.email} claims to be {claim} but the sender "
             "authority did not vouch for it: kept as customer input, no privilege used")


def _colleague(ctx: MailContext, ticket: Ticket, person: Person) -> None:
    if person.role != "admin":
        ctx.refusal = "not_admin"
        ctx.note(name, "refused", f"{person.email} is a member (not an admin) of team "
                 f"{person.team_id}: only admins may reply to a colleague's ticket")
        return
    if not ctx.sender_verified:
        _unverified(ctx, f"an admin of team {person.team_id}")
        return
    if not _visible_to_team(ctx, ticket):
        ctx.refusal = "before_cutoff"
        ctx.note(name, "refused", f"ticket #{ticket.number} was created and last updated before "
                 f"the cut-off {ctx.services.settings.colleague_cutoff.isoformat()}: not a "
                 "team ticket")
        return
    ctx.role = Role.COLLEAGUE
    ctx.note(name, "colleague", f"{person.email}, admin of team {person.team_id}, replies on "
             f"a ticket of {ticket.requester}")


def run(ctx: MailContext) -> None:
    sender = ctx.sender
    if ctx.new_ticket:
        ctx.role = (Role.AGENT if sender.agent is not None and ctx.sender_verified
                    else Role.REQUESTER)
        if sender.agent is not None and not ctx.sender_verified and not ctx.history:
            _unverified(ctx, "support agent " + sender.email)
        ctx.note(name, ctx.role, f"{sender.email} opens a ticket as {ctx.role}")
        return
    ticket = ctx.ticket
    if ctx.history:
        ctx.role = (Role.AGENT if sender.agent is not None else
                    Role.REQUESTER if sender.email == ticket.requester else Role.COLLEAGUE)
        ctx.note(name, ctx.role, "imported history: role from the directory, nothing is sent")
        return
    if sender.agent is not None and sender.email != ticket.requester:
        if ctx.sender_verified:
            ctx.role = Role.AGENT
            ctx.note(name, "agent", f"{sender.email} is a verified support agent")
        else:
            _unverified(ctx, "support agent " + sender.email)
        return
    if sender.email == ticket.requester:
        ctx.role = Role.REQUESTER
        ctx.note(name, "requester", f"{sender.email} opened ticket #{ticket.number}")
        return
    person = sender.person
    row = participant_row(ctx.session, ticket, sender.email)  # one look-up: cc? takes part?
    copied = row is not None and row.role == Role.CC
    # the requester's team matters only to a sender with a team
    requester = (ctx.session.get(Person, ticket.requester)
                 if person is not None and person.team_id else None)
    if (person is not None and requester is not None and person.team_id
            and person.team_id == requester.team_id
            and not (copied and person.role != "admin")):
        _colleague(ctx, ticket, person)
        return
    if copied:
        ctx.role = Role.CC
        ctx.note(name, "cc", f"{sender.email} is copied on ticket #{ticket.number}: a public "
                 "reply, no privilege")
        return
    ctx.role = Role.REQUESTER
    if row is None or row.role == FORMER_CC:
        ctx.flags.append(f"{sender.email} takes no part in ticket #{ticket.number} and is not "
                         "on the requester's team")
    ctx.note(name, "requester", f"{sender.email} writes on ticket #{ticket.number} without a "
             "privileged role")
