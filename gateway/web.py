"""The few web pages mail cannot replace (Starlette); for now the health check.

Activation links, one-click unsubscribe and overviews are added here as routes.
"""

from __future__ import annotations

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.db import Database
from gateway.web_unsubscribe import unsubscribe_routes

__all__ = ["make_web_app"]


def make_web_app(database: Database) -> Starlette:
    async def healthz(request: Request) -> JSONResponse:
        try:
            with database.reading() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - report, never leak
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/healthz", healthz), *unsubscribe_routes(database)])
