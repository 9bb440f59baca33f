"""The typed context one message carries through the pipeline.

Steps share only this object (never call each other), add to it, or stop it with
a disposition and a reason.  ``trace`` records every decision and is stored on
the spool row, so an operator can see why a message went where it did.

What the message *is* (the spool row, its :class:`~inbound.parsing.analysis.Analysis`:
parsed mail, reply parts, automatic verdict) is known before the first step, so it is
never optional.  What steps *decide* in stages (the sender, how sure we are of it, the
ticket, a new ticket's terms) is read through a property that raises
:class:`PipelineOrderError` when a step reads it before the step that sets it has run:
a step after ``identify-sender`` reads ``ctx.sender`` without a check of its own.
:func:`context_for` is the one way to build a context from a spool row.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from gateway.models import Agent, MessageKind, Person, Role, SenderKind, SpoolEntry, Team, Ticket
from gateway.tickets import ReplyToken
from gateway.trust.sender_auth import SenderTrust
from rules.engine import Entitlement

if TYPE_CHECKING:
    from gateway.services import Services
    from inbound.parsing.analysis import Analysis
    from inbound.parsing.automatic import AutomaticVerdict
    from inbound.parsing.message import ParsedMail
    from inbound.parsing.reply_text import ReplyParts

__all__ = ["Disposition", "MailContext", "OnBehalf", "PipelineOrderError", "Sender",
           "TicketTerms", "context_for"]


class Disposition(enum.StrEnum):
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class PipelineOrderError(RuntimeError):
    """A step read a context field before the step that sets it ran: a bug in the order."""

    def __init__(self, what: str, set_by: str) -> None:
        super().__init__(f"ctx.{what} was read before {set_by} set it")


@dataclass
class Sender:
    """Who wrote the message, as far as the directory knows."""

    email: str
    name: str = ""
    person: Person | None = None
    agent: Agent | None = None
    team: Team | None = None

    @property
    def kind(self) -> SenderKind:
        return (SenderKind.AGENT if self.agent else SenderKind.PERSON if self.person
                else SenderKind.UNKNOWN)


@dataclass(frozen=True)
class OnBehalf:
    """A verified agent forwarded a customer's mail: the ticket is the customer's (``on-behalf``
    made ``ctx.sender`` the original sender), and ``record`` keeps the agent's words as an
    internal note."""

    agent: Sender
    words: str
    """What the agent wrote above the forward (the note's text)."""
    message_id: str | None
    """The forward's own Message-ID (the note's: the agent's thread leads to the ticket)."""
    subject: str
    full_text: str
    """The whole forward as the agent sent it (kept on the note, never on the public message)."""


@dataclass(frozen=True)
class TicketTerms:
    """What ``apply-rules`` decided for a new ticket: the engine's entitlement and what the
    pipeline adds to it.  ``record`` stores it on the ticket, ``notify`` promises by it."""

    entitlement: Entitlement
    category: str
    issue_type: str
    explanation: str
    """The engine's reasons joined, as stored in ``tickets.entitlement``."""
    ask_product: tuple[str, ...] = ()
    """The team's product names to ask about (several products, none named)."""
    starts_clock: bool = True
    """False for imported history: no first-response due time."""

    @property
    def due(self) -> datetime | None:
        return self.entitlement.due if self.starts_clock else None


@dataclass
class MailContext:
    spool: SpoolEntry
    session: Session
    services: Services
    analysis: Analysis
    """Everything learnt from the raw bytes, computed before the transaction began."""
    dkim: SenderTrust | None = None
    """Our own DKIM verification (mode ``dkim``), done before the transaction began."""
    history: bool = False
    """Imported history (spool option ``history``): recorded, nothing is sent or started."""
    reply: ReplyParts = field(init=False)
    """The visible reply and the quoted history (``commands`` takes its command lines out)."""
    token: ReplyToken | None = None
    """The valid reply token found in a recipient address (names ticket and participant)."""
    to_note_address: bool = False
    """The mail went to the ticket's ``+note`` address (internal note, never sent)."""
    new_ticket: bool = False
    threaded_by: str = ""
    opens_conversation: bool = False
    """Joined the ticket that a reply to it opened first: it is now that ticket's opening
    message (threading, issue 14)."""
    parent_of_waiting: bool = False
    """Joined a ticket because a message there names it as its missing parent (or a
    missing ancestor): the ids it names are ``linked`` on that ticket (threading)."""
    role: Role = Role.REQUESTER
    kind: MessageKind = MessageKind.PUBLIC
    language: str = "en"
    flags: list[str] = field(default_factory=list)
    """Warnings stored on the message for the people reading the ticket."""
    refusal: str = ""
    """Why the sender may not act on this ticket (a ``reply_refused`` reason code)."""
    set_status: str = ""
    """A status an authorised agent asked for (``#status …``), applied by ``lifecycle``."""
    set_owner: str = ""
    """The agent an authorised agent assigned the ticket to (``#assign``), applied by
    ``assign``."""
    merge_into: int | None = None
    """The ticket an authorised agent merges this one into (``#merge N``), applied by
    ``merge`` once the message is stored."""
    reopened: bool = False
    follows: int | None = None
    """A closed ticket this new one continues (the reply came after the reopen window)."""
    duplicate_of: Ticket | None = None
    unindexed: tuple[str, int] | None = None
    """(Message-ID, ticket number): ``thread`` found this id not indexed on that ticket at
    all, so ``record`` indexes it there without asking the database again."""
    on_behalf: OnBehalf | None = None
    """Set by ``on-behalf``: the forwarding agent; ``ctx.sender`` and ``ctx.analysis`` are then
    the original's (its sender, subject, text), so later steps open the ticket for them."""
    outbox_ids: list[int] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    disposition: Disposition | None = None
    reason: str = ""
    _sender: Sender | None = field(default=None, init=False, repr=False)
    _sender_trust: SenderTrust | None = field(default=None, init=False, repr=False)
    _ticket: Ticket | None = field(default=None, init=False, repr=False)
    _terms: TicketTerms | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reply = self.analysis.reply

    # What the message is: known before the first step.

    @property
    def parsed(self) -> ParsedMail:
        return self.analysis.parsed

    @property
    def automatic(self) -> AutomaticVerdict | None:
        """Why this is automatic mail (out-of-office, bulk, a mail system's), None: a person."""
        return self.analysis.automatic

    @property
    def sent_copy(self) -> bool:
        """A copy the IMAP poller took from a mailbox's ``sent`` folder (an agent's reply
        already delivered): trusted through our own IMAP account, never through a header."""
        return bool((self.spool.options or {}).get("sent"))

    # What steps decide, in stages: read after the step that sets it.

    @property
    def sender(self) -> Sender:
        """Who the From address is (set by ``identify-sender``, or ``sent-copy``)."""
        if self._sender is None:
            raise PipelineOrderError("sender", "identify-sender")
        return self._sender

    @sender.setter
    def sender(self, sender: Sender) -> None:
        self._sender = sender

    @property
    def sender_trust(self) -> SenderTrust:
        """The one answer on the sender (``gateway.trust.sender_auth.sender_trust``), set by
        ``authenticate``; every effect acting on the claimed identity asks it."""
        if self._sender_trust is None:
            raise PipelineOrderError("sender_trust", "authenticate")
        return self._sender_trust

    @sender_trust.setter
    def sender_trust(self, trust: SenderTrust) -> None:
        self._sender_trust = trust

    @property
    def sender_verified(self) -> bool:
        """True only when the sender authority vouches for the From address."""
        return self.sender_trust.verified

    @property
    def ticket(self) -> Ticket:
        """The ticket the message belongs to: set by ``thread`` (or ``sent-copy``) when it
        joins one, by ``record`` when it is new (``ctx.new_ticket``: ask that first)."""
        if self._ticket is None:
            raise PipelineOrderError("ticket", "record (a new ticket)" if self.new_ticket
                                     else "thread")
        return self._ticket

    def join(self, ticket: Ticket, threaded_by: str) -> None:
        """The message belongs to ``ticket`` (found by ``threaded_by``)."""
        self._ticket, self.new_ticket, self.threaded_by = ticket, False, threaded_by

    def open_new_ticket(self) -> None:
        """The message opens a new ticket, which ``record`` creates."""
        self._ticket, self.new_ticket, self.threaded_by = None, True, "new_ticket"

    def created(self, ticket: Ticket) -> None:
        """``record`` created the new ticket."""
        self._ticket = ticket

    @property
    def terms(self) -> TicketTerms:
        """A new ticket's terms, decided by ``apply-rules``."""
        if self._terms is None:
            raise PipelineOrderError("terms", "apply-rules")
        return self._terms

    @terms.setter
    def terms(self, terms: TicketTerms) -> None:
        self._terms = terms

    def note(self, step: str, outcome: str, explanation: str) -> None:
        """Record one decision (hit, miss, set, …) with its human explanation."""
        self.trace.append({"step": step, "outcome": str(outcome), "explanation": explanation})

    def stop(self, disposition: Disposition, reason: str) -> None:
        self.disposition = disposition
        self.reason = reason

    @property
    def stopped(self) -> bool:
        return self.disposition is not None

    @property
    def forwarded_inline(self) -> bool:
        """The message forwards another mail in its text: what stands under the forward's
        header block is somebody else's words, not the sender's."""
        forwarded = self.analysis.forwarded
        return forwarded is not None and forwarded.how == "inline"

    @property
    def own_text(self) -> str:
        """What the sender wrote themselves, where commands are read: their visible reply,
        or for an inline forward only the words above it (a stranger's mail forwarded by an
        agent must not speak with the agent's authority)."""
        forwarded = self.analysis.forwarded
        if forwarded is not None and forwarded.how == "inline":
            return forwarded.words
        return self.reply.visible

    @property
    def answers_requester(self) -> bool:
        """An agent's public reply with words or attachments for the customer: the one
        kind of mail that is relayed and stops the first-response clock.  Not a note, not
        automatic mail (an out-of-office is no answer), not a bare ``#status`` command."""
        if (self.role != Role.AGENT or self.kind != MessageKind.PUBLIC
                or self.automatic is not None):
            return False
        if self.reply.visible.strip():
            return True
        return any(not a.inline for a in self.parsed.attachments)


def context_for(spool: SpoolEntry, session: Session, services: Services, analysis: Analysis,
                *, dkim: SenderTrust | None = None) -> MailContext:
    """The context for one spool row and its analysis, as the processor builds it."""
    return MailContext(spool=spool, session=session, services=services, analysis=analysis,
                       dkim=dkim, history=bool((spool.options or {}).get("history")))
