"""The one way to queue a mail: render its kind's templates, compose, add the outbox row.

Why one path: every mail the gateway sends must come From the support identity with
``X-Loop``, a Message-ID in our domain, the ``Auto-Submitted`` value and threading its
kind calls for (``outbound/mail_kinds.py``) and, when it holds secret links, be stored
redacted and sealed (``outbound/sealing.py``).  Callers above (``gateway/notices.py``,
``gateway/grants/mail.py``, ``gateway/bulk/sending.py``, …) only decide *what* a mail
says and to whom, as a :class:`Mail`; this module does the rest, in the caller's
transaction, and never sends (delivery happens after commit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gateway.directory import support_identity
from gateway.models import OutboxItem, Person, Ticket, utcnow
from gateway.tickets import make_reply_token, participant_for
from outbound.compose import Content, Envelope, compose, make_message_id, unwritable_address
from outbound.mail_kinds import MAIL_KINDS, KindSpec, MailKind, Threading
from outbound.outbox import add_recipe_to_outbox, add_to_outbox, add_unwritable_to_outbox
from outbound.recipe import recipe_for
from outbound.render import DEFAULT_LANGUAGE, Renderer

__all__ = ["Mail", "MailKind", "ReplyAs", "queue_mail", "reply_address"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyAs:
    """Whose reply address goes into Reply-To: the recipient, as a participant of
    ``ticket`` with ``role`` (``requester``, ``colleague``, ``agent``)."""

    ticket: Ticket
    role: str


@dataclass(frozen=True)
class Mail:
    """One mail to queue: its kind, its recipient and what its templates print.

    ``context`` is the view data of the kind's templates (``support_name`` is added);
    ``reply_as`` is required exactly for :attr:`Threading.TICKET` kinds and gives the
    outbox row its ticket; ``ticket_number`` names the ticket of other kinds' rows (an
    escalation).  ``list_headers`` are required exactly for bulk kinds.
    """

    kind: MailKind
    to_address: str
    context: Mapping[str, Any]
    to_name: str = ""
    language: str = DEFAULT_LANGUAGE
    reply_as: ReplyAs | None = None
    ticket_number: int | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    list_headers: Mapping[str, str] = field(default_factory=dict)
    attachments: Sequence[tuple[str, str, bytes]] = ()
    spool_id: int | None = None
    directory_person: bool | None = None
    """Whether ``to_address`` is a person of the directory, when the caller looked it up
    in this transaction already (identify-sender did, for the sender); None: ask."""
    compose_later: bool = False
    """Store a recipe and compose at delivery, outside this transaction
    (``outbound/recipe.py``).  Only for view data that never holds a secret: the recipe
    waits in the database in clear until delivery (plain JSON with no secret link is
    checked as well; anything else is composed now)."""


def reply_address(session: Session, secret: bytes, ticket: Ticket, recipient: str,
                  role: str) -> str:
    """``support+TOKEN@domain`` naming this ticket and this recipient."""
    support = support_identity(session)
    participant = participant_for(session, ticket, recipient, role)
    token = make_reply_token(secret, ticket.number, participant.id)
    return f"{support.local_part}+{token}@{support.domain}"


def _check(spec: KindSpec, mail: Mail) -> None:
    """A mail that contradicts its kind's row is a bug in its builder: refuse it."""
    if (spec.threading is Threading.TICKET) != (mail.reply_as is not None):
        raise ValueError(f"{mail.kind}: reply_as is required exactly for ticket mail")
    if spec.threading is Threading.NONE and (mail.in_reply_to or mail.references):
        raise ValueError(f"{mail.kind} answers nothing: no In-Reply-To or References")
    if spec.list_headers != bool(mail.list_headers):
        raise ValueError(f"{mail.kind}: list headers are required exactly for bulk mail")


