"""The "was this helpful?" page of a solved ticket (DESIGN §13): ``/satisfaction/<token>``.

- ``GET`` shows the question (good or bad, and an optional comment) in the requester's
  language.  It only reads: mail scanners and link previews open links, so a GET never
  records anything.
- ``POST`` with ``rating=good|bad``, an optional ``comment`` and the page's CSRF value
  (an HMAC bound to the link, as on the grant pages) records the answer once; a second
  POST gets a page saying it was already recorded, and changes nothing.

Unknown links get 404, used and expired ones 410, a form that cannot be verified 403 and
one without a valid rating 400, each with its own page.  Pages send the security headers
of the grant pages (no framing, caching, referrers or outside resources).  The link itself
and what it records are :mod:`gateway.satisfaction`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.grants.pages import PageRenderer, pick_language
from gateway.grants.tokens import csrf_valid, csrf_value
from gateway.models import SatisfactionLink, Ticket
from gateway.notices import display_subject, recipient_language
from gateway.satisfaction import COMMENT_LIMIT, RATINGS, Found, LinkStatus, inspect, record
from gateway.web.body import read_form
from gateway.web.grants import SECURITY_HEADERS

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway

__all__ = ["satisfaction_routes"]

_STATUS = {LinkStatus.UNKNOWN: 404, LinkStatus.USED: 410, LinkStatus.EXPIRED: 410}
_CSRF_PURPOSE = "satisfaction"


def satisfaction_routes(gateway: Gateway) -> list[Route]:
    return SatisfactionSite(gateway).routes()


class SatisfactionSite:
    """The page of one gateway: the coroutines hand database work and rendering to a
    thread, as the grant pages do."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._db = gateway.db
        self._pages = PageRenderer(gateway.settings.templates_dir, section="satisfaction")

    def routes(self) -> list[Route]:
        return [Route("/satisfaction/{token}", self.page, methods=["GET", "POST"])]

    async def page(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        accept = request.headers.get("accept-language", "")
        if request.method == "POST":
            form = await read_form(request, max_fields=10)  # small, no files
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return await run_in_threadpool(self._answer, token, fields, accept)
        return await run_in_threadpool(self._ask, token, accept)

    # -- helpers -------------------------------------------------------------------
    def _render(self, name: str, language: str, context: dict[str, Any],
                status: int = 200) -> Response:
        response = HTMLResponse(self._pages.render(name, language, context), status_code=status)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Language"] = language
        return response

    def _message(self, key: str, language: str, status: int) -> Response:
        return self._render("message", language, {"key": key}, status)

    @staticmethod
    def _language(session: Session, link: SatisfactionLink | None, accept: str) -> str:
        """The requester's language (directory, else the ticket's); the browser's for a link
        we do not know."""
        ticket = session.get(Ticket, link.ticket_number) if link is not None else None
        if link is None or ticket is None:
            return pick_language(accept)
        return pick_language(recipient_language(session, ticket, link.email))

    # -- GET -----------------------------------------------------------------------
    def _ask(self, token: str, accept: str) -> Response:
        """The question; reads only."""
        with self._db.reading() as session:
            found = inspect(session, token, self._gateway.services.now())
            language = self._language(session, found.link, accept)
            if found.status is not LinkStatus.OK:
                return self._message(found.status.value, language, _STATUS[found.status])
            assert found.link is not None
            ticket = session.get(Ticket, found.link.ticket_number)
            assert ticket is not None
            context = {"ticket_number": ticket.number, "subject": display_subject(ticket),
                       "ratings": RATINGS, "comment_limit": COMMENT_LIMIT,
                       "csrf": csrf_value(self._gateway.services.secret, _CSRF_PURPOSE,
                                          found.link.token_hash)}
        return self._render("ask", language, context)

    # -- POST ----------------------------------------------------------------------
    def _answer(self, token: str, form: dict[str, str], accept: str) -> Response:
        """Records the answer after the link, the form's CSRF value and the rating are
        checked; anything refused changes nothing."""
        services = self._gateway.services
        now = services.now()
        with self._db.reading() as session:
            found = inspect(session, token, now)
            language = self._language(session, found.link, accept)
        refusal = self._refusal(found, form, language)
        if refusal is not None:
            return refusal
        rating = form["rating"]
        try:
            with self._db.transaction() as session:
                outcome = record(session, token, rating, form.get("comment", ""), now)
        except IntegrityError:  # another link of the ticket answered at the same moment
            return self._message(LinkStatus.USED.value, language, _STATUS[LinkStatus.USED])
        if outcome.status is not LinkStatus.OK:
            return self._message(outcome.status.value, language, _STATUS[outcome.status])
        return self._render("thanks", language, {"rating": rating})

    def _refusal(self, found: Found, form: dict[str, str], language: str) -> Response | None:
        """The page refusing a posted form, or None when it may be recorded."""
        if found.status is not LinkStatus.OK:
            return self._message(found.status.value, language, _STATUS[found.status])
        assert found.link is not None
        if not csrf_valid(self._gateway.services.secret, _CSRF_PURPOSE, found.link.token_hash,
                          form.get("csrf", "")):
            return self._message("csrf", language, 403)
        if form.get("rating", "") not in RATINGS:
            return self._message("badform", language, 400)
        return None
