"""One-click unsubscribe pages (RFC 8058): ``/unsubscribe/{token}``.

- ``POST`` unsubscribes at once, without login: that is what a mail provider sends when
  the user clicks its "unsubscribe" button (body ``List-Unsubscribe=One-Click``).  No
  CSRF token is possible there; forgery is prevented by the token itself (160 random
  bits, only its hash is stored, one address and one list, expiring; see
  :mod:`gateway.unsubscribe`).
- ``GET`` only shows a confirmation page with a button that POSTs: link scanners and
  prefetchers open links, so a GET never changes anything.

Only bulk lists are affected; mail about the person's tickets keeps coming.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.db import Database
from gateway.unsubscribe import LISTS, lookup, redeem

__all__ = ["unsubscribe_routes"]

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; form-action 'self'"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title></head>"
        "<body style=\"font-family:Arial,Helvetica,sans-serif;max-width:36em;margin:3em auto;\">"
        f"<h1 style=\"font-size:1.4em;\">{escape(title)}</h1>{body}</body></html>")
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


_UNKNOWN = ("Unknown link", "<p>This unsubscribe link is unknown or has expired. "
            "You can unsubscribe with the link in a newer email.</p>")


def unsubscribe_routes(database: Database) -> list[Route]:
    async def confirm(request: Request) -> HTMLResponse:
        token = str(request.path_params["token"])
        with database.reading() as session:
            row = lookup(session, token)
            if row is None:
                return _page(*_UNKNOWN, status=404)
            email, list_label, used = row.email, LISTS[row.list_name], row.used_at is not None
        if used:
            return _page("Unsubscribed", f"<p>{escape(email)} is unsubscribed from "
                         f"{escape(list_label)}.</p>")
        return _page("Unsubscribe", (
            f"<p>Stop sending {escape(list_label)} to <strong>{escape(email)}</strong>?</p>"
            "<p>Mail about your support tickets is not affected.</p>"
            "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" "
            "value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>"))

    async def unsubscribe(request: Request) -> HTMLResponse:
        token = str(request.path_params["token"])
        with database.transaction() as session:
            outcome = redeem(session, token, source="web")
        if not outcome.ok:
            return _page(*_UNKNOWN, status=404)
        return _page("Unsubscribed", (
            f"<p>{escape(outcome.email)} will no longer receive "
            f"{escape(LISTS[outcome.list_name])}.</p>"
            "<p>Mail about your support tickets is not affected.</p>"))

    return [Route("/unsubscribe/{token:str}", confirm, methods=["GET"]),
            Route("/unsubscribe/{token:str}", unsubscribe, methods=["POST"])]
