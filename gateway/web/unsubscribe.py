"""One-click unsubscribe pages (RFC 8058): ``/unsubscribe/{token}``.

- ``POST`` unsubscribes at once, without login: that is what a mail provider sends when
  the user clicks its "unsubscribe" button (body ``List-Unsubscribe=One-Click``).  No
  CSRF token is possible there; forgery is prevented by the token itself (160 random
  bits, only its hash is stored, one address and one list, expiring; see
  :mod:`gateway.bulk.unsubscribe`).
- ``GET`` only shows a confirmation page with a button that POSTs: link scanners and
  prefetchers open links, so a GET never changes anything.

Pages are in the language of the mail the link came in (see :func:`page_language`);
structure in ``templates/pages/unsubscribe/``, words in ``templates/<lang>/pages/
unsubscribe.toml``.  Unknown and expired links get the same 404 page.

Only bulk lists are affected; mail about the person's tickets keeps coming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.bulk.unsubscribe import lookup, redeem, token_hash
from gateway.db import Database
from gateway.grants.pages import PageRenderer, pick_language
from gateway.models import Person, UnsubscribeToken

__all__ = ["page_language", "unsubscribe_routes"]

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; form-action 'self'"}


def page_language(session: Session, email: str | None, accept_language: str) -> str:
    """The language of a page about ``email``'s token.

    The person's directory language comes first, because that is the language of the
    bulk mail the link came in (one not ours gives English, as the mail did).  Only
    when no person is known — an unknown token, or an address not in the directory —
    does the browser's ``Accept-Language`` choose, as on the grant pages; else English.
    """
    person = session.get(Person, email) if email else None
    if person is not None:
        return pick_language(person.language or "")  # "de-DE" → "de"; unknown → English
    return pick_language(accept_language)


def _owner(session: Session, token: str) -> str | None:
    """The address a token was issued to, even expired or used (only to pick a language)."""
    row = session.get(UnsubscribeToken, token_hash(token))
    return row.email if row is not None else None


def unsubscribe_routes(database: Database, templates_dir: Path | None = None) -> list[Route]:
    pages = PageRenderer(templates_dir, section="unsubscribe")

    def page(name: str, language: str, context: dict[str, Any],
             status: int = 200) -> HTMLResponse:
        return HTMLResponse(pages.render(name, language, context), status_code=status,
                            headers={**_HEADERS, "Content-Language": language})

    async def confirm(request: Request) -> HTMLResponse:
        token = str(request.path_params["token"])
        accept = request.headers.get("accept-language", "")
        with database.reading() as session:
            row = lookup(session, token)
            if row is None:
                return page("unknown", page_language(session, _owner(session, token), accept),
                            {}, status=404)
            language = page_language(session, row.email, accept)
            context = {"email": row.email, "list_name": row.list_name}
            used = row.used_at is not None
        if used:
            return page("done", language, {**context, "now": False})
        return page("confirm", language, context)

    async def unsubscribe(request: Request) -> HTMLResponse:
        token = str(request.path_params["token"])
        with database.transaction() as session:
            outcome = redeem(session, token, source="web")
            language = page_language(session, outcome.email or None,
                                     request.headers.get("accept-language", ""))
        if not outcome.ok:
            return page("unknown", language, {}, status=404)
        return page("done", language, {"email": outcome.email, "list_name": outcome.list_name,
                                       "now": True})

    return [Route("/unsubscribe/{token:str}", confirm, methods=["GET"]),
            Route("/unsubscribe/{token:str}", unsubscribe, methods=["POST"])]
