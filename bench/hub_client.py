"""A small hub visitor for ``bench/hub_pages.py``: one keep-alive HTTP connection, its
cookies, and forms filled the way a browser fills them (hidden fields such as the CSRF
token kept, the given fields set).  Standard library only, so that what is timed is the
server, not a client library."""

from __future__ import annotations

import http.client
import time
from email import message_from_bytes, policy
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

__all__ = ["HubClient", "sign_in_link"]

_SESSION_COOKIE_HINT = "session"


class _Forms(HTMLParser):
    """Every form of a page: its action and method, and its fields' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), values.get("method", "get").lower(),
                               {}))
        elif tag in {"input", "button"} and self.forms and values.get("name"):
            if values.get("type") in {"checkbox", "radio"} and "checked" not in values:
                return
            self.forms[-1][2].setdefault(values["name"], values.get("value", ""))


class HubClient:
    """One visitor: a persistent connection to the gateway's web listener and a cookie jar."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.base = base
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                     timeout=60)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        self.connection.close()

    def has_session(self) -> bool:
        return any(_SESSION_COOKIE_HINT in name for name in self.cookies)

    def request(self, method: str, url: str, form: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(urljoin(self.base, url))
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.base
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if method != "GET":
                raise
            # The server closed the idle keep-alive connection (uvicorn: after 5 s), as
            # browsers find out too: they send a GET again on a new connection.
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        data = response.read().decode()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                if morsel.value and morsel["max-age"] not in {"0"}:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def get(self, url: str) -> tuple[int, str]:
        status, _, body = self.request("GET", url)
        return status, body

    def submit_form(self, url: str, fields: dict[str, str]) -> tuple[int, str]:
        """Open ``url``, fill its first POST form with ``fields`` and send it; follows
        redirects with GET, as a browser does."""
        status, page = self.get(url)
        if status != 200:
            raise RuntimeError(f"GET {url}: HTTP {status}")
        parser = _Forms()
        parser.feed(page)
        posts = [f for f in parser.forms if f[1] == "post"]
        if not posts:
            raise RuntimeError(f"no POST form on {url}")
        action, _, values = posts[0]
        status, headers, body = self.request("POST", urljoin(url, action or url),
                                             {**values, **fields})
        while status in {301, 302, 303, 307} and "location" in headers:
            status, headers, body = self.request("GET", headers["location"])
        return status, body


def sign_in_link(maildir: Path, email: str, timeout: float = 60) -> str:
    """The newest hub sign-in link mailed to ``email`` (waits for its delivery)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: list[tuple[float, str]] = []
        for path in (maildir / "new").glob("*") if (maildir / "new").is_dir() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if email not in str(message["To"]).lower():
                continue
            body = message.get_body(("plain",))
            text = str(body.get_content()) if body is not None else ""
            for word in text.split():
                if "/hub/sign-in/" in word:
                    found.append((path.stat().st_mtime, word.strip("<>")))
        if found:
            return max(found)[1]
        time.sleep(0.2)
    raise RuntimeError(f"no sign-in mail to {email} within {timeout:.0f} s")
