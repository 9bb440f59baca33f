"""The notices a processed message calls for, composed and put in the outbox.

Every notice is built here from a template (``templates/<lang>/<kind>/``) and the
DESIGN §8 headers: From the support address, Reply-To carrying the keyed reply
token of the recipient, ``[#N]`` in the subject, and In-Reply-To/References that
continue the requester's own thread.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.directory import support_identity
from gateway.models import OutboxItem, Ticket
from gateway.services import Services
from gateway.tickets import make_reply_token, participant_for
from inbound.parse import ParsedMail
from inbound.reply_text import ReplyParts
from outbound.compose import compose, make_message_id
from outbound.outbox import add_to_outbox

__all__ = ["EXCERPT_CHARS", "queue_acknowledgement", "reply_address"]

EXCERPT_CHARS = 600


def reply_address(services: Services, session: Session, ticket: Ticket, recipient: str,
                  role: str) -> str:
    """``support+TOKEN@domain`` naming this ticket and this recipient."""
    support = support_identity(session)
    participant = participant_for(session, ticket, recipient, role)
    token = make_reply_token(services.secret, ticket.number, participant.id)
    return f"{support.local_part}+{token}@{support.domain}"


def _excerpt(text: str) -> str:
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
        "excerpt": _excerpt(reply.visible if reply else parsed.text),
        "promise": promise,
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
                         spool_id=spool_id)
