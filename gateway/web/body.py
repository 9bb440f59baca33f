"""The one bound on request bodies: every request of the web app goes through
:class:`BodyLimit`, so no page can read (or have the form parser spool to disk) more than
its limit, whoever sends it and however.

- Each request starts with :data:`FORM_LIMIT` (forms without files: sign-in, sign-out,
  "was this helpful?", grants, call-backs).  A route that takes files raises the limit of
  its own request with :func:`allow_body`, after it has checked who is asking, so nobody
  without a session gets to send more than a small form.
- A declared ``Content-Length`` over the limit is refused when the body is first asked for,
  before one byte of it is read.  A body without a declared length (chunked) is counted as
  it streams and cut off once past the limit: :class:`BodyTooLarge` is raised inside the
  reader, the form parser closes what it spooled.
- A route may catch :class:`BodyTooLarge` to answer with its own page (the hub does);
  otherwise the middleware answers a plain 413.  A body cut off mid-stream also closes the
  connection, so the rest of it is not even read to be thrown away; a declared one is
  answered at once and the server discards the rest (browsers then show the page).

:func:`read_form` is the form reader every POST uses: the limit, and no files unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FORM_LIMIT", "BodyLimit", "BodyTooLarge", "allow_body", "read_form"]

FORM_LIMIT = 64 * 1024
"""Bytes of a form without files (the longest: a 2,000-character comment, URL-encoded)."""
_SCOPE_KEY = "gateway.body_budget"
_CLOSE = (b"connection", b"close")
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class BodyTooLarge(Exception):
    """The request's body passes its limit (declared, or counted as it arrived)."""


@dataclass
class _Budget:
    """What one request may still send; lives in the ASGI scope."""

    limit: int
    declared: int | None
    received: int = 0
    started: bool = False
    cut_off: bool = False

    def check_start(self) -> None:
        """Before the first byte: a declared length over the limit is refused unread."""
        self.started = True
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLarge

    def count(self, message: Message) -> None:
        if message["type"] != "http.request":
            return
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            self.cut_off = True
            raise BodyTooLarge


def _declared(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            # bytes.isdigit() is ASCII only; past 18 digits it is over any limit anyway
            # (and int() refuses more than 4,300)
            return int(value[:19]) if value.isdigit() else None
    return None


def allow_body(request: Request, limit: int) -> None:
    """Let this request's body be up to ``limit`` bytes (call before reading it)."""
    budget = request.scope.get(_SCOPE_KEY)
    if isinstance(budget, _Budget):
        if budget.started:
            raise RuntimeError("the body limit must be set before the body is read")
        budget.limit = limit


async def read_form(request: Request, *, limit: int | None = None, max_files: int = 0,
                    max_fields: int = 20) -> FormData:
    """The posted form within the request's limit (``limit`` raises it first); raises
    :class:`BodyTooLarge`.  No file parts unless ``max_files`` says so (400 otherwise)."""
    if limit is not None:
        allow_body(request, limit)
    return await request.form(max_files=max_files, max_fields=max_fields)


class BodyLimit:
    """ASGI middleware: counts every request body against its budget (see the module)."""

    def __init__(self, app: ASGIApp, limit: int = FORM_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = _Budget(self.limit, _declared(scope))
        scope[_SCOPE_KEY] = budget
        started = False

        async def limited_receive() -> Message:
            if not budget.started:
                budget.check_start()
            message = await receive()
            budget.count(message)
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if budget.cut_off:  # stop reading the rest: the connection ends
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, limited_receive, closing_send)
        except BodyTooLarge:
            if started:
                raise
            await PlainTextResponse("Request body too large", status_code=413,
                                    headers=_HEADERS)(scope, receive, closing_send)
