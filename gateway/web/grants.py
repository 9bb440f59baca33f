"""Web pages and API of support access grants (Starlette routes, mounted by ``web.py``).

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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

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
    LinkRefused,
    LinkStatus,
    activate,
    inspect_link,
    live_grant,
    revoke,
)
from gateway.grants.tokens import csrf_valid, csrf_value, read_overview_token
from gateway.models import Person, Team

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway

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
    pages = PageRenderer(gateway.settings.templates_dir)
    db = gateway.db

    def services() -> Any:
        return gateway.services

    def page(name: str, language: str, context: dict[str, Any], status: int = 200) -> Response:
        return _secure(HTMLResponse(pages.render(name, language, context), status_code=status))

    def message(key: str, language: str, status: int) -> Response:
        return page("message", language, {"key": key}, status)

    def who(session: Any, agent: str | None, department: str | None, language: str) -> str:
        if agent:
            return subject_label(session, agent, None)
        return pages.catalog(language)["department"].format(name=department)

    def deliver(outbox_ids: Iterable[int]) -> None:
        for outbox_id in outbox_ids:
            gateway.enqueue_delivery(outbox_id)

    def language_of(email: str | None, request: Request) -> str:
        if email:
            with db.reading() as session:
                person = session.get(Person, email)
                if person is not None:
                    return person.language
        return pick_language(request.headers.get("accept-language", ""))

    # -- activation ---------------------------------------------------------
    def _show(token: str, request: Request) -> Response:
        svc = services()
        with db.reading() as session:
            found = inspect_link(session, token, svc.now())
            if found.status is not LinkStatus.OK:
                recipient = found.link.recipient if found.link is not None else None
                return message(found.status.value, language_of(recipient, request),
                               _STATUS[found.status])
            assert found.request is not None and found.person is not None and found.link
            req, person = found.request, found.person
            team = session.get(Team, req.team_id)
            asked_by = (subject_label(session, req.requested_by, None)
                        if req.requested_by else "")
            return page("activate", person.language, {
                "asked_by": asked_by, "team_name": team.name if team else req.team_id,
                "who": who(session, req.agent_email, req.department, person.language),
                "reason": req.reason, "export_asked": req.export,
                "durations": DURATIONS, "default_duration": DEFAULT_DURATION,
                "csrf": csrf_value(svc.secret, "activate", found.link.token_hash)})

    def _grant(token: str, form: dict[str, str], request: Request) -> Response:
        svc = services()
        now = svc.now()
        with db.reading() as session:
            found = inspect_link(session, token, now)
        recipient = found.link.recipient if found.link is not None else None
        language = language_of(recipient, request)
        if found.status is not LinkStatus.OK:
            return message(found.status.value, language, _STATUS[found.status])
        assert found.link is not None
        if not csrf_valid(svc.secret, "activate", found.link.token_hash, form.get("csrf", "")):
            return message("csrf", language, 403)
        duration = form.get("duration", "")
        if duration not in DURATIONS:
            return message("badform", language, 400)
        try:
            with db.transaction() as session:
                grant, outbox_ids = activate(session, svc, token, duration=duration,
                                             export=form.get("export") == "1", now=now)
                label = who(session, grant.agent_email, grant.department, language)
                team = session.get(Team, grant.team_id)
                context = {"who": label, "team_name": team.name if team else grant.team_id,
                           "until": format_time(grant.expires_at), "export": grant.export,
                           "overview_url": overview_url(svc, grant.team_id, grant.granted_by)}
        except LinkRefused as refused:
            return message(refused.status.value, language, _STATUS[refused.status])
        deliver(outbox_ids)
        return page("activated", language, context)

    async def activate_page(request: Request) -> Response:
        token = str(request.path_params["token"])
        if request.method == "POST":
            form = await request.form()
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            return await run_in_threadpool(_grant, token, values, request)
        return await run_in_threadpool(_show, token, request)

    # -- overview -------------------------------------------------------------
    def _authorised(token: str) -> tuple[str, Person] | None:
        svc = services()
        claim = read_overview_token(svc.secret, token, svc.settings.grant_overview_ttl)
        if claim is None:
            return None
        with db.reading() as session:
            person = session.get(Person, claim.person)
            if (person is None or person.team_id != claim.team_id
                    or not person.can_grant_access):
                return None
            return claim.team_id, person

    def _overview(token: str, request: Request) -> Response:
        allowed = _authorised(token)
        if allowed is None:
            return message("overview_gone", pick_language(
                request.headers.get("accept-language", "")), 403)
        team_id, person = allowed
        svc = services()
        now = svc.now()
        with db.reading() as session:
            team = session.get(Team, team_id)

            def row(grant: Any) -> dict[str, Any]:
                return {"id": grant.id, "who": who(session, grant.agent_email,
                                                   grant.department, person.language),
                        "reason": grant.reason, "granted_by": grant.granted_by,
                        "granted_at": format_time(grant.granted_at),
                        "until": format_time(grant.expires_at), "export": grant.export,
                        "state": grant_state(grant, now)}

            given = [row(g) for g in activations(session, team_id, now)]
            seen = [{"at": x.at.strftime("%Y-%m-%d %H:%M:%S UTC"), "agent": x.agent_email,
                     "reason": x.reason} for x in logins(session, team_id, now)]
        notice = request.query_params.get("done", "")
        return page("overview", person.language, {
            "team_name": team.name if team else team_id,
            "live": [g for g in given if g["state"] == "live"], "activations": given,
            "logins": seen, "csrf": csrf_value(svc.secret, "revoke", token),
            "revoke_url": f"{request.url.path.rstrip('/')}/revoke",
            "notice": notice if notice in _NOTICES else ""})

    def _revoke(token: str, form: dict[str, str], request: Request) -> Response:
        svc = services()
        allowed = _authorised(token)
        if allowed is None:
            return message("overview_gone", pick_language(
                request.headers.get("accept-language", "")), 403)
        team_id, person = allowed
        if not csrf_valid(svc.secret, "revoke", token, form.get("csrf", "")):
            return message("csrf", person.language, 403)
        if not form.get("grant", "").isdigit():
            return message("badform", person.language, 400)
        try:
            with db.transaction() as session:
                outbox_ids = revoke(session, svc, int(form["grant"]), team_id=team_id,
                                    by=person.email, now=svc.now())
        except GrantError:
            done = "revoke_failed"
        else:
            deliver(outbox_ids)
            done = "revoked"
        target = request.url.path.rsplit("/revoke", 1)[0]
        return _secure(RedirectResponse(f"{target}?done={done}", status_code=303))

    async def overview_page(request: Request) -> Response:
        return await run_in_threadpool(_overview, str(request.path_params["token"]), request)

    async def overview_revoke(request: Request) -> Response:
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        return await run_in_threadpool(_revoke, str(request.path_params["token"]), values,
                                       request)

    # -- API --------------------------------------------------------------------
    def _check(params: dict[str, str], authorization: str) -> Response:
        key = gateway.settings.grant_api_key
        if not key:
            return _secure(JSONResponse({"error": "the grants API is not configured "
                                         "(grant_api_key)"}, status_code=503))
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 key.encode()):
            response = JSONResponse({"error": "a valid API key is required"}, status_code=401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return _secure(response)
        team, agent = params.get("team", ""), params.get("agent", "").strip().lower()
        if not team or not agent:
            return _secure(JSONResponse({"error": "team and agent are required"},
                                        status_code=400))
        export = params.get("export", "").lower() in {"1", "true", "yes"}
        now = services().now()
        with db.reading() as session:
            grant = live_grant(session, team, agent, export=export, at=now)
            view = grant_view(grant, now) if grant is not None else None
        return _secure(JSONResponse({"allowed": grant is not None, "team": team, "agent": agent,
                                     "export": export, "grant": view}))

    async def api_check(request: Request) -> Response:
        return await run_in_threadpool(_check, dict(request.query_params),
                                       request.headers.get("authorization", ""))

    handlers: list[tuple[str, Callable[[Request], Any], list[str]]] = [
        ("/grants/activate/{token}", activate_page, ["GET", "POST"]),
        ("/grants/overview/{token}", overview_page, ["GET"]),
        ("/grants/overview/{token}/revoke", overview_revoke, ["POST"]),
        ("/api/grants/check", api_check, ["GET"]),
    ]
    return [Route(path, endpoint, methods=methods) for path, endpoint, methods in handlers]
