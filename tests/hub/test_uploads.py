"""Upload bounds of the hub over a real socket, sent the way an attacker would (chunked,
or a declared length never sent): the session is checked before a byte of the body is
read, and a signed-in visitor's body is counted as it streams and cut off past
``hub_attachment_limit`` (plus room for the text), never spooled to disk beyond it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.hub.conftest import MAX, hub_rows_done, signed_in
from tests.uploads import post_chunked, post_declared, private_tempdir, spooled_bytes

LIMIT = 2 * 1024 * 1024  # over the form parser's 1 MB in memory: files go to disk
ROOM = 64 * 1024  # for the text fields and framing (gateway.web.hub.site._EXTRA_BYTES)


def _spooled_messages(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(SpoolEntry)) or 0


@pytest.mark.parametrize("settings", [{"hub_attachment_limit": LIMIT}], indirect=True)
def test_a_chunked_upload_past_the_limit_is_cut_off_and_never_spooled_beyond_it(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    private_tempdir(monkeypatch, tmp_path)
    browser = signed_in(settings, hub, MAX)
    fields = {"csrf": browser.get(f"{hub}/new").csrf(), "subject": "Big", "text": "t",
              "category": "technical"}
    before = _spooled_messages(gateway)
    # When 8 MB of file come chunked (no declared length)
    upload = post_chunked(f"{hub}/new", 4 * LIMIT, fields=fields, cookies=browser.cookies,
                          give_up_at=2 * LIMIT)
    # Then the server cut it off with the hub's page and closed the connection, having
    # spooled no more than the limit; the spooled files are gone, nothing was spooled
    assert upload.status == 413 and 'data-kind="too_large"' in upload.body, upload
    assert upload.headers.get("connection") == "close"
    assert upload.spooled <= LIMIT + ROOM, upload.spooled
    wait_for(lambda: spooled_bytes() == 0, message="the spooled upload closed")
    assert _spooled_messages(gateway) == before
    # And a request within the limit still goes through
    small = browser.post(f"{hub}/new", fields, files=[("ok.txt", "text/plain", b"x" * 900)])
    assert small.status == 303, small.body
    assert len(hub_rows_done(gateway, 1)) == 1


def test_without_a_session_no_byte_of_an_upload_is_read(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    private_tempdir(monkeypatch, tmp_path)
    limit = settings.hub_attachment_limit
    # When someone without a session posts a chunked file, and then declares a huge one
    upload = post_chunked(f"{hub}/new", 4 * 1024 * 1024, give_up_at=2 * 1024 * 1024)
    declared = post_declared(f"{hub}/new", 10 * limit,
                             content_type="multipart/form-data; boundary=x")
    # Then both are refused at once (403), nothing spooled
    assert upload.status == 403 and 'data-kind="signed_out"' in upload.body, upload
    assert upload.spooled == 0
    assert declared.status == 403 and 'data-kind="signed_out"' in declared.body


def test_a_declared_oversize_body_is_refused_before_it_is_read(
        web: GatewayServer, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    # When a signed-in visitor declares more than the limit and sends none of it
    page = post_declared(f"{hub}/new", settings.hub_attachment_limit + ROOM + 1,
                         cookies=browser.cookies,
                         content_type="multipart/form-data; boundary=x")
    # Then the answer comes without the body (the client waits for it alone)
    assert page.status == 413 and 'data-kind="too_large"' in page.body
    # And forms that take no files are small: sign-out past 64 KB is refused the same way
    signed_out = post_declared(f"{hub}/sign-out", 64 * 1024 + 1, cookies=browser.cookies)
    assert signed_out.status == 413 and 'data-kind="too_large"' in signed_out.body
