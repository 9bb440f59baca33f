"""One-click unsubscribe (RFC 8058): the POST a mail provider sends works without a
session; a GET only shows a confirmation page; the mailto address works over SMTP; the
next announcement skips the person; ticket mail keeps coming."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import Settings
from gateway.models import SpoolEntry, SpoolState, Unsubscribe
from gateway.server import GatewayServer
from tests.bulk.conftest import delivered, recipients, text_of, wait_delivered
from tests.conftest import run_gateway, wait_for
from tests.mail import make_mail, send


def _announce(settings: Settings, tmp_path: Path, subject: str, audience: str) -> None:
    body = tmp_path / f"{subject}.txt"
    body.write_text("Planned maintenance on Saturday from 06:00 to 08:00 UTC.\n")
    result = run_gateway(settings, "announce", "--subject", subject, "--body-file", str(body),
                         "--audience", audience)
    assert result.returncode == 0, result.stderr


def _mail_to(settings: Settings, email: str, subject: str) -> EmailMessage:
    found = [m for m in delivered(settings)
             if m["To"].addresses[0].addr_spec == email and m["Subject"] == subject]
    assert len(found) == 1, [str(m["Subject"]) for m in delivered(settings)]
    return found[0]


def _links(message: EmailMessage) -> tuple[str, str]:
    header = str(message["List-Unsubscribe"])
    https, mailto = re.findall(r"<([^>]+)>", header)
    assert https.startswith("http") and mailto.startswith("mailto:")
    return https, mailto


def _request(url: str, method: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _unsubscribed(gateway: Gateway) -> set[tuple[str, str, str]]:
    with gateway.db.reading() as session:
        return {(u.email, u.list_name, u.source) for u in session.scalars(select(Unsubscribe))}


def test_one_click_post_unsubscribes_get_does_not_and_ticket_mail_goes_on(
        serving: GatewayServer, bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    # Given an announcement to the acme team (Anna, Max, Carla)
    _announce(settings, tmp_path, "Maintenance 1", "team:acme")
    wait_delivered(settings, 3)
    mail = _mail_to(settings, "anna@acme.example", "Maintenance 1")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = _links(mail)
    assert https.startswith(f"{settings.public_url}/unsubscribe/")
    assert https in text_of(mail)  # the same link in the footer, for people
    assert re.match(r"^mailto:unsubscribe\+[a-z2-7]{32}@support\.example\?subject=", mailto)

    # A GET (a link scanner, or Anna opening the link) shows a page and changes nothing
    status, page = _request(https, "GET")
    assert status == 200 and '<form method="post">' in page and "anna@acme.example" in page
    assert _unsubscribed(bulk) == set()

    # The provider's one-click POST, with no cookie and no session, unsubscribes at once
    status, page = _request(https, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200 and "will no longer receive" in page
    assert _unsubscribed(bulk) == {("anna@acme.example", "announcements", "web")}
    # Using the link again is harmless; a made-up token is refused
    assert _request(https, "POST", b"List-Unsubscribe=One-Click")[0] == 200
    forged = https.rsplit("/", 1)[0] + "/" + "a" * 32
    assert _request(forged, "POST", b"List-Unsubscribe=One-Click")[0] == 404
    assert _request(forged, "GET")[0] == 404
    assert _unsubscribed(bulk) == {("anna@acme.example", "announcements", "web")}

    # The next announcement skips Anna, reaches the others
    _announce(settings, tmp_path, "Maintenance 2", "team:acme")
    wait_for(lambda: recipients(settings, "Maintenance 2") == {
        "max@acme.example": 1, "carla@acme.example": 1}, message="second announcement")
    listed = run_gateway(settings, "announcements", "list")
    assert listed.returncode == 0 and b"1 unsubscribed" in listed.stdout

    # Ticket mail still reaches Anna, and it carries no List-Unsubscribe
    send(settings.smtp_listen, make_mail(subject="Sync fails", body="Sync fails again."))
    wait_for(lambda: recipients(settings, "Sync fails").get("anna@acme.example") == 1,
             message="acknowledgement to Anna")
    ack = [m for m in delivered(settings) if "Sync fails" in str(m["Subject"])][0]
    assert ack["List-Unsubscribe"] is None and ack["List-Unsubscribe-Post"] is None
    time.sleep(1.0)
    assert recipients(settings, "Maintenance 2").get("anna@acme.example") is None


def test_mail_to_the_unsubscribe_address_unsubscribes(
        serving: GatewayServer, bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    _announce(settings, tmp_path, "Procedure change", "team:globex")
    wait_delivered(settings, 2)
    mail = _mail_to(settings, "giulia@globex.example", "Procedure change")
    address = _links(mail)[1].removeprefix("mailto:").split("?", 1)[0]
    # Giulia's mail client sends the mailto request over SMTP (accepted, not 550)
    send(settings.smtp_listen, make_mail(sender="giulia@globex.example", to=address,
                                         subject="unsubscribe", body="unsubscribe"),
         mail_from="giulia@globex.example", rcpt_to=address)

    def spool_done() -> bool:
        with bulk.db.reading() as session:
            entry = session.scalars(select(SpoolEntry)).one_or_none()
            return entry is not None and entry.state == SpoolState.IGNORED

    wait_for(spool_done, message="unsubscribe mail processed")
    with bulk.db.reading() as session:
        entry = session.scalars(select(SpoolEntry)).one()
    assert entry.reason == "unsubscribe request"
    assert _unsubscribed(bulk) == {("giulia@globex.example", "announcements", "mail")}
    _announce(settings, tmp_path, "Procedure change 2", "team:globex")
    wait_for(lambda: recipients(settings, "Procedure change 2") == {"yuki@globex.example": 1},
             message="second announcement to Yuki only")


def test_unsubscribe_address_without_valid_token_is_recorded_as_ignored(
        serving: GatewayServer, bulk: Gateway, settings: Settings) -> None:
    address = "unsubscribe+notavalidtoken@support.example"
    send(settings.smtp_listen, make_mail(sender="max@acme.example", to=address),
         mail_from="max@acme.example", rcpt_to=address)

    def ignored() -> SpoolEntry | None:
        with bulk.db.reading() as session:
            entry = session.scalars(select(SpoolEntry)).one_or_none()
            return entry if entry is not None and entry.state == SpoolState.IGNORED else None

    entry = wait_for(ignored, message="ignored")
    assert entry.reason == "unsubscribe request"
    assert any(t["outcome"] == "refused" for t in entry.trace)
    assert _unsubscribed(bulk) == set()
