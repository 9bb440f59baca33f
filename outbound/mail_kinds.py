"""Every kind of mail the gateway sends, and what each kind's headers must say.

Why a table: whether a mail is an automatic answer (RFC 3834), which ``Auto-Submitted``
value it carries, whether it is bulk mail with ``List-Unsubscribe``, how it threads and
whether it is written for the support team are facts about the *kind*, not choices each
caller makes again.  :func:`outbound.mail.queue_mail` reads them here; the answer gate
(``gateway/pipeline/answer_gate.py``) and delivery-failure reporting
(``outbound/refusals.py``) ask this table instead of keeping their own lists.

A kind's value is what the outbox's ``kind`` column stores: never change one (rows
already queued, the answer gate's counts and the operators' queries depend on it).
Its templates are ``templates/<lang>/<template>/{subject.txt,body.txt,body.html}.j2``,
in all of :data:`outbound.render.LANGUAGES` unless it is written for the support team.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "AUTO_GENERATED",
    "AUTO_REPLIED",
    "MAIL_KINDS",
    "KindSpec",
    "MailKind",
    "Threading",
    "automatic_answers",
    "spec_of",
]

#: RFC 3834: an answer to the recipient's own message (acknowledgement, refusal, …).
AUTO_REPLIED = "auto-replied"
#: RFC 3834: produced by the gateway without being an answer (notices, bulk, grants).
AUTO_GENERATED = "auto-generated"


class MailKind(StrEnum):
    """The outbox ``kind`` of every mail we send (the stored strings, unchanged)."""

    ACKNOWLEDGEMENT = "acknowledgement"
    AGENT_REPLY = "agent_reply"
    AGENTS_NOTICE = "agents_notice"
    ANNOUNCEMENT = "announcement"
    AUTO_CLOSED = "auto_closed"
    CALLBACK_REQUESTED = "callback_requested"
    COLLEAGUE_REPLY = "colleague_reply"
    DELIVERY_FAILED = "delivery_failed"
    DUPLICATE_NOTICE = "duplicate_notice"
    ESCALATION = "escalation"
    GRANT_ACTIVATION = "grant_activation"
    GRANT_EXPIRING = "grant_expiring"
    GRANT_GRANTED = "grant_granted"
    GRANT_REVOKED = "grant_revoked"
    HUB_SIGN_IN = "hub_sign_in"
    PENDING_REMINDER = "pending_reminder"
    QUARTERLY = "quarterly"
    REOPENED = "reopened"
    REPLY_REFUSED = "reply_refused"
    STATUS_NOTICE = "status_notice"
    TEAM_TICKET_COPY = "team_ticket_copy"
    TICKET_ASSIGNED = "ticket_assigned"
    TICKET_LIST = "ticket_list"
    TICKET_MERGED = "ticket_merged"


class Threading(StrEnum):
    """How a kind of mail sits in a conversation."""

    TICKET = "ticket"
    """On a ticket: Reply-To ``support+TOKEN@`` (the recipient's address on the ticket),
    In-Reply-To/References continuing the recipient's thread when the sender gives them."""
    ANSWER = "answer"
    """Answers one mail but belongs to no ticket: In-Reply-To/References, no Reply-To
    (an answer to it is new mail to the support address)."""
    NONE = "none"
    """Starts nothing and answers nothing: no Reply-To, no In-Reply-To, no References."""


@dataclass(frozen=True)
class KindSpec:
    """What every mail of one kind has in common."""

    template: str
    """The folder under ``templates/<lang>/``."""
    auto_submitted: str | None
    """The ``Auto-Submitted`` value; None for a person's words relayed (an agent's reply)."""
    threading: Threading
    automatic_answer: bool = False
    """An automatic answer to someone's mail: it passes the answer gate (DMARC, bounces,
    per-mailbox and per-domain caps) and is counted there."""
    list_headers: bool = False
    """Bulk mail: carries List-Unsubscribe, List-Unsubscribe-Post and Precedence."""
    to_agents: bool = False
    """Written for the support team: English only, and its own delivery failure is never
    reported to the team again (no loop)."""
    relays: bool = False
    """Carries a person's words (an agent's reply, a colleague's, a copy of a request):
    their message is on the ticket already, so the mail is not recorded again."""


_TICKET, _ANSWER, _NONE = Threading.TICKET, Threading.ANSWER, Threading.NONE

#: One line per kind.  Adding a kind: a member above, a line here, its templates.
MAIL_KINDS: MappingProxyType[MailKind, KindSpec] = MappingProxyType({
    MailKind.ACKNOWLEDGEMENT: KindSpec("acknowledgement", AUTO_REPLIED, _TICKET,
                                       automatic_answer=True),
    MailKind.AGENT_REPLY: KindSpec("agent_reply", None, _TICKET, relays=True),
    MailKind.AGENTS_NOTICE: KindSpec("agents_notice", AUTO_GENERATED, _TICKET, to_agents=True),
    MailKind.ANNOUNCEMENT: KindSpec("announcement", AUTO_GENERATED, _NONE, list_headers=True),
    MailKind.AUTO_CLOSED: KindSpec("auto_closed", AUTO_GENERATED, _TICKET),
    MailKind.CALLBACK_REQUESTED: KindSpec("callback_requested", AUTO_GENERATED, _NONE,
                                          to_agents=True),
    MailKind.COLLEAGUE_REPLY: KindSpec("colleague_reply", AUTO_GENERATED, _TICKET,
                                       relays=True),
    MailKind.DELIVERY_FAILED: KindSpec("delivery_failed", AUTO_GENERATED, _NONE,
                                       to_agents=True),
    MailKind.DUPLICATE_NOTICE: KindSpec("duplicate_notice", AUTO_REPLIED, _TICKET,
                                        automatic_answer=True),
    MailKind.ESCALATION: KindSpec("escalation", AUTO_GENERATED, _NONE, to_agents=True),
    MailKind.GRANT_ACTIVATION: KindSpec("grant_activation", AUTO_GENERATED, _NONE),
    MailKind.GRANT_EXPIRING: KindSpec("grant_expiring", AUTO_GENERATED, _NONE),
    MailKind.GRANT_GRANTED: KindSpec("grant_granted", AUTO_GENERATED, _NONE),
    MailKind.GRANT_REVOKED: KindSpec("grant_revoked", AUTO_GENERATED, _NONE),
    MailKind.HUB_SIGN_IN: KindSpec("hub_sign_in", AUTO_GENERATED, _NONE),
    MailKind.PENDING_REMINDER: KindSpec("pending_reminder", AUTO_GENERATED, _TICKET),
    MailKind.QUARTERLY: KindSpec("quarterly", AUTO_GENERATED, _NONE, list_headers=True),
    MailKind.REOPENED: KindSpec("reopened", AUTO_GENERATED, _TICKET, automatic_answer=True),
    MailKind.REPLY_REFUSED: KindSpec("reply_refused", AUTO_REPLIED, _TICKET,
                                     automatic_answer=True),
    MailKind.STATUS_NOTICE: KindSpec("status_notice", AUTO_GENERATED, _TICKET),
    MailKind.TEAM_TICKET_COPY: KindSpec("team_ticket_copy", AUTO_GENERATED, _TICKET,
                                        relays=True),
    MailKind.TICKET_ASSIGNED: KindSpec("ticket_assigned", AUTO_GENERATED, _TICKET,
                                       to_agents=True),
    MailKind.TICKET_LIST: KindSpec("ticket_list", AUTO_REPLIED, _ANSWER,
                                   automatic_answer=True),
    MailKind.TICKET_MERGED: KindSpec("ticket_merged", AUTO_GENERATED, _TICKET),
})


def spec_of(kind: str) -> KindSpec | None:
    """The spec of a stored ``kind`` string; None for a kind this version does not send."""
    try:
        return MAIL_KINDS[MailKind(kind)]
    except ValueError:
        return None


def automatic_answers() -> tuple[str, ...]:
    """The stored kinds the answer gate counts (and lets through only within its limits)."""
    return tuple(kind.value for kind, spec in MAIL_KINDS.items() if spec.automatic_answer)
