"""The few web pages mail cannot replace (Starlette): the health check, and, when the
app is given the gateway, the access-grant pages and API (``gateway.web.grants``) and the
"was this helpful?" page of solved tickets (``gateway.web.satisfaction``) and the support
hub under ``/hub`` (``gateway.web.hub``).

One-click unsubscribe and other pages are added here as routes.  Every request body is
bounded by :class:`gateway.web.body.BodyLimit` (a small form unless a route allows more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.db import Database
from gateway.web.body import BodyLimit
from gateway.web.unsubscribe import unsubscribe_routes

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway

__all__ = ["make_web_app"]


def make_web_app(database: Database, gateway: Gateway | None = None) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            with database.reading() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - report, never leak
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    templates_dir = gateway.settings.templates_dir if gateway is not None else None
    routes = [Route("/healthz", healthz), *unsubscribe_routes(database, templates_dir)]
    if gateway is not None:
        from gateway.web.grants import grant_routes
        from gateway.web.hub import hub_routes
        from gateway.web.satisfaction import satisfaction_routes

        routes += grant_routes(gateway)  # support access grants (issue 6)
        routes += satisfaction_routes(gateway)  # "was this helpful?" (DESIGN §13)
        routes += hub_routes(gateway)  # the support hub (DESIGN §14)
    # Every request body is bounded (a small form unless a route allows files): one place.
    return Starlette(routes=routes, middleware=[Middleware(BodyLimit)])
