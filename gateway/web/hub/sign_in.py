"""Signing in and out of the hub (the links themselves are :mod:`gateway.hub.sign_in`).

- ``GET /hub/sign-in``: the address form.  It sets a short-lived random cookie; the form's
  CSRF value is bound to it, so another site cannot make a browser ask for links.
- ``POST /hub/sign-in``: mails a link to a directory person; the page is the same for any
  address, also over its hourly limit (then a link goes out only when the person has no
  live one, see :mod:`gateway.hub.sign_in`).  Over the client's hourly limit a page says
  so (429).
- ``GET /hub/sign-in/<token>``: a button, nothing else (mail scanners open links).
- ``POST /hub/sign-in/<token>``: with the CSRF value bound to the link, spends it, starts a
  session (cookie ``hub_session``) and redirects to ``/hub/tickets``.
- ``POST /hub/sign-out``: ends the session (CSRF of the session).
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.grants.tokens import csrf_valid, csrf_value, hash_token
from gateway.hub.sessions import end_session
from gateway.hub.sign_in import LinkState, Requested, inspect_link, redeem_link, request_link
from gateway.models import Person
from gateway.web.body import read_form
from gateway.web.hub.site import SESSION_COOKIE, HubRequest, HubSite, browser_language

__all__ = ["routes"]

_FORM_COOKIE = "hub_sign_in"
_FORM_PURPOSE = "hub-sign-in"
_LINK_PURPOSE = "hub-link"
_LINK_STATUS = {LinkState.UNKNOWN: 404, LinkState.USED: 410, LinkState.EXPIRED: 410}
_SIGNED_OUT_NOTICES = {"signed_out"}


def routes(site: HubSite) -> list[Route]:
    pages = SignInPages(site)
    return [
        Route("/hub", pages.home, methods=["GET"]),
        Route("/hub/sign-in", pages.ask, methods=["GET", "POST"]),
        Route("/hub/sign-in/{token}", pages.link, methods=["GET", "POST"]),
        Route("/hub/sign-out", site.endpoint(pages.sign_out), methods=["POST"]),
    ]


async def _fields(request: Request) -> dict[str, str]:
    form = await read_form(request, max_fields=10)  # small, no files
    return {k: v for k, v in form.items() if isinstance(v, str)}


class SignInPages:
    def __init__(self, site: HubSite) -> None:
        self._site = site

    async def home(self, request: Request) -> Response:
        return self._site.redirect("/tickets")

    async def ask(self, request: Request) -> Response:
        if request.method == "POST":
            fields = await _fields(request)
            return await run_in_threadpool(self._request_link, request, fields)
        return self._form(request)

    async def link(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        if request.method == "POST":
            fields = await _fields(request)
            return await run_in_threadpool(self._redeem, request, token, fields)
        return await run_in_threadpool(self._confirm, request, token)

    # -- asking for a link ---------------------------------------------------------------
    def _form(self, request: Request, *, status: int = 200, key: str = "") -> Response:
        site = self._site
        form_id = request.cookies.get(_FORM_COOKIE) or secrets.token_urlsafe(24)
        notice = request.query_params.get("notice", "")
        response = site.render(None, "sign_in", {
            "form_csrf": csrf_value(site.services.secret, _FORM_PURPOSE, form_id),
            "action": site.url("/sign-in"), "problem": key},
            status=status, language=browser_language(request),
            notice=notice if notice in _SIGNED_OUT_NOTICES else "")
        site.set_cookie(response, _FORM_COOKIE, form_id, max_age=3600)
        return response

    def _request_link(self, request: Request, fields: dict[str, str]) -> Response:
        site = self._site
        language = browser_language(request)
        form_id = request.cookies.get(_FORM_COOKIE, "")
        if not form_id or not csrf_valid(site.services.secret, _FORM_PURPOSE, form_id,
                                         fields.get("csrf", "")):
            return site.message(None, "csrf", 403, language=language)
        email = fields.get("email", "").strip()
        if "@" not in email or len(email) > 320:
            return self._form(request, status=400, key="bad_address")
        client = request.client.host if request.client is not None else ""
        now = site.services.now()
        with site.db.transaction() as session:
            outcome, outbox_id = request_link(session, site.services, email, client, now)
        if outbox_id is not None:
            site.gateway.enqueue_delivery(outbox_id)
        if outcome is Requested.LIMITED:
            return site.message(None, "limited", 429, language=language)
        return site.render(None, "sign_in_sent", {}, language=language)

    # -- the link --------------------------------------------------------------------------
    def _language_of(self, email: str | None, request: Request) -> str:
        if email:
            with self._site.db.reading() as session:
                person = session.get(Person, email)
                if person is not None:
                    return person.language
        return browser_language(request)

    def _confirm(self, request: Request, token: str) -> Response:
        """The button; reads only."""
        site = self._site
        with site.db.reading() as session:
            found = inspect_link(session, token, site.services.now())
        email = found.link.email if found.link is not None else None
        language = self._language_of(email, request)
        if found.state is not LinkState.OK:
            return site.message(None, f"link_{found.state.value}", _LINK_STATUS[found.state],
                                language=language)
        return site.render(None, "sign_in_confirm", {
            "link_csrf": csrf_value(site.services.secret, _LINK_PURPOSE, hash_token(token)),
            "email": email}, language=language)

    def _redeem(self, request: Request, token: str, fields: dict[str, str]) -> Response:
        site = self._site
        language = browser_language(request)
        if not csrf_valid(site.services.secret, _LINK_PURPOSE, hash_token(token),
                          fields.get("csrf", "")):
            return site.message(None, "csrf", 403, language=language)
        with site.db.transaction() as session:
            state, session_id = redeem_link(session, token, site.services.now())
        if state is not LinkState.OK or session_id is None:
            return site.message(None, f"link_{state.value}", _LINK_STATUS[state],
                                language=language)
        response = site.redirect("/tickets")
        site.set_cookie(response, SESSION_COOKIE, session_id)
        site.clear_cookie(response, _FORM_COOKIE)
        return response

    # -- signing out -----------------------------------------------------------------------
    def sign_out(self, request: HubRequest) -> Response:
        site = self._site
        with site.db.transaction() as session:
            end_session(session, request.visitor.session_hash, site.services.now())
        response = site.redirect("/sign-in", notice="signed_out")
        site.clear_cookie(response, SESSION_COOKIE)
        return response
