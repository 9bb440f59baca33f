"""Posting bodies the way an attacker would, over a real socket: chunked (no declared
length) or with a declared length never sent, and watching what the server (in this
process) spools to disk meanwhile, as an operator would with ``lsof +L1``: the deleted
temporary files it holds open under :func:`tempfile.gettempdir`."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.web.body import FORM_LIMIT
from tests.conftest import wait_for

BOUNDARY = "UploadBoundary"
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class Upload:
    status: int
    headers: dict[str, str]
    body: str
    sent: int
    """Bytes of file data the client got to send before the server answered."""
    spooled: int
    """The most the server held in temporary files while the upload ran."""


def spooled_bytes() -> int:
    """Bytes in the deleted temporary files this process holds open under the temp dir."""
    folder = os.path.realpath(tempfile.gettempdir())
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(folder + "/") and target.endswith(" (deleted)"):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:  # closed meanwhile
            continue
    return total


def _connect(url: str, method: str, headers: dict[str, str]) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30)
    lines = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
             *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _response(sock: socket.socket) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of the answer (read until the connection ends or the
    declared length is in)."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        assert block, data
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        try:
            block = sock.recv(65536)
        except ConnectionResetError:
            break
        if not block:
            break
        body += block
    return int(status_line.split()[1]), headers, body.decode("utf-8", "replace")


def post_chunked(url: str, total: int, *, fields: dict[str, str] | None = None,
                 cookies: dict[str, str] | None = None, give_up_at: int = 0,
                 file: bool = True) -> Upload:
    """POST a multipart form with one file (``file=False``: a text field) of ``total``
    bytes, chunked.  The client stops
    sending once the server has answered; before the last chunk it waits until the
    server has answered or spooled ``give_up_at`` bytes (so a server that spools all of
    it is seen doing so)."""
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
               "Transfer-Encoding": "chunked"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    sock = _connect(url, "POST", headers)
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                   f"{v}\r\n" for k, v in (fields or {}).items())
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
             f'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
             if file else
             f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="comment"\r\n\r\n')
    peak, sent = 0, 0
    try:
        with sock:
            sock.sendall(_chunk(head.encode()))
            while sent < total and not _answered(sock):
                block = b"A" * min(_BLOCK, total - sent)
                try:
                    sock.sendall(_chunk(block))
                except (BrokenPipeError, ConnectionResetError):
                    break  # cut off
                sent += len(block)
                peak = max(peak, spooled_bytes())
            if sent == total:
                peak = max(peak, _settled(sock, give_up_at or total // 2))
                _finish(sock)
            status, answer_headers, body = _response(sock)
    finally:
        peak = max(peak, spooled_bytes())
    return Upload(status, answer_headers, body, sent, peak)


def _settled(sock: socket.socket, spooled: int) -> int:
    """Wait until the server answered or spooled ``spooled`` bytes; what it spooled."""
    seen: list[int] = [0]

    def done() -> bool:
        seen[0] = max(seen[0], spooled_bytes())
        return _answered(sock) or seen[0] >= spooled
    wait_for(done, message="the server to answer or spool the upload")
    return seen[0]


def _finish(sock: socket.socket) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(_chunk(f"\r\n--{BOUNDARY}--\r\n".encode()) + b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def post_declared(url: str, declared: int, *, cookies: dict[str, str] | None = None,
                  content_type: str = "application/x-www-form-urlencoded") -> Upload:
    """POST headers declaring ``declared`` bytes and send none of them: a server that
    waits for the body answers nothing (the socket times out after 10 s)."""
    headers = {"Content-Type": content_type, "Content-Length": str(declared)}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with _connect(url, "POST", headers) as sock:
        sock.settimeout(10)
        status, answer_headers, body = _response(sock)
    return Upload(status, answer_headers, body, 0, spooled_bytes())


def private_tempdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temp dir of the test's own, so :func:`spooled_bytes` sees only the server's."""
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def small_form_is_bounded(url: str) -> None:
    """What every form without files must do (grants, satisfaction, sign-in): a declared
    oversize body is refused unread, a chunked one is cut off at the small limit, a file
    part is refused at once, and nothing lands on disk."""
    declared = post_declared(url, 100 * 1024 * 1024)
    assert declared.status == 413, declared
    text = post_chunked(url, 8 * FORM_LIMIT, file=False)
    assert text.status == 413 and text.spooled == 0, text
    upload = post_chunked(url, 8 * 1024 * 1024, give_up_at=2 * 1024 * 1024)
    # no files taken here: 400 at the file's headers, or 413 if its first bytes came along
    assert upload.status in (400, 413) and upload.spooled == 0, upload
