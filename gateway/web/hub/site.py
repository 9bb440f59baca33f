"""What every hub page shares: who the visitor is, the CSRF check, the layout, the headers.

A page is a plain function ``handler(request: HubRequest) -> Response``, run in a thread
(it may use the database and render).  :meth:`HubSite.endpoint` wraps it into a Starlette
endpoint that first resolves the visitor from the session cookie on the server, before a
byte of a posted body is read:

- no live session: a GET is sent to ``/hub/sign-in`` (303), a POST gets 403 unread;
- ``admin=True`` and the visitor is not a team admin: 403;
- a POST larger than its limit: 413, the handler never runs.  Only ``files=True`` pages
  (a new request, a reply) take files: up to ``hub_attachment_limit`` all together, the
  body up to that plus room for the text (:data:`_EXTRA_BYTES`), counted as it streams
  (:mod:`gateway.web.body`); the other forms are small and take no files;
- a POST whose ``csrf`` field is not this session's value: 403, likewise.

:meth:`HubSite.render` puts a page of ``templates/pages/hub/`` into the layout, in the
visitor's directory language, with the nav, the sign-out form and the security headers of
the grant pages.  Links and redirects are built from ``GATEWAY_PUBLIC_URL`` + ``/hub``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.config import Settings
from gateway.db import Database
from gateway.grants.pages import pick_language
from gateway.grants.tokens import csrf_valid, csrf_value
from gateway.hub.sessions import resolve_session, touch_session
from gateway.hub.visitor import HubVisitor
from gateway.web.body import BodyTooLarge, read_form
from gateway.web.grants import SECURITY_HEADERS
from gateway.web.hub.nav import NAV
from gateway.web.hub.pages import HubPages
from outbound.render import DEFAULT_LANGUAGE, LANGUAGES

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway
    from gateway.services import Services

__all__ = ["CSRF_FIELD", "SESSION_COOKIE", "HubRequest", "HubSite", "Upload",
           "browser_language", "secure"]

SESSION_COOKIE = "hub_session"
CSRF_FIELD = "csrf"
_CSRF_PURPOSE = "hub"
_EXTRA_BYTES = 64 * 1024
"""Room for the text fields and multipart framing above ``hub_attachment_limit``."""

Handler = Callable[["HubRequest"], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Upload:
    """One file posted with a form."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class HubRequest:
    """What a page handler may use: the visitor (from the server) and what was sent."""

    visitor: HubVisitor
    method: str
    query: Mapping[str, str]
    path_params: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    files: tuple[Upload, ...] = ()


