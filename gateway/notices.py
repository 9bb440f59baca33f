"""The notices a processed message calls for: what each says, and to whom.

This module builds each notice's view data (the acknowledgement's excerpt and
recommendations, a ticket list's lines, the thread a notice continues) and hands it to
:func:`outbound.mail.queue_mail`, which renders ``templates/<lang>/<kind>/`` and adds the
DESIGN §8 headers its kind calls for (``outbound/mail_kinds.py``): From the support
address, Reply-To carrying the keyed reply token of the recipient, ``[#N]`` in the
subject, and In-Reply-To/References that continue the requester's own thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.models import MessageRecord, OutboxItem, Person, Ticket
from gateway.recommendations import recommend
from gateway.services import Services
from gateway.tickets import REPLY_PREFIX, TICKET_TAG
from gateway.visible_tickets import TicketListing
from inbound.parsing.message import ParsedMail
from inbound.parsing.reply_text import ReplyParts
from outbound.mail import Mail, ReplyAs, queue_mail
from outbound.mail_kinds import MAIL_KINDS, MailKind, automatic_answers

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
    "thread_of",
]

EXCERPT_CHARS = 600


def excerpt(text: str) -> str:
    text = text.strip()
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def queue_acknowledgement(session: Session, services: Services, ticket: Ticket,
                          parsed: ParsedMail, reply: ReplyParts | None, language: str,
                          spool_id: int | None, promise: str | None = None,
                          requester_in_directory: bool | None = None) -> OutboxItem:
    """``requester_in_directory``: whether the requester is a person of the directory, when
    the caller looked it up in this transaction already (``Mail.directory_person``)."""
    context = {
        "ticket_number": ticket.number,
        "ticket_subject": display_subject(ticket),
        "requester_name": ticket.requester_name,
        "excerpt": excerpt(reply.visible if reply else parsed.text),
        "promise": promise,
        "recommendations": recommend(session, ticket, reply.visible if reply else parsed.text,
                                     language),
    }
    return queue_mail(session, services.renderer, Mail(
        MailKind.ACKNOWLEDGEMENT, ticket.requester, context, to_name=ticket.requester_name,
        language=language, reply_as=ReplyAs(ticket, "requester"),
        in_reply_to=parsed.message_id, references=list(parsed.references),
        spool_id=spool_id, directory_person=requester_in_directory,
        compose_later=True), secret=services.secret)  # its view data holds no secret


# --- conversation notices (colleague replies, agent replies, status, duplicates) -------

def recipient_language(session: Session, ticket: Ticket, email: str) -> str:
    """The language a person asked for in the directory, else the ticket's."""
    person = session.get(Person, email)
    return person.language if person is not None else ticket.language


def display_subject(ticket: Ticket) -> str:
    """The ticket's subject for a template; "" when it had none (the template's fallback)."""
    return ticket.subject if ticket.subject != "(no subject)" else ""


def bare_subject(subject: str) -> str:
    """A subject someone wrote, without reply/forward prefixes and ``[#N]`` tags, so that
    ``[#N] `` can go in front of it once."""
    text = subject or ""
    previous = None
    while previous != text:  # "AW: [#4] RE: x": prefixes and tags in any order
        previous = text
        text = TICKET_TAG.sub(" ", REPLY_PREFIX.sub("", text)).strip()
    return " ".join(text.split())


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
    render in this one instead of the recipient's.  ``auto_submitted`` must be what
    ``outbound/mail_kinds.py`` says for ``kind`` (the table decides; a caller that
    disagrees is a bug)."""
    mail_kind = MailKind(kind)
    if auto_submitted != MAIL_KINDS[mail_kind].auto_submitted:
        raise ValueError(f"{kind} carries Auto-Submitted {MAIL_KINDS[mail_kind].auto_submitted}"
                         f", not {auto_submitted} (outbound/mail_kinds.py)")
    return queue_mail(session, services.renderer, Mail(
        mail_kind, to_address,
        {"ticket_number": ticket.number, "ticket_subject": display_subject(ticket), **context},
        to_name=to_name, language=language or recipient_language(session, ticket, to_address),
        reply_as=ReplyAs(reply_ticket or ticket, role), in_reply_to=in_reply_to,
        references=references, attachments=attachments, spool_id=spool_id),
        secret=services.secret)


def queue_ticket_list(session: Session, services: Services, listing: TicketListing, *,
                      to_address: str, to_name: str, language: str, include_old: bool,
                      since: str | None, in_reply_to: str | None, references: Sequence[str],
                      spool_id: int | None) -> OutboxItem:
    """The answer to a ``#tickets`` mail: no ticket, so no ``[#N]`` and no Reply-To token
    (a reply to it is new mail to the support address)."""
    context = {
        "recipient_name": to_name,
        "tickets": [{"number": line.number, "subject": line.subject, "status": line.status,
                     "updated": line.updated} for line in listing.lines],
        "more": listing.more, "include_old": include_old, "since": since}
    return queue_mail(session, services.renderer, Mail(
        MailKind.TICKET_LIST, to_address, context, to_name=to_name, language=language,
        in_reply_to=in_reply_to,
        references=[*references, *([in_reply_to] if in_reply_to else [])],
        spool_id=spool_id), secret=services.secret)


# Built once: building a statement and its cache key cost more than running it.
_NEWEST_MESSAGE_ID_FROM = (
    select(MessageRecord.message_id).where(
        MessageRecord.ticket_number == bindparam("ticket_number"),
        MessageRecord.from_address == bindparam("from_address"),
        MessageRecord.message_id.is_not(None)).order_by(MessageRecord.id.desc()).limit(1))


def thread_of(session: Session, ticket: Ticket, email: str) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for mail to ``email`` on this ticket: their newest
    message, after the ticket's first one, so their client threads it."""
    newest = session.scalar(_NEWEST_MESSAGE_ID_FROM,
                            {"ticket_number": ticket.number, "from_address": email})
    parent = newest or ticket.origin_message_id
    references = [i for i in (ticket.origin_message_id, parent) if i]
    return parent, list(dict.fromkeys(references))


#: The kinds the answer gate counts: ``automatic_answer`` in ``outbound/mail_kinds.py``.
AUTOMATIC_ANSWERS = automatic_answers()
