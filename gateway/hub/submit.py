"""One way in: a reply or a new request written in the hub becomes a mail in the spool.

Why not write tickets directly: the pipeline already decides threading, rules, the
acknowledgement, notices, colleague labelling and the reopen rules, and every one of
those must behave the same whatever the channel.  So the hub writes the RFC 5322 message
the person could have mailed (stdlib ``email``, SMTP policy): From the signed-in person,
To the support address, a reply threaded with In-Reply-To/References to its ticket, the
person's words only in the body; the Subject (their words too) is cleaned to one line and
encoded by the policy, never spliced into header text.  It is spooled with source
``web`` and the session's person (:func:`inbound.spool.store_hub_message`): the sender
authority verifies it exactly when From is that person (method ``hub``).

The product and category chosen on the new-request form travel the way a mail's do: as
envelope recipients, the policy's addresses of that product and category, which the
rules read before any keyword.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.active_policy import current_policy
from gateway.config import Settings
from gateway.db import Database
from gateway.directory import SupportIdentity, support_identity
from gateway.hub.ticket_view import thread_of
from gateway.hub.visitor import HubVisitor
from gateway.models import Product, Team, Ticket, utcnow
from inbound.spool import StoredMessage, store_hub_message
from outbound.compose import POLICY

__all__ = [
    "SUBJECT_LIMIT",
    "TEXT_LIMIT",
    "Attachment",
    "RequestForm",
    "categories",
    "clean_subject",
    "submit_reply",
    "submit_request",
    "team_products",
]

SUBJECT_LIMIT = 200
TEXT_LIMIT = 100_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class RequestForm:
    """A new request as the form gave it (already checked against the offered choices)."""

    subject: str
    text: str
    category: str
    product: str | None = None
    attachments: Sequence[Attachment] = ()


def clean_subject(subject: str) -> str:
    """One line of at most :data:`SUBJECT_LIMIT` characters: no line breaks or controls."""
    return " ".join(_CONTROL.sub(" ", subject).split())[:SUBJECT_LIMIT]


def _clean_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return (" ".join(_CONTROL.sub(" ", base).split())[:150]) or "attachment"


def team_products(session: Session, team_id: str | None) -> list[tuple[str, str]]:
    """``(id, name)`` of the products the team bought support for (the ones a request may
    be about); the form asks only when there are several."""
    if not team_id:
        return []
    team = session.get(Team, team_id)
    ids = sorted({addon.product for addon in (team.addons if team is not None else [])})
    names = {p.id: p.name for p in session.scalars(select(Product).where(Product.id.in_(ids)))}
    return [(pid, names.get(pid, pid)) for pid in ids]


def categories(settings: Settings) -> list[str]:
    """The policy's categories, its default first (technical, administrative, commercial)."""
    spec = current_policy(settings).spec
    return list(dict.fromkeys([spec.default_category, *spec.categories]))


def _address(entry: str, support: SupportIdentity) -> str:
    return entry if "@" in entry else f"{entry}@{support.domain}"


def _routing(settings: Settings, support: SupportIdentity, form: RequestForm) -> list[str]:
    """Envelope recipients that name the chosen product and category to the rules."""
    spec = current_policy(settings).spec
    found: list[str] = []
    product = spec.products.get(form.product or "")
    if product is not None and product.addresses:
        found.append(_address(product.addresses[0], support))
    category = spec.categories.get(form.category)
    if category is not None and category.addresses:
        found.append(_address(category.addresses[0], support))
    return [*found, support.address]


def _message(visitor: HubVisitor, support: SupportIdentity, subject: str, text: str,
             attachments: Sequence[Attachment]) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(display_name=clean_subject(visitor.name), addr_spec=visitor.email)
    message["To"] = Address(display_name=clean_subject(support.name), addr_spec=support.address)
    message["Subject"] = clean_subject(subject)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(idstring="hub", domain=f"hub.{support.domain}")
    message["MIME-Version"] = "1.0"
    message.set_content(text[:TEXT_LIMIT], charset="utf-8")
    for item in attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not maintype or not subtype or "\n" in item.content_type:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(item.data, maintype=maintype, subtype=subtype,
                               filename=_clean_filename(item.filename))
    return message


def submit_request(database: Database, settings: Settings, visitor: HubVisitor,
                   form: RequestForm) -> StoredMessage:
    """Spool a new request as if ``visitor`` had mailed it; the caller enqueues it."""
    with database.reading() as session:
        support = support_identity(session)
    message = _message(visitor, support, form.subject, form.text, form.attachments)
    return store_hub_message(database, bytes(message), person=visitor.email,
                             rcpt_tos=_routing(settings, support, form))


def submit_reply(database: Database, visitor: HubVisitor, ticket_number: int, text: str,
                 attachments: Sequence[Attachment] = ()) -> StoredMessage:
    """Spool ``visitor``'s reply on a ticket they may see (the caller checked), threaded
    to it as a mail client would; the caller enqueues it."""
    with database.reading() as session:
        support = support_identity(session)
        ticket = session.get(Ticket, ticket_number)
        if ticket is None:
            raise LookupError(f"no ticket #{ticket_number}")
        in_reply_to, references = thread_of(session, ticket)
        subject = f"Re: [#{ticket.number}] {ticket.subject}"
    message = _message(visitor, support, subject, text, attachments)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to if in_reply_to.startswith("<") \
            else f"<{in_reply_to}>"
        message["References"] = " ".join(r if r.startswith("<") else f"<{r}>"
                                          for r in references)
    return store_hub_message(database, bytes(message), person=visitor.email,
                             rcpt_tos=[support.address])
