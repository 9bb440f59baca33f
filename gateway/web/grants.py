"""Web pages and API of support access grants (Starlette routes, mounted by
:mod:`gateway.web.app`).

- ``GET /grants/activate/<token>``: the confirmation page. It only reads: mail
  scanners and link previews open links, so a GET must never grant anything.
- ``POST /grants/activate/<token>``: grants, with a CSRF value bound to the link;
  the directory is asked again whether the recipient may still grant.
- ``GET /grants/overview/<signed>``: a team's grants and logins for the authorised
  user the signed link was mailed to; ``POST …/revoke`` ends a live grant at once.
- ``GET /api/grants/check?team=…&agent=…&export=…``: for the support tooling, with
  ``Authorization: Bearer <grant_api_key>``; without a configured key it answers 503.

Unknown links get 404, used and expired ones 410, each with its own clear page;
every answer is the same for every other token, so no page tells whether some
other link exists.  Pages forbid framing, caching and referrers.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.grants.durations import DEFAULT_DURATION, DURATIONS
from gateway.grants.mail import format_time, overview_url, subject_label
from gateway.grants.overview import activations, grant_state, grant_view, logins
from gateway.grants.pages import PageRenderer, pick_language
from gateway.grants.service import (
    GrantError,
    LinkLookup,
    LinkRefused,
    LinkStatus,
    activate,
    inspect_link,
    live_grant,
    revoke,
)
from gateway.grants.tokens import csrf_valid, csrf_value, read_overview_token
from gateway.models import AccessGrant, Person, Team
from gateway.web.body import read_form
from gateway.web.params import number_in

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway
    from gateway.services import Services

__all__ = ["SECURITY_HEADERS", "grant_routes"]

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_STATUS = {LinkStatus.UNKNOWN: 404, LinkStatus.USED: 410, LinkStatus.EXPIRED: 410,
           LinkStatus.FORBIDDEN: 403}
_NOTICES = {"revoked", "revoke_failed"}


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def grant_routes(gateway: Gateway) -> list[Route]:
    return GrantSite(gateway).routes()


async def _form(request: Request) -> dict[str, str]:
    """The text fields of a posted form: a small one, no files (``read_form``)."""
    form = await read_form(request, max_fields=10)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _browser_language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language", ""))


class GrantSite:
    """The grant pages and API of one gateway: one coroutine per route, each handing its
    work (database and rendering, which block) to a thread."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._db = gateway.db
        self._pages = PageRenderer(gateway.settings.templates_dir)

    def routes(self) -> list[Route]:
        return [
            Route("/grants/activate/{token}", self.activate_page, methods=["GET", "POST"]),
            Route("/grants/overview/{token}", self.overview_page, methods=["GET"]),
            Route("/grants/overview/{token}/revoke", self.overview_revoke, methods=["POST"]),
            Route("/api/grants/check", self.api_check, methods=["GET"]),
        ]

    # -- routes ----------------------------------------------------------------
    async def activate_page(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        if request.method == "POST":
            return await run_in_threadpool(self._grant, token, await _form(request), request)
        return await run_in_threadpool(self._show, token, request)

    async def overview_page(self, request: Request) -> Response:
        return await run_in_threadpool(self._overview, str(request.path_params["token"]),
                                       request)

    async def overview_revoke(self, request: Request) -> Response:
        return await run_in_threadpool(self._revoke, str(request.path_params["token"]),
                                       await _form(request), request)

    async def api_check(self, request: Request) -> Response:
        return await run_in_threadpool(self._check, dict(request.query_params),
                                       request.headers.get("authorization", ""))

    # -- shared helpers ----------------------------------------------------------
    @property
    def _services(self) -> Services:
        """Looked up per request, not when the routes are made (the key loads lazily)."""
        return self._gateway.services

    def _page(self, name: str, language: str, context: dict[str, Any],
              status: int = 200) -> Response:
        return _secure(HTMLResponse(self._pages.render(name, language, context),
                                    status_code=status))

    def _message(self, key: str, language: str, status: int) -> Response:
        return self._page("message", language, {"key": key}, status)

    def _who(self, session: Session, agent: str | None, department: str | None,
             language: str) -> str:
        if agent:
            return subject_label(session, agent, None)
        return self._pages.catalog(language)["department"].format(name=department)

    def _deliver(self, outbox_ids: Iterable[int]) -> None:
        for outbox_id in outbox_ids:
            self._gateway.enqueue_delivery(outbox_id)

    def _language_of(self, email: str | None, request: Request) -> str:
        """The directory language of ``email``; else the browser's."""
        if email:
            with self._db.reading() as session:
                person = session.get(Person, email)
                if person is not None:
                    return person.language
        return _browser_language(request)

    # -- activation ------------------------------------------------------------
    def _show(self, token: str, request: Request) -> Response:
        """The confirmation page: reads only (scanners open links too)."""
        svc = self._services
        with self._db.reading() as session:
            found = inspect_link(session, token, svc.now())
            if found.status is not LinkStatus.OK:
                recipient = found.link.recipient if found.link is not None else None
                return self._message(found.status.value, self._language_of(recipient, request),
                                     _STATUS[found.status])
            assert found.person is not None
            return self._page("activate", found.person.language,
                              self._activation_form(session, found))

    def _activation_form(self, session: Session, found: LinkLookup) -> dict[str, Any]:
        assert found.request is not None and found.person is not None and found.link
        req, language = found.request, found.person.language
        team = session.get(Team, req.team_id)
        asked_by = subject_label(session, req.requested_by, None) if req.requested_by else ""
        return {
            "asked_by": asked_by, "team_name": team.name if team else req.team_id,
            "who": self._who(session, req.agent_email, req.department, language),
            "reason": req.reason, "export_asked": req.export,
            "durations": DURATIONS, "default_duration": DEFAULT_DURATION,
            "csrf": csrf_value(self._services.secret, "activate", found.link.token_hash)}

    def _grant(self, token: str, form: dict[str, str], request: Request) -> Response:
        """Grants, after the link, the form's CSRF value and its duration are checked."""
        now = self._services.now()
        with self._db.reading() as session:
            found = inspect_link(session, token, now)
        recipient = found.link.recipient if found.link is not None else None
        language = self._language_of(recipient, request)
        refusal = self._grant_refusal(found, form, language)
        if refusal is not None:
            return refusal
        try:
            context, outbox_ids = self._activate(token, form, language, now)
        except LinkRefused as refused:
            return self._message(refused.status.value, language, _STATUS[refused.status])
        self._deliver(outbox_ids)
        return self._page("activated", language, context)

    def _grant_refusal(self, found: LinkLookup, form: dict[str, str],
                       language: str) -> Response | None:
        """The page refusing a grant form, or None when it may be tried."""
        if found.status is not LinkStatus.OK:
            return self._message(found.status.value, language, _STATUS[found.status])
        assert found.link is not None
        if not csrf_valid(self._services.secret, "activate", found.link.token_hash,
                          form.get("csrf", "")):
            return self._message("csrf", language, 403)
        if form.get("duration", "") not in DURATIONS:
            return self._message("badform", language, 400)
        return None

    def _activate(self, token: str, form: dict[str, str], language: str,
                  now: datetime) -> tuple[dict[str, Any], list[int]]:
        """Grant (raises :class:`LinkRefused`); the activated page's context and the mail
        to deliver once committed."""
        svc = self._services
        with self._db.transaction() as session:
            grant, outbox_ids = activate(session, svc, token, duration=form.get("duration", ""),
                                         export=form.get("export") == "1", now=now)
            team = session.get(Team, grant.team_id)
            context = {
                "who": self._who(session, grant.agent_email, grant.department, language),
                "team_name": team.name if team else grant.team_id,
                "until": format_time(grant.expires_at), "export": grant.export,
                "overview_url": overview_url(svc, grant.team_id, grant.granted_by)}
        return context, outbox_ids

    # -- overview --------------------------------------------------------------
    def _authorised(self, token: str) -> tuple[str, Person] | None:
        """The team and person of a valid overview link whose person may still grant."""
        svc = self._services
        claim = read_overview_token(svc.secret, token, svc.settings.grant_overview_ttl)
        if claim is None:
            return None
        with self._db.reading() as session:
            person = session.get(Person, claim.person)
            if (person is None or person.team_id != claim.team_id
                    or not person.can_grant_access):
                return None
            return claim.team_id, person

    def _overview(self, token: str, request: Request) -> Response:
        allowed = self._authorised(token)
        if allowed is None:
            return self._message("overview_gone", _browser_language(request), 403)
        team_id, person = allowed
        svc = self._services
        now = svc.now()
        with self._db.reading() as session:
            team = session.get(Team, team_id)
            given = [self._grant_row(session, g, person.language, now)
                     for g in activations(session, team_id, now)]
            seen = [{"at": x.at.strftime("%Y-%m-%d %H:%M:%S UTC"), "agent": x.agent_email,
                     "reason": x.reason} for x in logins(session, team_id, now)]
        notice = request.query_params.get("done", "")
        return self._page("overview", person.language, {
            "team_name": team.name if team else team_id,
            "live": [g for g in given if g["state"] == "live"], "activations": given,
            "logins": seen, "csrf": csrf_value(svc.secret, "revoke", token),
            "revoke_url": f"{request.url.path.rstrip('/')}/revoke",
            "notice": notice if notice in _NOTICES else ""})

    def _grant_row(self, session: Session, grant: AccessGrant, language: str,
                   now: datetime) -> dict[str, Any]:
        return {"id": grant.id,
                "who": self._who(session, grant.agent_email, grant.department, language),
                "reason": grant.reason, "granted_by": grant.granted_by,
                "granted_at": format_time(grant.granted_at),
                "until": format_time(grant.expires_at), "export": grant.export,
                "state": grant_state(grant, now)}

    def _revoke(self, token: str, form: dict[str, str], request: Request) -> Response:
        svc = self._services
        allowed = self._authorised(token)
        if allowed is None:
            return self._message("overview_gone", _browser_language(request), 403)
        team_id, person = allowed
        if not csrf_valid(svc.secret, "revoke", token, form.get("csrf", "")):
            return self._message("csrf", person.language, 403)
        grant = number_in(form.get("grant", ""))
        if grant is None:
            return self._message("badform", person.language, 400)
        try:
            with self._db.transaction() as session:
                outbox_ids = revoke(session, svc, grant, team_id=team_id,
                                    by=person.email, now=svc.now())
        except GrantError:
            done = "revoke_failed"
        else:
            self._deliver(outbox_ids)
            done = "revoked"
        target = request.url.path.rsplit("/revoke", 1)[0]
        return _secure(RedirectResponse(f"{target}?done={done}", status_code=303))

    # -- API --------------------------------------------------------------------
    def _check(self, params: dict[str, str], authorization: str) -> Response:
        refusal = self._api_refusal(authorization)
        if refusal is not None:
            return _secure(refusal)
        team, agent = params.get("team", ""), params.get("agent", "").strip().lower()
        if not team or not agent:
            return _secure(JSONResponse({"error": "team and agent are required"},
                                        status_code=400))
        export = params.get("export", "").lower() in {"1", "true", "yes"}
        now = self._services.now()
        with self._db.reading() as session:
            grant = live_grant(session, team, agent, export=export, at=now)
            view = grant_view(grant, now) if grant is not None else None
        return _secure(JSONResponse({"allowed": grant is not None, "team": team, "agent": agent,
                                     "export": export, "grant": view}))

    def _api_refusal(self, authorization: str) -> JSONResponse | None:
        """503 without a configured key, 401 without its bearer; None when allowed."""
        key = self._gateway.settings.grant_api_key
        if not key:
            return JSONResponse({"error": "the grants API is not configured "
                                 "(grant_api_key)"}, status_code=503)
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 key.encode()):
            response = JSONResponse({"error": "a valid API key is required"}, status_code=401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None
