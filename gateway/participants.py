"""People copied on a ticket (Cc participants, DESIGN §13): who may be, and who is.

A Cc participant is a ``participants`` row with the role ``cc``.  Mail the gateway sends
them carries their own reply token (``outbound.mail.reply_address``); they get support's
answers (``agent_reply``) and the status notices the requester gets; their replies join
the ticket with the role ``cc``.  Being copied gives no privilege: a cc never becomes the
requester, never changes the ticket's terms, and speaks with a customer's voice only.

Who may never be copied (:func:`cc_refusal`): support's own addresses (every address on
``support.domains``, which covers the aliases), ``agents_address``, support agents (they
answer as agents), automatic senders (mailer-daemon, postmaster, no-reply, bounces), the
requester (already a party) and anything that is not a plain address.  At most
:data:`CC_LIMIT` people are copied on one ticket: a mail with hundreds of Cc addresses
must not turn every answer into a mass mailing.

``#cc remove`` keeps the row with the role :data:`FORMER_CC` instead of deleting it: the
row still says "this address was on the ticket", so their next reply is neither given a
role again (``record`` would create a participant for a new address) nor mailed anything,
and the requester's reply-all to an older mail does not copy them again (``#cc add`` does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.directory import domain_key, support_identity
from gateway.models import Agent, Participant, Role, Ticket
from gateway.tickets import participant_for

__all__ = ["CC_LIMIT", "FORMER_CC", "Copied", "cc_participants", "cc_refusal", "copy_on",
           "is_cc", "on_ticket", "participant_row", "uncopy"]

CC_LIMIT = 20
"""The most people copied on one ticket (Zendesk stops at 48; a support thread needs few)."""

FORMER_CC = "cc_removed"
"""The participant role of someone ``#cc remove`` took off the ticket (stored value)."""

_ADDRESS = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@"
                      r"[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,62}"
                      r"[a-z0-9])?)+$")
_ROBOT = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post_master|mail[-_.]?delivery\S*|"
    r"no[-_.]?reply(?:[-_.+].*)?|.*[-_.]no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|"
    r"bounces?(?:[-+_.].*)?|nobody|auto[-_.]?reply|autoresponder|daemon)$")


def _is_robot(address: str) -> bool:
    return bool(_ROBOT.match(address.partition("@")[0]))


def participant_row(session: Session, ticket: Ticket, email: str) -> Participant | None:
    """The ticket's row for this address, whatever its role (None: never took part)."""
    return session.scalars(select(Participant).where(
        Participant.ticket_number == ticket.number, Participant.email == email)).one_or_none()


_participant = participant_row


def on_ticket(session: Session, ticket: Ticket) -> dict[str, Participant]:
    """Every row of the ticket by address, in one query: for asking about several
    addresses (a mail's Cc list) without a query per address and question."""
    return {row.email: row for row in session.scalars(select(Participant).where(
        Participant.ticket_number == ticket.number))}


def cc_refusal(session: Session, settings: Settings, ticket: Ticket, address: str, *,
               present: Mapping[str, Participant] | None = None) -> str | None:
    """Why ``address`` may not be copied on ``ticket``; None when it may.  ``present``:
    the ticket's rows (:func:`on_ticket`) when the caller has them."""
    if not _ADDRESS.match(address) or len(address) > 254:
        return "not an email address"
    domain = domain_key(address.rpartition("@")[2])
    if domain in support_identity(session).domains:
        return "one of support's own addresses"
    if settings.agents_address and address == settings.agents_address.lower():
        return "the support team's mailbox (agents_address)"
    if session.get(Agent, address) is not None:
        return "a support agent (agents answer as agents, never in Cc)"
    if _is_robot(address):
        return "an automatic sender's address"
    if address == ticket.requester:
        return "the ticket's requester"
    existing = (present.get(address) if present is not None
                else _participant(session, ticket, address))
    if existing is not None and existing.role == Role.AGENT:
        return "takes part in the ticket as an agent"
    return None


def cc_participants(session: Session, ticket: Ticket) -> list[Participant]:
    """The people copied on the ticket now, in the order they were added."""
    return list(session.scalars(select(Participant).where(
        Participant.ticket_number == ticket.number, Participant.role == Role.CC)
        .order_by(Participant.id)))


def is_cc(session: Session, ticket: Ticket, email: str, *,
          present: Mapping[str, Participant] | None = None) -> bool:
    found = present.get(email) if present is not None else _participant(session, ticket, email)
    return found is not None and found.role == Role.CC


@dataclass(frozen=True)
class Copied:
    """What :func:`copy_on` did with one address: ``added`` or not, and why."""

    address: str
    added: bool
    explanation: str


def copy_on(session: Session, settings: Settings, ticket: Ticket, addresses: Iterable[str],
            *, by_agent: bool = False) -> list[Copied]:
    """Copy each address on the ticket (a Cc participant), unless it may not be.

    Someone an agent took off (``#cc remove``) is copied again only ``by_agent``: the
    requester's reply-all to an older mail must not undo the agent's decision."""
    done: list[Copied] = []
    present = on_ticket(session, ticket)  # kept up to date below: one query in all
    for address in dict.fromkeys(a.strip().lower() for a in addresses):
        refused = cc_refusal(session, settings, ticket, address, present=present)
        existing = present.get(address)
        if refused is not None:
            done.append(Copied(address, False, f"{address} not copied: {refused}"))
        elif existing is not None and existing.role == Role.CC:
            done.append(Copied(address, False, f"{address} is copied on the ticket already"))
        elif existing is not None and existing.role == FORMER_CC and not by_agent:
            done.append(Copied(address, False, f"{address} not copied: an agent took them off "
                               "the ticket (only '#cc add' copies them again)"))
        elif sum(row.role == Role.CC for row in present.values()) >= CC_LIMIT:
            done.append(Copied(address, False, f"{address} not copied: the ticket has "
                               f"{CC_LIMIT} people in Cc already"))
        else:
            if existing is None:
                present[address] = participant_for(session, ticket, address, Role.CC,
                                                   flush=False)
            else:
                existing.role = Role.CC
                session.flush()
            done.append(Copied(address, True, f"{address} is copied on ticket "
                               f"#{ticket.number}"))
    return done


def uncopy(session: Session, ticket: Ticket, address: str) -> bool:
    """Take ``address`` off the ticket's Cc; False when it was not copied on it."""
    existing = _participant(session, ticket, address.strip().lower())
    if existing is None or existing.role != Role.CC:
        return False
    existing.role = FORMER_CC
    session.flush()
    return True
