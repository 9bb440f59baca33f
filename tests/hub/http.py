"""A small browser over a real socket (http.client): keeps the cookies the hub sets (by
name; the tests talk to one host), follows no redirects, reads form values."""

from __future__ import annotations

import http.client
import re
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    set_cookies: list[str]
    body: str

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert found, self.body
        return found.group(1)

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


@dataclass
class Browser:
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def get(self, url: str) -> Page:
        return self.request("GET", url)

    def post(self, url: str, form: dict[str, str] | None = None,
             files: list[tuple[str, str, bytes]] | None = None) -> Page:
        return self.request("POST", url, form or {}, files)

    def request(self, method: str, url: str, form: dict[str, str] | None = None,
                files: list[tuple[str, str, bytes]] | None = None) -> Page:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        sent = dict(self.headers)
        body: bytes | None = None
        if files:
            body, sent["Content-Type"] = _multipart(form or {}, files)
        elif form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            set_cookies = response.msg.get_all("set-cookie") or []
            page = Page(response.status, {k.lower(): v for k, v in response.getheaders()},
                        list(set_cookies), response.read().decode())
        finally:
            connection.close()
        self._keep(page.set_cookies)
        return page

    def _keep(self, set_cookies: list[str]) -> None:
        for line in set_cookies:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(line)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def _multipart(form: dict[str, str], files: list[tuple[str, str, bytes]]
               ) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in form.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                      f"{value}\r\n".encode())
    for filename, content_type, data in files:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                      f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
                      .encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
