"""The notices a processed message calls for, composed and put in the outbox.

Every notice is built here from a template (``templates/<lang>/<kind>/``) and the
DESIGN §8 headers: From the support address, Reply-To carrying the keyed reply
token of the recipient, ``[#N]`` in the subject, and In-Reply-To/References that
continue the requester's own thread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory import support_identity
from gateway.models import MessageRecord, OutboxItem, Person, Ticket
from gateway.recommendations import recommend
from gateway.services import Services
from gateway.tickets import make_reply_token, participant_for
from gateway.visible_tickets import TicketListing
from inbound.parsing.message import ParsedMail
from inbound.parsing.reply_text import ReplyParts
from outbound.compose import compose, make_message_id
from outbound.outbox import add_to_outbox

__all__ = [
    "AUTOMATIC_ANSWERS",
    "EXCERPT_CHARS",
    "bare_subject",
    "display_subject",
    "excerpt",
    "queue_acknowledgement",
    "queue_notice",
    "queue_ticket_list",
    "recipient_language",
    "reply_address",
    "thread_of",
]

EXCERPT_CHARS = 600


def reply_address(services: Services, session: Session, ticket: Ticket, recipient: str,
                  role: str) -> str:
    """``support+TOKEN@domain`` naming this ticket and this recipient."""
    support = support_identity(session)
    participant = participant_for(session, ticket, recipient, role)
    token = make_reply_token(services.secret, ticket.number, participant.id)
    return f"{support.local_part}+{token}@{support.domain}"


def excerpt(text: str) -> str:
    text = text.strip()
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def queue_acknowledgement(session: Session, services: Services, ticket: Ticket,
                          parsed: ParsedMail, reply: ReplyParts | None, language: str,
                          spool_id: int | None, promise: str | None = None) -> OutboxItem:
    support = support_identity(session)
    rendered = services.renderer.render("acknowledgement", language, {
        "support_name": support.name,
        "ticket_number": ticket.number,
        "ticket_subject": ticket.subject if ticket.subject != "(no subject)" else "",
        "requester_name": ticket.requester_name,
        "excerpt": excerpt(reply.visible if reply else parsed.text),
        "promise": promise,
        "recommendations": recommend(session, ticket, reply.visible if reply else parsed.text,
                                     language),
    })
    references = list(parsed.references)
    message = compose(
        from_name=support.name, from_address=support.address,
        to_address=ticket.requester, to_name=ticket.requester_name,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=make_message_id(support.domain),
        reply_to=reply_address(services, session, ticket, ticket.requester, "requester"),
        in_reply_to=parsed.message_id, references=references,
        auto_submitted="auto-replied", language=rendered.language,
        extra_headers={"X-Loop": support.address},
    )
    return add_to_outbox(session, message, kind="acknowledgement", mail_from=support.address,
                         rcpt_to=ticket.requester, ticket_number=ticket.number,
                         spool_id=spool_id, secret=services.secret)


# --- conversation notices (colleague replies, agent replies, status, duplicates) -------

def recipient_language(session: Session, ticket: Ticket, email: str) -> str:
    """The language a person asked for in the directory, else the ticket's."""
    person = session.get(Person, email)
    return person.language if person is not None else ticket.language


def display_subject(ticket: Ticket) -> str:
    """The ticket's subject for a template; "" when it had none (the template's fallback)."""
    return ticket.subject if ticket.subject != "(no subject)" else ""


_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|rif|r|i|antw|doorst|tr)\s*(?:\[\d+\])?\s*[:：]\s*"
    r"|\[#\d+\]\s*)+", re.IGNORECASE)
_TICKET_TAG = re.compile(r"\s*\[#\d+\]\s*")


def bare_subject(subject: str) -> str:
    """A subject someone wrote, without reply/forward prefixes and ``[#N]`` tags, so that
    ``[#N] `` can go in front of it once."""
    return " ".join(_TICKET_TAG.sub(" ", _REPLY_PREFIX.sub("", subject or "")).split())


def queue_notice(session: Session, services: Services, ticket: Ticket, *, kind: str,
                 to_address: str, to_name: str, role: str, context: dict[str, Any],
                 spool_id: int | None, auto_submitted: str | None = "auto-generated",
                 in_reply_to: str | None = None, references: Sequence[str] = (),
                 attachments: Sequence[tuple[str, str, bytes]] = (),
                 reply_ticket: Ticket | None = None, language: str | None = None
                 ) -> OutboxItem:
    """Render ``kind`` in the recipient's language and put it in the outbox.

    ``reply_ticket``: the ticket whose reply address goes into Reply-To (default: this
    one; a duplicate notice points at the ticket that holds the request).  ``language``:
    render in this one instead (notices to the support team are in English)."""
    support = support_identity(session)
    language = language or recipient_language(session, ticket, to_address)
    rendered = services.renderer.render(kind, language, {
        "support_name": support.name, "ticket_number": ticket.number,
        "ticket_subject": display_subject(ticket), **context})
    replies_go_to = reply_ticket or ticket
    message = compose(
        from_name=support.name, from_address=support.address,
        to_address=to_address, to_name=to_name,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=make_message_id(support.domain),
        reply_to=reply_address(services, session, replies_go_to, to_address, role),
        in_reply_to=in_reply_to, references=references,
        auto_submitted=auto_submitted, language=rendered.language,
        extra_headers={"X-Loop": support.address}, attachments=attachments,
    )
    return add_to_outbox(session, message, kind=kind, mail_from=support.address,
                         rcpt_to=to_address, ticket_number=replies_go_to.number,
                         spool_id=spool_id, secret=services.secret)


def queue_ticket_list(session: Session, services: Services, listing: TicketListing, *,
                      to_address: str, to_name: str, language: str, include_old: bool,
                      since: str | None, in_reply_to: str | None, references: Sequence[str],
                      spool_id: int | None) -> OutboxItem:
    """The answer to a ``#tickets`` mail: no ticket, so no ``[#N]`` and no Reply-To token
    (a reply to it is new mail to the support address)."""
    support = support_identity(session)
    rendered = services.renderer.render("ticket_list", language, {
        "support_name": support.name, "recipient_name": to_name,
        "tickets": [{"number": line.number, "subject": line.subject, "status": line.status,
                     "updated": line.updated} for line in listing.lines],
        "more": listing.more, "include_old": include_old, "since": since})
    message = compose(
        from_name=support.name, from_address=support.address,
        to_address=to_address, to_name=to_name,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=make_message_id(support.domain),
        in_reply_to=in_reply_to, references=[*references, *([in_reply_to] if in_reply_to else [])],
        auto_submitted="auto-replied", language=rendered.language,
        extra_headers={"X-Loop": support.address},
    )
    return add_to_outbox(session, message, kind="ticket_list", mail_from=support.address,
                         rcpt_to=to_address, spool_id=spool_id, secret=services.secret)


def thread_of(session: Session, ticket: Ticket, email: str) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for mail to ``email`` on this ticket: their newest
    message, after the ticket's first one, so their client threads it."""
    newest = session.scalar(
        select(MessageRecord.message_id).where(
            MessageRecord.ticket_number == ticket.number, MessageRecord.from_address == email,
            MessageRecord.message_id.is_not(None)).order_by(MessageRecord.id.desc()).limit(1))
    parent = newest or ticket.origin_message_id
    references = [i for i in (ticket.origin_message_id, parent) if i]
    return parent, list(dict.fromkeys(references))


AUTOMATIC_ANSWERS = ("acknowledgement", "duplicate_notice", "reply_refused", "reopened",
                     "ticket_list")
