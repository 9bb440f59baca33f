"""``GET /hub/tickets/<N>``: a ticket's public history and, while it may be answered, a
reply form; ``POST /hub/tickets/<N>/reply``: the reply, spooled as the visitor's mail and
processed like mail (:mod:`gateway.hub.submit`), then 303 back with a notice.

A ticket the visitor may not see answers 404, exactly like one that does not exist; one
merged into another the visitor may see leads there.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gateway.hub.submit import TEXT_LIMIT, Attachment, submit_reply
from gateway.hub.ticket_view import REPLYABLE, public_history, visible_ticket
from gateway.models import Ticket
from gateway.web.hub.site import HubRequest, HubSite
from gateway.web.params import number_in

__all__ = ["routes"]

_ROLES = ("requester", "colleague", "agent", "cc")


def routes(site: HubSite) -> list[Route]:
    pages = TicketPages(site)
    return [
        # {number}, not {number:int}: Starlette's converter raised (500) on 5,000 digits
        Route("/hub/tickets/{number}", site.endpoint(pages.show), methods=["GET"]),
        Route("/hub/tickets/{number}/reply", site.endpoint(pages.reply, files=True),
              methods=["POST"]),
    ]


class TicketPages:
    def __init__(self, site: HubSite) -> None:
        self._site = site

    def _number(self, request: HubRequest) -> int | None:
        """The ticket number of the path; None for anything that is none (a 404)."""
        return number_in(request.path_params["number"])

    def show(self, request: HubRequest) -> Response:
        site, visitor = self._site, request.visitor
        number = self._number(request)
        if number is None:
            return site.not_found(visitor)
        with site.db.reading() as session:
            ticket = visible_ticket(session, visitor, number, site.settings.colleague_cutoff)
            if ticket is None:
                return site.not_found(visitor)
            if ticket.merged_into is not None and visible_ticket(
                    session, visitor, ticket.merged_into, site.settings.colleague_cutoff):
                return site.redirect(f"/tickets/{ticket.merged_into}")  # its history is there
            context = self._context(ticket, visitor.email)
        return site.render(visitor, "ticket", context,
                           nav="tickets" if context["own"] else "team",
                           notice=site.notice_of(request))

    def _context(self, ticket: Ticket, email: str) -> dict[str, Any]:
        site = self._site
        messages = [{"from": m["from_name"] or m["from"], "role": m["role"] if m["role"] in
                     _ROLES else "agent", "at": (m["received_at"] or "").replace("T", " ")[:16],
                     "text": m["text"], "files": [a["filename"] for a in m["attachments"]
                                                  if not a["inline"]]}
                    for m in public_history(ticket)]
        return {"number": ticket.number, "subject": ticket.subject, "status":
                ticket.status.value, "requester": ticket.requester, "own":
                ticket.requester == email, "messages": messages,
                "updated": ticket.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
                "replyable": ticket.status in REPLYABLE,
                "reopens": ticket.status.value == "solved",
                "reply_url": site.url(f"/tickets/{ticket.number}/reply"),
                "new_url": site.url("/new"), "text_limit": TEXT_LIMIT,
                "attachment_limit_mb": max(1, site.settings.hub_attachment_limit // 1_000_000)}

    def reply(self, request: HubRequest) -> Response:
        site, visitor = self._site, request.visitor
        number = self._number(request)
        if number is None:
            return site.not_found(visitor)
        with site.db.reading() as session:
            ticket = visible_ticket(session, visitor, number, site.settings.colleague_cutoff)
            if ticket is None:
                return site.not_found(visitor)
            replyable = ticket.status in REPLYABLE
        if not replyable:
            return site.message(visitor, "not_replyable", 409)
        text = request.form.get("text", "").strip()
        if not text:
            return site.redirect(f"/tickets/{number}", notice="empty_reply")
        stored = submit_reply(site.db, visitor, number, text, [
            Attachment(f.filename, f.content_type, f.data) for f in request.files])
        site.gateway.enqueue_processing(stored.spool_id)
        return site.redirect(f"/tickets/{number}", notice="reply_received")