def _hub_url(session: Session, renderer: Renderer, spec: KindSpec, mail: Mail) -> str:
    """The hub's address for a mail to a person of the directory (DESIGN §14: "mail the
    gateway sends to directory people links to the hub"); "" for anyone else (a stranger
    has no hub to sign in to) and for mail to the support team.  A stranger is not in the
    identity map, so asking costs a SELECT each time: the caller's answer is used when it
    has one (``Mail.directory_person``)."""
    if spec.to_agents or not renderer.hub_url:
        return ""
    known = mail.directory_person
    if known is None:
        known = session.get(Person, mail.to_address.strip().lower()) is not None
    return renderer.hub_url if known else ""


def _ticket_number(mail: Mail) -> int | None:
    return mail.reply_as.ticket.number if mail.reply_as is not None else mail.ticket_number


def queue_mail(session: Session, renderer: Renderer, mail: Mail, *,
               secret: bytes | None) -> OutboxItem:
    """Render, compose and add ``mail`` to the outbox (caller's transaction).

    ``secret`` is the gateway key: it signs the reply token and seals a mail with secret
    links; without it (delivery has no key at hand) the row is stored as composed.
    Mail for the support team is rendered in English whatever ``mail.language`` says.
    """
    spec = MAIL_KINDS[mail.kind]
    _check(spec, mail)
    support = support_identity(session)
    unwritable = unwritable_address(mail.to_address)
    if unwritable is not None:  # a dead row says why; the message that queued it goes on
        log.warning("%s to %r not queued: %s", mail.kind.value, mail.to_address, unwritable)
        return add_unwritable_to_outbox(
            session, kind=mail.kind.value, mail_from=support.address, rcpt_to=mail.to_address,
            message_id=make_message_id(support.domain), subject="", reason=(
                f"not sent: the recipient cannot be written in a mail header ({unwritable})"),
            ticket_number=_ticket_number(mail), spool_id=mail.spool_id)
    language = DEFAULT_LANGUAGE if spec.to_agents else mail.language
    hub_url = _hub_url(session, renderer, spec, mail)
    context = {"support_name": support.name, "hub_url": hub_url, **mail.context}
    reply_to = None
    if mail.reply_as is not None:
        if secret is None:
            raise ValueError(f"{mail.kind}: a reply token needs the gateway key")
        reply_to = reply_address(session, secret, mail.reply_as.ticket, mail.to_address,
                                 mail.reply_as.role)
    envelope = Envelope(from_name=support.name, from_address=support.address,
                        to_address=mail.to_address, to_name=mail.to_name,
                        message_id=make_message_id(support.domain), reply_to=reply_to,
                        in_reply_to=mail.in_reply_to, references=mail.references)
    extra_headers = {**mail.list_headers, "X-Loop": support.address}
    if mail.compose_later and not mail.attachments:
        recipe = recipe_for(spec.template, language, context, envelope, date=utcnow(),
                            auto_submitted=spec.auto_submitted, extra_headers=extra_headers)
        if recipe is not None:
            # The subject now (outbox listings show it, and a broken subject template
            # fails this transaction as before); the bodies at delivery.
            subject = renderer.render_subject(spec.template, language, context)
            return add_recipe_to_outbox(
                session, recipe, subject=subject, kind=mail.kind.value,
                ticket_number=_ticket_number(mail), spool_id=mail.spool_id)
    rendered = renderer.render(spec.template, language, context)
    message = compose(
        envelope,
        Content(subject=rendered.subject, text=rendered.text, html=rendered.html,
                language=rendered.language, attachments=mail.attachments),
        auto_submitted=spec.auto_submitted,
        extra_headers=extra_headers,
    )
    return add_to_outbox(session, message, kind=mail.kind.value, mail_from=support.address,
                         rcpt_to=mail.to_address, ticket_number=_ticket_number(mail),
                         spool_id=mail.spool_id, secret=secret, minted_id=True,
                         bodies=None if mail.attachments else (rendered.text, rendered.html))
