"""``GET /hub/insights`` (team admins only; members get the layout's 403 ``admins_only``): the
admin's own team's insights, from :func:`gateway.insights.team_insights` (the numbers of
``gateway insights``).  No parameter names a team: another team's numbers cannot be asked for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from gateway.insights import Count, TeamInsights, team_insights
from gateway.models import Product
from gateway.web.hub.site import HubRequest, HubSite

__all__ = ["routes"]

TOP_TYPES = 10


def routes(site: HubSite) -> list[Route]:
    def show(request: HubRequest) -> Response:
        visitor = request.visitor
        if visitor.team_id is None:  # an admin of no team: nothing to show
            return site.not_found(visitor)
        with site.db.reading() as session:
            found = team_insights(session, visitor.team_id)
            names = dict(session.execute(select(Product.id, Product.name)).tuples().all())
        return site.render(visitor, "insights", _context(found, names), nav="insights")

    return [Route("/hub/insights", site.endpoint(show, admin=True), methods=["GET"])]


def _rows(counts: tuple[Count, ...], names: dict[str, str] | None = None
          ) -> list[dict[str, Any]]:
    return [{"key": c.key, "name": (names or {}).get(c.key, ""), "tickets": c.tickets}
            for c in counts]


def _duration(seconds: float | None) -> dict[str, int] | None:
    """Days, hours and minutes of a duration (the page words them), rounded to minutes."""
    if seconds is None:
        return None
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return {"days": days, "hours": hours, "minutes": minutes}


def _context(found: TeamInsights, names: dict[str, str]) -> dict[str, Any]:
    rate = found.satisfaction.rate
    return {
        "open_tickets": found.open_tickets, "total": found.total_submitted,
        "duplicates": found.duplicates,
        "products": _rows(found.tickets_per_product, names),
        "issue_types": _rows(found.top_issue_types[:TOP_TYPES]),
        "categories": _rows(found.categories),
        "satisfaction": {"good": found.satisfaction.good, "rated": found.satisfaction.rated,
                         "percent": round(rate * 100) if rate is not None else None},
        "first_response": _duration(found.median_first_response_seconds)}
