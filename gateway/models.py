"""SQLAlchemy 2 models: the spool, the directory, tickets, messages and the outbox.

Unique constraints carry idempotency (spool de-dup key, one Message-ID per
ticket index entry), so that a job run twice cannot write twice.  Timestamps are
timezone-aware UTC on every backend (SQLite stores them naive; ``UTCDateTime``
puts the zone back).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sql_false
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AccessGrant",
    "AccessLink",
    "AccessLogin",
    "AccessRequest",
    "Agent",
    "Announcement",
    "AnnouncementRecipient",
    "QuarterlySend",
    "Unsubscribe",
    "UnsubscribeToken",
    "Article",
    "AttachmentRecord",
    "BouncingAddress",
    "Base",
    "Callback",
    "CallbackStatus",
    "Feature",
    "ImapFolderState",
    "JobRun",
    "Lease",
    "FeatureUsage",
    "MessageKind",
    "MessageRecord",
    "MessageMention",
    "MessageRef",
    "OutboxItem",
    "OutboxStatus",
    "Participant",
    "Person",
    "Product",
    "Role",
    "HubSession",
    "HubSignInAttempt",
    "HubSignInLink",
    "SatisfactionLink",
    "SatisfactionRating",
    "SenderKind",
    "SpoolEntry",
    "SpoolState",
    "SupportSettings",
    "Team",
    "TeamAddon",
    "Ticket",
    "TicketEscalation",
    "TicketStatus",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SpoolState(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class Role(enum.StrEnum):
    """In which role someone wrote a message or takes part in a ticket (stored as the value)."""

    REQUESTER = "requester"
    COLLEAGUE = "colleague"
    """An admin of the requester's team, replying on a teammate's ticket."""
    AGENT = "agent"
    CC = "cc"
    """A person copied on the ticket (DESIGN §13): neither requester, colleague nor agent;
    gets support's answers, has no privilege (``gateway/participants.py``)."""
    SYSTEM = "system"
    """The gateway's own words on a ticket (a delivery failure note); ``tickets show`` also
    lists the mail it sent about the ticket in this role, read from the outbox
    (``gateway/views.py``)."""


class MessageKind(enum.StrEnum):
    """What a stored message is for (stored as the value)."""

    PUBLIC = "public"
    NOTE = "note"
    """Internal: never sent to the customer."""
    AUTO_REPLY = "auto_reply"
    """An out-of-office or other automatic reply kept on its ticket; in ``tickets show``
    with role ``system``, an automatic answer the gateway sent (an acknowledgement)."""
    NOTICE = "notice"
    """In ``tickets show``, role ``system``: a notice the gateway sent about the ticket on
    its own (a status notice, a pending reminder, the auto-close notice); never stored."""


class SenderKind(enum.StrEnum):
    """What the directory knows of a From address."""

    AGENT = "agent"
    PERSON = "person"
    UNKNOWN = "unknown"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    BOUNCED = "bounced"
    """Delivered, then a delivery status notification said it failed."""


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16,
                values_callable=lambda members: [m.value for m in members])


