"""``GET /hub/announcements``: news, procedure changes and planned maintenance meant for the
visitor, newest first, in their language when translated
(:func:`gateway.bulk.announcements.visible_announcements`)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from gateway.bulk.announcements import visible_announcements
from gateway.models import Person
from gateway.web.hub.site import HubRequest, HubSite

__all__ = ["routes"]


def routes(site: HubSite) -> list[Route]:
    def show(request: HubRequest) -> Response:
        visitor = request.visitor
        with site.db.reading() as session:
            person = session.get(Person, visitor.email)
            posted = visible_announcements(session, person, site.services.now().date()
                                           ) if person is not None else []
        items = [{"id": a.id, "subject": a.subject, "body": a.body, "language": a.language,
                  "date": f"{a.created_at:%Y-%m-%d}"} for a in posted]
        return site.render(visitor, "announcements", {"announcements": items},
                           nav="announcements")

    return [Route("/hub/announcements", site.endpoint(show), methods=["GET"])]
