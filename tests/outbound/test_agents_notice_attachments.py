"""Agents' notices carry the customer's files only up to ``agents_notice_attachment_limit``
(default 5 MB) and name the others with their size, so a large file cannot make the
notice too big for the smarthost.  Mail in over SMTP; the notice read from the maildir."""

from __future__ import annotations

import json
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from gateway.config import Settings
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.attachment_cap import within_limit
from tests.conftest import run_gateway
from tests.e2e.test_conversations import body_text, deliver, mail_to
from tests.mail import make_mail

AGENTS = "agents@support.example"
MB = 1024 * 1024


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(agents_address=AGENTS)


def request_with(files: list[tuple[str, bytes]]) -> bytes:
    request = EmailMessage()
    for name, value in message_from_bytes(make_mail(
            sender="anna@acme.example", subject="Crash report attached", body="x"),
            policy=policy.default).items():
        if name.lower() not in {"content-type", "content-transfer-encoding", "mime-version"}:
            request[name] = value
    request.set_content("Hello, the app crashes on start. The report and logs are attached.")
    for filename, data in files:
        request.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename=filename)
    return request.as_bytes(policy=policy.SMTP)


def html_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def test_a_9_mb_file_is_named_not_attached_and_small_files_still_attach(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    assert settings.agents_notice_attachment_limit == 5 * MB  # the documented default
    report = bytes(range(256)) * (9 * MB // 256)
    row = deliver(settings, gateway, request_with([
        ("app.log", b"2026-12-05 crash at start\n" * 100),
        ("report.pdf", report),
        ("screenshot.png", b"\x89PNG" + b"\x00" * 300_000)]), mail_from="anna@acme.example")
    number = row.ticket_number
    assert number is not None, row.reason

    (notice,) = mail_to(settings, AGENTS)
    assert isinstance(notice, EmailMessage)
    attached = {p.get_filename(): p.get_content() for p in notice.iter_attachments()}
    assert set(attached) == {"app.log", "screenshot.png"}
    assert attached["screenshot.png"] == b"\x89PNG" + b"\x00" * 300_000
    assert len(notice.as_bytes()) < 2 * MB  # far below a 10 MB smarthost limit
    for text in (body_text(notice), html_text(notice)):
        assert "Not attached" in text and "report.pdf (9.0 MB)" in text
        assert "app.log" in text and "screenshot.png" in text
    # The file itself stays with the ticket.
    shown = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr.decode()
    files = {a["filename"]: a["size"] for m in json.loads(shown.stdout)["messages"]
             for a in m["attachments"]}
    assert files["report.pdf"] == len(report)


def test_the_limit_is_a_running_total_in_the_files_order() -> None:
    small, large = ("a.txt", "text/plain", b"a" * 10), ("b.bin", "application/pdf", b"b" * 2 * MB)
    tail = ("c.txt", "text/plain", b"c" * 500)
    assert within_limit([small, large, tail], 0) == (
        [], [{"name": "a.txt", "size": "10 bytes"}, {"name": "b.bin", "size": "2.0 MB"},
             {"name": "c.txt", "size": "500 bytes"}])
    # the large file does not fit after the small one; a later small one still does
    assert within_limit([small, large, tail], 2 * MB) == (
        [small, tail], [{"name": "b.bin", "size": "2.0 MB"}])
    assert within_limit([small, large, tail], 2 * MB + 510) == ([small, large, tail], [])