class SpoolEntry(Base):
    """One received message: raw bytes, envelope and where processing left it."""

    __tablename__ = "spool"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(255))  # smtp | pipe | imap:<mailbox>/<folder>
    mail_from: Mapped[str] = mapped_column(String(512), default="")
    rcpt_tos: Mapped[list[Any]] = mapped_column(default=list)
    peer: Mapped[str] = mapped_column(String(128), default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[SpoolState] = mapped_column(_enum(SpoolState, "spool_state"),
                                              default=SpoolState.RECEIVED)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column()
    ticket_number: Mapped[int | None] = mapped_column(Integer)
    trace: Mapped[list[Any]] = mapped_column(default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Intake hints, e.g. ``{"history": true}`` for an imported backlog (send nothing)."""

    __table_args__ = (Index("ix_spool_state_received", "state", "received_at"),)


class SupportSettings(Base):
    """The ``[support]`` table of the directory: who we are and which domains we serve."""

    __tablename__ = "support_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(320))
    domains: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    licenses: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str] = mapped_column(String(8), default="en")
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    addons: Mapped[list[TeamAddon]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamAddon.id"
    )


class TeamAddon(Base):
    """A premium support add-on bought for one product, valid between two dates."""

    __tablename__ = "team_addons"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    product: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    starts: Mapped[date | None] = mapped_column(Date)
    ends: Mapped[date | None] = mapped_column(Date)
    team: Mapped[Team] = relationship(back_populates="addons")


class Person(Base):
    __tablename__ = "people"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[str | None] = mapped_column(ForeignKey("teams.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    language: Mapped[str] = mapped_column(String(8), default="en")
    champion: Mapped[str] = mapped_column(String(8), default="none")
    can_grant_access: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Agent(Base):
    __tablename__ = "agents"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    departments: Mapped[list[Any]] = mapped_column(default=list)
    languages: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Feature(Base):
    __tablename__ = "features"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[dict[str, Any]] = mapped_column(default=dict)
    url: Mapped[str] = mapped_column(String(1000), default="")


class FeatureUsage(Base):
    __tablename__ = "feature_usage"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    feature_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("team_id", "feature_id", "period"),)


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[dict[str, Any]] = mapped_column(default=dict)
    url: Mapped[str] = mapped_column(String(1000), default="")
    issue_types: Mapped[list[Any]] = mapped_column(default=list)
    popularity: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """A support request; its ``number`` is what people see as ``[#N]``."""

    __tablename__ = "tickets"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"),
                                                 default=TicketStatus.NEW)
    requester: Mapped[str] = mapped_column(String(320), index=True)
    requester_name: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[str | None] = mapped_column(String(64), index=True)
    product: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32), default="technical")
    language: Mapped[str] = mapped_column(String(8), default="en")
    queue: Mapped[str] = mapped_column(String(32), default="en")
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    first_response_due: Mapped[datetime | None] = mapped_column()
    first_response_at: Mapped[datetime | None] = mapped_column()
    entitlement: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    origin_message_id: Mapped[str | None] = mapped_column(String(998))
    resolved_at: Mapped[datetime | None] = mapped_column()
    """When the ticket was last set solved/closed: the reopen window counts from here."""
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    """Set on a new request that repeats an open ticket of the same requester."""
    follows: Mapped[int | None] = mapped_column(Integer)
    """The closed ticket this one continues (a reply that came after the reopen window)."""
    # SLA clock (rules issue): the calendar the target counts on, when a pause
    # (status pending) began, when the target passed unanswered; the issue type.
    sla_calendar: Mapped[str | None] = mapped_column(String(64))
    sla_paused_at: Mapped[datetime | None] = mapped_column()
    breached_at: Mapped[datetime | None] = mapped_column()
    issue_type: Mapped[str | None] = mapped_column(String(64))
    pending_since: Mapped[datetime | None] = mapped_column()
    """When the ticket last started waiting on the customer: set ``pending``, or a public
    agent reply while pending; the reminder and auto-close count from here."""
    pending_reminded_at: Mapped[datetime | None] = mapped_column()
    """When this wait's one reminder was queued (cleared when the wait ends or restarts)."""
    merged_into: Mapped[int | None] = mapped_column(Integer)
    """Set when this ticket turned out to be part of another one's conversation and was
    joined into it (threading, or an agent's ``#merge``): its messages, ids and replies
    now go there."""
    owner: Mapped[str | None] = mapped_column(String(320))
    """The agent who owns the ticket (``#assign``): an address of the directory's agents."""

    messages: Mapped[list[MessageRecord]] = relationship(
        back_populates="ticket", order_by="MessageRecord.id"
    )
    participants: Mapped[list[Participant]] = relationship(
        back_populates="ticket", order_by="Participant.id"
    )

    # The hub's lists (gateway/hub/listing.py): a person's or a team's tickets, newest first.
    __table_args__ = (Index("ix_tickets_requester_updated", "requester", "updated_at"),
                      Index("ix_tickets_team_updated", "team_id", "updated_at"),
                      # Insights (gateway/insights.py): covers the team's counts, in order.
                      Index("ix_tickets_team_insights", "team_id", "duplicate_of", "product",
                            "issue_type", "category", "status", "first_response_at",
                            "created_at"))


class Participant(Base):
    """Someone who took part in a ticket; reply tokens name one of these."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    ticket: Mapped[Ticket] = relationship(back_populates="participants")

    __table_args__ = (UniqueConstraint("ticket_number", "email"),)


class MessageRecord(Base):
    """One message on a ticket, with who wrote it and why it landed here."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    spool_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                                 index=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    team_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="public")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    full_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    threaded_by: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[list[Any]] = mapped_column(default=list)
    """Warnings for the humans reading the ticket, e.g. an unverified privileged sender."""
    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[AttachmentRecord]] = relationship(
        back_populates="message", order_by="AttachmentRecord.id"
    )


