"""``GET /hub/tickets``: my tickets; ``?scope=team`` (admins): the team's tickets from the
colleague cut-off on.  Filters ``status``, ``since``, ``until`` (YYYY-MM-DD, last update)
and ``page`` come from the query; anything unreadable is ignored, never an error."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gateway.hub.listing import STATUSES, TicketFilter, TicketPage, list_tickets
from gateway.web.hub.site import HubRequest, HubSite
from gateway.web.params import number_in

__all__ = ["routes"]


def routes(site: HubSite) -> list[Route]:
    pages = TicketListPages(site)
    return [Route("/hub/tickets", site.endpoint(pages.list_page), methods=["GET"])]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filter(query: dict[str, str] | Any) -> TicketFilter:
    return TicketFilter(status=query.get("status") or None, since=_day(query.get("since", "")),
                        until=_day(query.get("until", "")),
                        page=number_in(query.get("page", "1"), 99_999) or 1)


class TicketListPages:
    def __init__(self, site: HubSite) -> None:
        self._site = site

    def list_page(self, request: HubRequest) -> Response:
        site, visitor = self._site, request.visitor
        team_scope = request.query.get("scope") == "team"
        if team_scope and not (visitor.is_admin and visitor.team_id):
            return site.message(visitor, "admins_only", 403)
        wanted = _filter(request.query)
        with site.db.reading() as session:
            if team_scope and visitor.team_id:
                found = list_tickets(session, wanted=wanted, team=(
                    visitor.team_id, site.settings.colleague_cutoff))
            else:
                found = list_tickets(session, requester=visitor.email, wanted=wanted)
        return site.render(visitor, "tickets", self._context(request, found, wanted,
                                                             team_scope),
                           nav="team" if team_scope else "tickets",
                           notice=site.notice_of(request))

    def _context(self, request: HubRequest, found: TicketPage, wanted: TicketFilter,
                 team_scope: bool) -> dict[str, Any]:
        site = self._site
        kept = {k: v for k, v in (("scope", "team" if team_scope else ""),
                                  ("status", wanted.status or ""),
                                  ("since", wanted.since.isoformat() if wanted.since else ""),
                                  ("until", wanted.until.isoformat() if wanted.until else ""))
                if v}
        return {
            "team_scope": team_scope, "statuses": STATUSES, "wanted": {
                "status": wanted.status or "", "since": kept.get("since", ""),
                "until": kept.get("until", "")},
            "cutoff": site.settings.colleague_cutoff.isoformat(),
            "tickets": [{"number": t.number, "subject": t.subject, "status": t.status,
                         "updated": t.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
                         "requester": t.requester, "url": site.url(f"/tickets/{t.number}")}
                        for t in found.tickets],
            "list_url": site.url("/tickets"),
            "previous_url": site.url("/tickets", **kept, page=str(found.page - 1))
            if found.page > 1 else "",
            "next_url": site.url("/tickets", **kept, page=str(found.page + 1))
            if found.has_next else "",
            "page": found.page}
