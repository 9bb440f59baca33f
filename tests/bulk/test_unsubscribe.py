"""One-click unsubscribe (RFC 8058): the POST a mail provider sends works without a
session; a GET only shows a confirmation page; the mailto address works over SMTP; the
next announcement skips the person; ticket mail keeps coming.  The pages speak the
recipient's language (the browser's only when no person is known)."""

from __future__ import annotations

import re
import time
import tomllib
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from gateway.bulk.unsubscribe import token_hash
from gateway.config import Settings
from gateway.models import SpoolEntry, SpoolState, Unsubscribe, UnsubscribeToken
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.render import LANGUAGES
from tests.bulk.conftest import delivered, recipients, text_of, wait_delivered
from tests.conftest import run_gateway, wait_for
from tests.mail import make_mail, send

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


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


def _request(url: str, method: str, data: bytes | None = None,
             accept_language: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method=method)
    if accept_language is not None:
        request.add_header("Accept-Language", accept_language)
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


def _used_tokens(gateway: Gateway) -> set[str]:
    with gateway.db.reading() as session:
        return {t.email for t in session.scalars(select(UnsubscribeToken))
                if t.used_at is not None}


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

    # A GET (a link scanner, or Anna opening the link) shows a page in Anna's German,
    # whatever her browser asks for, and changes nothing
    status, page = _request(https, "GET", accept_language="en-US,en;q=0.9")
    assert status == 200 and '<form method="post">' in page and '<html lang="de">' in page
    assert "Möchten Sie „Ankündigungen“ für anna@acme.example abbestellen?" in page
    assert '<button type="submit">Abbestellen</button>' in page
    assert _unsubscribed(bulk) == set() and _used_tokens(bulk) == set()

    # The provider's one-click POST, with no cookie and no session, unsubscribes at once
    status, page = _request(https, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200 and '<html lang="de">' in page
    assert "anna@acme.example erhält keine „Ankündigungen“ mehr." in page
    assert _unsubscribed(bulk) == {("anna@acme.example", "announcements", "web")}
    # Using the link again is harmless; a made-up token is refused, in English: no
    # person is known and this client names no language
    assert _request(https, "POST", b"List-Unsubscribe=One-Click")[0] == 200
    forged = https.rsplit("/", 1)[0] + "/" + "a" * 32
    for method, data in (("POST", b"List-Unsubscribe=One-Click"), ("GET", None)):
        status, page = _request(forged, method, data)
        assert status == 404 and '<html lang="en">' in page and "Unknown link" in page
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


def test_pages_speak_the_recipients_language_expired_links_too(
        serving: GatewayServer, bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    # Given an announcement to globex: Giulia (Italian) and Yuki (Japanese)
    _announce(settings, tmp_path, "Release notes", "team:globex")
    wait_delivered(settings, 2)
    yuki = _links(_mail_to(settings, "yuki@globex.example", "Release notes"))[0]
    giulia = _links(_mail_to(settings, "giulia@globex.example", "Release notes"))[0]

    # Yuki's link opens in Japanese (even from a German browser); the GET changes nothing
    status, page = _request(yuki, "GET", accept_language="de-DE,de;q=0.9")
    assert status == 200 and '<html lang="ja">' in page
    assert "yuki@globex.example への「お知らせ」の配信を停止しますか？" in page
    assert _unsubscribed(bulk) == set() and _used_tokens(bulk) == set()
    # The button's POST unsubscribes and says so in Japanese; opening the link again too
    status, page = _request(yuki, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200 and "yuki@globex.example への「お知らせ」の配信を停止しました。" in page
    status, page = _request(yuki, "GET")
    assert status == 200 and '<html lang="ja">' in page and "すでに停止されています" in page
    assert _unsubscribed(bulk) == {("yuki@globex.example", "announcements", "web")}

    # Giulia's link has expired: refused as before (404), but in her Italian
    with bulk.db.transaction() as session:
        row = session.get(UnsubscribeToken, token_hash(giulia.rsplit("/", 1)[1]))
        assert row is not None
        row.expires_at = row.created_at
    for method, data in (("GET", None), ("POST", b"List-Unsubscribe=One-Click")):
        status, page = _request(giulia, method, data)
        assert status == 404 and '<html lang="it">' in page and "Link sconosciuto" in page
    assert _unsubscribed(bulk) == {("yuki@globex.example", "announcements", "web")}

    # An unknown token belongs to nobody: the browser's language is the only hint
    forged = yuki.rsplit("/", 1)[0] + "/" + "b" * 32
    status, page = _request(forged, "GET", accept_language="nl-BE,nl;q=0.9,en;q=0.5")
    assert status == 404 and '<html lang="nl">' in page and "Onbekende link" in page
    status, page = _request(forged, "GET", accept_language="fr-FR,fr;q=0.9")
    assert status == 404 and '<html lang="en">' in page and "Unknown link" in page


def test_every_language_has_every_unsubscribe_word() -> None:
    def keys(language: str) -> set[str]:
        with open(TEMPLATES / language / "pages" / "unsubscribe.toml", "rb") as handle:
            return set(tomllib.load(handle))
    for language in LANGUAGES:
        assert keys(language) == keys("en"), language