class AttachmentRecord(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    message: Mapped[MessageRecord] = relationship(back_populates="attachments")


class MessageRef(Base):
    """Index of every Message-ID we stored or sent, pointing at its ticket (threading)."""

    __tablename__ = "message_refs"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998))
    message_id_hash: Mapped[str] = mapped_column(String(64), index=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out

    __table_args__ = (UniqueConstraint("message_id_hash", "ticket_number"),)


class MessageMention(Base):
    """An id a stored message names in ``In-Reply-To``/``References``, with its ticket.

    With :class:`MessageRef` (the ids of the messages themselves) it lets a message
    find its ticket whichever of parent, child or sibling was processed first."""

    __tablename__ = "message_mentions"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998))
    message_id_hash: Mapped[str] = mapped_column(String(64), index=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="named")
    """``opening``: named by the message the ticket starts with (a reply that came before
    its parent); ``waiting``: by a later message whose parent we had not stored either;
    ``named``: by a message that found its parent."""

    __table_args__ = (UniqueConstraint("message_id_hash", "ticket_number"),)


class OutboxItem(Base):
    """A message we will send; delivered by the ``deliver`` actor, retried with backoff."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ticket_number: Mapped[int | None] = mapped_column(Integer, index=True)
    spool_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    """The mail as composed, with the secrets of its links redacted (outbound/sealing.py)."""
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The live bytes, encrypted under the gateway key, until the row is sent or dead."""
    recipe: Mapped[dict[str, Any] | None] = mapped_column()
    """What to compose at delivery, while ``raw`` is still empty (``outbound/recipe.py``)."""
    rcpt_mailbox: Mapped[str | None] = mapped_column(String(320))
    """``rcpt_to`` case-folded without ``+detail``: automatic answers are limited per mailbox."""
    rcpt_domain: Mapped[str | None] = mapped_column(String(255))
    for_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_false())
    """Queued in answer to mail whose sender was verified: a verified sender's automatic
    answers are limited by these alone, so forged mail cannot use up their allowance."""
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"),
                                                 default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    bounced_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_outbox_status", "status", "next_attempt_at"),
                      Index("ix_outbox_rcpt_kind_created", "rcpt_to", "kind", "created_at"),
                      Index("ix_outbox_mailbox_kind_created", "rcpt_mailbox", "kind",
                            "created_at"),
                      Index("ix_outbox_domain_kind_created", "rcpt_domain", "kind",
                            "created_at"))


class Lease(Base):
    """A named singleton lease (see ``gateway/leases.py``): who holds it and until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class JobRun(Base):
    """The last run of a scheduled job (``gateway jobs list``): one row per job name."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    as_of: Mapped[datetime] = mapped_column()
    """The clock the job ran as: the wall clock, or ``jobs run --at``."""
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    node: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    """``ok`` or ``failed``."""


class BouncingAddress(Base):
    """An address our mail bounced from (RFC 3464 reports): automatic notices skip it."""

    __tablename__ = "bouncing_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    hard: Mapped[bool] = mapped_column(Boolean, default=False)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_reason: Mapped[str] = mapped_column(Text, default="")


class AccessRequest(Base):
    """An agent's request for access to a team's system (issue 6): who, why, what."""

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_email: Mapped[str | None] = mapped_column(String(320))
    department: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    export: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    via: Mapped[str] = mapped_column(String(16), default="cli")  # cli | mail
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()
    """Set when one recipient activated it: the other links of the request are spent."""


class AccessLink(Base):
    """One emailed activation link: personal, single use, expiring; only its hash is kept."""

    __tablename__ = "access_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    request: Mapped[AccessRequest] = relationship()


class AccessGrant(Base):
    """Access a team's authorised user gave to one agent or a whole department."""

    __tablename__ = "access_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_email: Mapped[str | None] = mapped_column(String(320))
    department: Mapped[str | None] = mapped_column(String(64))
    export: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    duration: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"))
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    granted_by: Mapped[str] = mapped_column(String(320))
    granted_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()  # None: permanent
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    expiry_notified_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (Index("ix_access_grants_team_granted", "team_id", "granted_at"),)


class AccessLogin(Base):
    """A support employee's login into a team's system under a grant, with the reason."""

    __tablename__ = "access_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_email: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()
    grant_id: Mapped[int] = mapped_column(ForeignKey("access_grants.id"))