class HubSite:
    """The hub of one gateway: shared by every page module's ``routes(site)``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.db: Database = gateway.db
        self.pages = HubPages(gateway.settings.templates_dir)

    @property
    def services(self) -> Services:
        """Looked up per request (the key loads lazily)."""
        return self.gateway.services

    @property
    def settings(self) -> Settings:
        return self.gateway.settings

    # -- URLs and cookies ---------------------------------------------------------
    def url(self, path: str = "", **query: str) -> str:
        """The public URL of a hub path (``/tickets``), with an optional query."""
        base = f"{self.settings.public_url.rstrip('/')}/hub{path}"
        return f"{base}?{urlencode(query)}" if query else base

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.settings.public_url).scheme == "https"

    def set_cookie(self, response: Response, name: str, value: str,
                   max_age: int | None = None) -> None:
        """``HttpOnly``, ``SameSite=Lax``, ``Path=/hub``, ``Secure`` on https."""
        response.set_cookie(name, value, max_age=max_age, path="/hub", httponly=True,
                            samesite="lax", secure=self.secure_cookies)

    def clear_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/hub", httponly=True, samesite="lax",
                               secure=self.secure_cookies)

    # -- answers --------------------------------------------------------------------
    def csrf(self, visitor: HubVisitor) -> str:
        """The hidden ``csrf`` value of every form this visitor's session may post."""
        return csrf_value(self.services.secret, _CSRF_PURPOSE, visitor.session_hash)

    def _nav(self, visitor: HubVisitor, language: str, current: str) -> list[dict[str, Any]]:
        words = self.pages.catalog(language)
        return [{"key": e.key, "url": self.url(e.path), "current": e.key == current,
                 "label": words.get(f"nav_{e.key}", e.key)}
                for e in NAV if visitor.is_admin or not e.admin_only]

    def render(self, visitor: HubVisitor | None, page: str, context: Mapping[str, Any],
               *, status: int = 200, nav: str = "", notice: str = "",
               language: str | None = None) -> Response:
        """``templates/pages/hub/<page>.html.j2`` in the layout, in the visitor's language
        (else ``language``, else English).  ``notice``: a catalog key shown once on top."""
        lang = visitor.language if visitor is not None else (language or DEFAULT_LANGUAGE)
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        layout: dict[str, Any] = {
            "visitor": visitor, "notice": notice, "hub_url": self.url(),
            "sign_out_url": self.url("/sign-out"),
            "csrf": self.csrf(visitor) if visitor is not None else "",
            "nav": self._nav(visitor, lang, nav) if visitor is not None else []}
        html = self.pages.render(page, lang, {**layout, **context})
        return secure(HTMLResponse(html, status_code=status), lang)

    def message(self, visitor: HubVisitor | None, key: str, status: int,
                language: str | None = None) -> Response:
        """A page that only says ``<key>_title`` and ``<key>_text`` (refusals, 404)."""
        return self.render(visitor, "message", {"key": key}, status=status,
                           language=language)

    def not_found(self, visitor: HubVisitor) -> Response:
        """The one answer for a ticket that does not exist and one the visitor may not
        see: 404 either way, so numbers tell nothing."""
        return self.message(visitor, "not_found", 404)

    def redirect(self, path: str, notice: str = "", **query: str) -> Response:
        """303 to a hub path; ``notice`` (a catalog key) is shown once by the next page."""
        if notice:
            query = {**query, "notice": notice}
        return secure(RedirectResponse(self.url(path, **query), status_code=303))

    def notice_of(self, request: HubRequest) -> str:
        """The ``?notice=`` of a redirect, if the catalog knows it (else nothing)."""
        key = request.query.get("notice", "")
        words = self.pages.catalog(request.visitor.language)
        return key if f"notice_{key}" in words else ""

    # -- the wrapper every page goes through ----------------------------------------------
    def endpoint(self, handler: Handler, *, admin: bool = False,
                 files: bool = False) -> Endpoint:
        """A Starlette endpoint running ``handler`` for a signed-in visitor (see the
        module docstring for what is refused before it runs); ``files``: the form may
        carry files (else it is a small form without)."""

        async def run(request: Request) -> Response:
            admitted = await run_in_threadpool(self._admit, request, admin)
            if isinstance(admitted, Response):
                return admitted  # no session (or no admin): the body is never read
            form: dict[str, str] = {}
            uploads: tuple[Upload, ...] = ()
            if request.method == "POST":
                try:
                    form, uploads = await self._read_form(request, files)
                except BodyTooLarge:
                    return await run_in_threadpool(self.message, admitted, "too_large", 413)
            return await run_in_threadpool(self._run, handler, admitted, request, form,
                                           uploads)
        return run

    def _admit(self, request: Request, admin: bool) -> HubVisitor | Response:
        """The visitor, or the answer to a request that has none (or is not an admin's)."""
        visitor = self.visitor(request)
        if visitor is None:
            if request.method == "POST":
                return self.message(None, "signed_out", 403, language=browser_language(request))
            return self.redirect("/sign-in")
        if admin and not visitor.is_admin:
            return self.message(visitor, "admins_only", 403)
        return visitor

    async def _read_form(self, request: Request, files: bool
                         ) -> tuple[dict[str, str], tuple[Upload, ...]]:
        """The posted fields and files; raises :class:`BodyTooLarge` past the limits (the
        body's, counted as it streams, and the files' together)."""
        if not files:
            data = await read_form(request, max_fields=20)
            return {k: v for k, v in data.items() if isinstance(v, str)}, ()
        limit = self.settings.hub_attachment_limit
        data = await read_form(request, limit=limit + _EXTRA_BYTES, max_files=20,
                               max_fields=50)
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        posted = [v for v in data.getlist("files") if isinstance(v, UploadFile) and v.filename]
        if sum(v.size or 0 for v in posted) > limit:  # spooled (within the body's limit)
            raise BodyTooLarge
        uploads = [Upload(v.filename or "", v.content_type or "application/octet-stream",
                          await v.read()) for v in posted]
        return fields, tuple(uploads)

    def _run(self, handler: Handler, visitor: HubVisitor, request: Request,
             form: dict[str, str], files: tuple[Upload, ...]) -> Response:
        if request.method == "POST" and not csrf_valid(
                self.services.secret, _CSRF_PURPOSE, visitor.session_hash,
                form.get(CSRF_FIELD, "")):
            return self.message(visitor, "csrf", 403)
        return handler(HubRequest(
            visitor=visitor, method=request.method, query=dict(request.query_params),
            path_params={k: str(v) for k, v in request.path_params.items()},
            form=form, files=files))

    def visitor(self, request: Request) -> HubVisitor | None:
        """The visitor of the request's session cookie, from the server's records only."""
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if not session_id:
            return None
        now = self.services.now()
        with self.db.reading() as session:
            check = resolve_session(session, session_id, self.settings, now)
        if check.visitor is not None and check.touch:
            with self.db.transaction() as session:
                touch_session(session, check.visitor.session_hash, now)
        return check.visitor


def secure(response: Response, language: str | None = None) -> Response:
    """The grant pages' headers: no framing, caching, referrers or outside resources."""
    response.headers.update(SECURITY_HEADERS)
    if language:
        response.headers["Content-Language"] = language
    return response


def browser_language(request: Request) -> str:
    return pick_language(request.headers.get("accept-language", ""))
