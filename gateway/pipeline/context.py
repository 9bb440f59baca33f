"""The typed context one message carries through the pipeline.

Steps share only this object (never call each other), add to it, or stop it with
a disposition and a reason.  ``trace`` records every decision and is stored on
the spool row, so an operator can see why a message went where it did.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from gateway.models import Agent, Person, SpoolEntry, Team, Ticket
from gateway.tickets import ReplyToken
from gateway.trust.sender_auth import SenderTrust

if TYPE_CHECKING:
    from gateway.services import Services
    from inbound.parsing.analysis import Analysis
    from inbound.parsing.automatic import AutomaticVerdict
    from inbound.parsing.message import ParsedMail
    from inbound.parsing.reply_text import ReplyParts

__all__ = ["Disposition", "MailContext", "Sender"]


class Disposition(enum.StrEnum):
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


@dataclass
class Sender:
    """Who wrote the message, as far as the directory knows."""

    email: str
    name: str = ""
    person: Person | None = None
    agent: Agent | None = None
    team: Team | None = None

    @property
    def kind(self) -> str:
        return "agent" if self.agent else "person" if self.person else "unknown"


@dataclass
class MailContext:
    spool: SpoolEntry
    session: Session
    services: Services
    analysis: Analysis | None = None
    parsed: ParsedMail | None = None
    reply: ReplyParts | None = None
    automatic: AutomaticVerdict | None = None
    sender: Sender | None = None
    dkim: SenderTrust | None = None
    """Our own DKIM verification (mode ``dkim``), done before the transaction began."""
    sender_trust: SenderTrust | None = None
    """The one answer on the sender (``gateway.trust.sender_auth.sender_trust``), set by the
    ``authenticate`` step; every effect acting on the claimed identity asks it."""
    token: ReplyToken | None = None
    """The valid reply token found in a recipient address (names ticket and participant)."""
    to_note_address: bool = False
    """The mail went to the ticket's ``+note`` address (internal note, never sent)."""
    ticket: Ticket | None = None
    new_ticket: bool = False
    threaded_by: str = ""
    opens_conversation: bool = False
    """Joined the ticket that a reply to it opened first: it is now that ticket's opening
    message (threading, issue 14)."""
    role: str = "requester"
    kind: str = "public"
    language: str = "en"
    history: bool = False
    entitlement: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    """Warnings stored on the message for the people reading the ticket."""
    refusal: str = ""
    """Why the sender may not act on this ticket (a ``reply_refused`` reason code)."""
    set_status: str = ""
    """A status an authorised agent asked for (``#status …``), applied by ``lifecycle``."""
    reopened: bool = False
    follows: int | None = None
    """A closed ticket this new one continues (the reply came after the reopen window)."""
    duplicate_of: Ticket | None = None
    outbox_ids: list[int] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    disposition: Disposition | None = None
    reason: str = ""

    @property
    def sender_verified(self) -> bool:
        """True only when the sender authority vouches for the From address."""
        return self.sender_trust is not None and self.sender_trust.verified

    def note(self, step: str, outcome: str, explanation: str) -> None:
        """Record one decision (hit, miss, set, …) with its human explanation."""
        self.trace.append({"step": step, "outcome": outcome, "explanation": explanation})

    def stop(self, disposition: Disposition, reason: str) -> None:
        self.disposition = disposition
        self.reason = reason

    @property
    def stopped(self) -> bool:
        return self.disposition is not None

    @property
    def answers_requester(self) -> bool:
        """An agent's public reply with words or attachments for the customer: the one
        kind of mail that is relayed and stops the first-response clock.  Not a note, not
        automatic mail (an out-of-office is no answer), not a bare ``#status`` command."""
        if self.role != "agent" or self.kind != "public" or self.automatic is not None:
            return False
        if self.reply is not None and self.reply.visible.strip():
            return True
        return self.parsed is not None and any(not a.inline for a in self.parsed.attachments)