# -- bulk mail (issue 7): quarterly feature mail, announcements, unsubscribes ---------------
class QuarterlySend(Base):
    """One quarterly feature mail: the unique key makes it one per admin, team and quarter.

    Written in the same transaction as its outbox row, so a second run, a run killed
    half-way or a second node can never queue a second mail for the same key.
    """

    __tablename__ = "quarterly_sends"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_email: Mapped[str] = mapped_column(String(320))
    team_id: Mapped[str] = mapped_column(String(64))
    quarter: Mapped[str] = mapped_column(String(8))
    features: Mapped[list[Any]] = mapped_column(default=list)
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("person_email", "team_id", "quarter"),)


class Announcement(Base):
    """A bulk announcement; its recipients are fixed when it is created (resumable)."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    translations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{lang: {"subject": …, "body": …}}`` besides the English original."""
    audience: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending | done
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class AnnouncementRecipient(Base):
    """One person of an announcement's audience: pending, queued (with its outbox row) or
    skipped (unsubscribed).  Turning pending into queued commits with the outbox row."""

    __tablename__ = "announcement_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    batch: Mapped[int | None] = mapped_column(Integer)
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("announcement_id", "email"),
                      Index("ix_announcement_recipients_status", "announcement_id", "status"),
                      Index("ix_announcement_recipients_email", "email"))


class UnsubscribeToken(Base):
    """The secret of one List-Unsubscribe link: random, stored only as its SHA-256."""

    __tablename__ = "unsubscribe_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    list_name: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class Unsubscribe(Base):
    """A person who no longer wants one kind of bulk mail (never affects ticket mail)."""

    __tablename__ = "unsubscribes"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    list_name: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # web | mail
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("email", "list_name"),)
class ImapFolderState(Base):
    """Where the poller of one mailbox folder stands (``inbound/imap_poller.py``).

    ``uidvalidity`` and ``last_uid`` are the checkpoint: UIDs above ``last_uid``
    are new.  UIDs up to ``window_uid`` (the backlog at the first connection, or
    everything after a UIDVALIDITY change) are only taken when their INTERNALDATE
    is on or after ``since``; those up to ``history_uid`` are imported as history.
    The rest is what ``gateway mailboxes status`` shows.
    """

    __tablename__ = "imap_folders"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(16))  # inbox | sent
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    window_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    history_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    since: Mapped[date | None] = mapped_column(Date)
    taken: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (UniqueConstraint("mailbox", "folder"),)


class TicketEscalation(Base):
    """One escalation level reached by a ticket (warning at a share, breach): sent once."""

    __tablename__ = "ticket_escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"))
    level: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    outbox_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("ticket_number", "level"),)


class SatisfactionLink(Base):
    """The secret of one "was this helpful?" link (``gateway.satisfaction``): random, stored
    only as its SHA-256, for one ticket and the requester it was mailed to; expires; used
    once."""

    __tablename__ = "satisfaction_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class SatisfactionRating(Base):
    """A requester's answer to "was this helpful?": one per ticket (the key says so)."""

    __tablename__ = "satisfaction_ratings"

    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    rating: Mapped[str] = mapped_column(String(8))  # good | bad
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallbackStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class Callback(Base):
    """A phone call-back a person booked (``gateway/callbacks.py``): when to call, about what.

    The window is stored as two UTC instants (what an agent dials by) and the time zone the
    person chose it in (how they and the agents' mail read it).  At most one open booking
    per person, held by a partial unique index so two requests at once cannot both win."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_email: Mapped[str] = mapped_column(String(320))
    team_id: Mapped[str | None] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[CallbackStatus] = mapped_column(_enum(CallbackStatus, "callback_status"),
                                                   default=CallbackStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column()
    done_by: Mapped[str] = mapped_column(String(320), default="")

    __table_args__ = (
        Index("uq_callbacks_open_person", "person_email", unique=True,
              sqlite_where=sql_text("status = 'open'"),
              postgresql_where=sql_text("status = 'open'")),
        Index("ix_callbacks_status_starts", "status", "starts_at"),
    )


class HubSignInLink(Base):
    """One emailed hub sign-in link (``gateway.hub.sign_in``): random, stored only as its
    SHA-256, for one directory person; expires within minutes; used once."""

    __tablename__ = "hub_sign_in_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class HubSignInAttempt(Base):
    """Every sign-in request, known address or not: what the rate limits count."""

    __tablename__ = "hub_sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_hub_sign_in_attempts_email_at", "email", "at"),
                      Index("ix_hub_sign_in_attempts_client_at", "client", "at"))


class HubSession(Base):
    """A signed-in hub visitor: the cookie holds a random id, this row only its SHA-256.
    Ends at sign-out, after ``hub_session_idle`` seconds unused, or ``hub_session_lifetime``
    after it began, whichever comes first."""

    __tablename__ = "hub_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
