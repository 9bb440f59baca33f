"""``GET /hub/recommendations``: help articles for the visitor, from their team's tickets
(their own without a team), refreshed with every ticket; the most popular without any
(:func:`gateway.recommendations.recommend_for`)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from gateway.recommendations import recommend_for
from gateway.web.hub.site import HubRequest, HubSite

__all__ = ["routes"]


def routes(site: HubSite) -> list[Route]:
    def show(request: HubRequest) -> Response:
        visitor = request.visitor
        with site.db.reading() as session:
            chosen = recommend_for(session, visitor.email, visitor.team_id, visitor.language)
        articles = [{"id": r.id, "title": r.title, "url": r.url, "for_history": r.for_history}
                    for r in chosen]
        return site.render(visitor, "recommendations", {
            "articles": articles, "tailored": any(a["for_history"] for a in articles)},
            nav="recommendations")

    return [Route("/hub/recommendations", site.endpoint(show), methods=["GET"])]
