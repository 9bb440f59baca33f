"""Signing in to the hub by a mailed link, over real sockets: the form, the mail, the
link's GET (changes nothing) and POST (starts a session), and every way a link fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from gateway.config import Settings
from gateway.models import HubSession, HubSignInLink
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.e2e.test_conversations import mail_to
from tests.hub.conftest import ANNA, MAX, ask_for_link, mailed_link, sign_in_links
from tests.hub.http import Browser
from tests.secrets_scan import files_holding, rows_holding


def test_a_mailed_link_signs_in_and_the_get_changes_nothing(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    # Given Max asked for a sign-in link
    browser = Browser()
    assert ask_for_link(browser, hub, MAX) == 200
    link = mailed_link(settings, MAX)
    mail = mail_to(settings, MAX)[-1]
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "Support-Portal" in str(mail["Subject"])  # Max reads German
    # When the link is opened twice (a mail scanner, then Max)
    for _ in range(2):
        confirm = browser.get(link)
        assert confirm.status == 200 and 'id="sign-in"' in confirm.body
    # Then nothing happened yet: no session, the link is unused
    with gateway.db.reading() as session:
        assert session.scalar(select(HubSession.id_hash)) is None
        assert session.scalar(select(HubSignInLink.used_at)) is None
    # When Max presses the button, a session starts and the tickets page opens
    done = browser.post(link, {"csrf": confirm.csrf()})
    assert done.status == 303 and done.location == f"{hub}/tickets"
    cookie = next(c for c in done.set_cookies if c.startswith("hub_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/hub" in cookie
    assert "Secure" not in cookie  # public_url is http here
    page = browser.get(f"{hub}/tickets")
    assert page.status == 200 and "Max Member" in page.body
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-language"] == "de"
    # And neither the link's token nor the session id is anywhere at rest (only hashes;
    # the mail's outbox row is sealed), in any column or in the SQLite files
    for secret in (link.rsplit("/", 1)[1], browser.cookies["hub_session"]):
        assert rows_holding(gateway, secret) == []
        assert files_holding(gateway, secret) == []


def test_a_used_link_signs_in_nobody(web: GatewayServer, settings: Settings,
                                     hub: str) -> None:
    # Given a link Max opened (a copy of its page kept) and then used
    first = Browser()
    assert ask_for_link(first, hub, MAX) == 200
    link = mailed_link(settings, MAX)
    kept = first.get(link).csrf()
    assert first.post(link, {"csrf": kept}).status == 303
    # When someone opens or posts it again, even with the page's own CSRF value
    again = Browser()
    page = again.get(link)
    assert page.status == 410 and 'data-kind="link_used"' in page.body
    refused = again.post(link, {"csrf": kept})
    # Then it is refused and no session starts
    assert refused.status == 410 and "hub_session" not in again.cookies


def test_an_expired_link_signs_in_nobody(web: GatewayServer, gateway: Gateway,
                                         settings: Settings, hub: str) -> None:
    browser = Browser()
    ask_for_link(browser, hub, MAX)
    link = mailed_link(settings, MAX)
    confirm = browser.get(link)
    csrf = confirm.csrf()
    with gateway.db.transaction() as session:
        session.execute(update(HubSignInLink).values(  # its 20 minutes have passed
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert browser.get(link).status == 410
    refused = browser.post(link, {"csrf": csrf})
    assert refused.status == 410 and 'data-kind="link_expired"' in refused.body
    assert "hub_session" not in browser.cookies


def test_an_unknown_address_gets_the_same_page_and_no_mail(
        web: GatewayServer, settings: Settings, hub: str) -> None:
    known, unknown = Browser(), Browser()
    assert ask_for_link(known, hub, ANNA) == 200
    mailed_link(settings, ANNA)
    form = unknown.get(f"{hub}/sign-in")
    page = unknown.post(f"{hub}/sign-in", {"email": "nobody@else.example",
                                           "csrf": form.csrf()})
    assert page.status == 200 and 'data-kind="sent"' in page.body
    assert mail_to(settings, "nobody@else.example") == []


def test_the_address_form_needs_its_csrf_value(web: GatewayServer, settings: Settings,
                                               hub: str) -> None:
    browser = Browser()
    browser.get(f"{hub}/sign-in")
    page = browser.post(f"{hub}/sign-in", {"email": MAX, "csrf": "0" * 64})
    assert page.status == 403
    assert sign_in_links(settings, MAX) == []


def test_concurrent_posts_of_one_link_start_one_session(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = Browser()
    ask_for_link(browser, hub, MAX)
    link = mailed_link(settings, MAX)
    csrf = browser.get(link).csrf()
    browsers = [Browser() for _ in range(4)]
    with ThreadPoolExecutor(len(browsers)) as pool:
        statuses = sorted(pool.map(lambda b: b.post(link, {"csrf": csrf}).status, browsers))
    assert statuses == [303, 410, 410, 410]
    assert sum("hub_session" in b.cookies for b in browsers) == 1
    with gateway.db.reading() as session:
        assert len(session.scalars(select(HubSession.id_hash)).all()) == 1


def _sign_in_with(browser: Browser, link: str, hub: str) -> None:
    confirm = browser.get(link)
    assert confirm.status == 200, confirm.body
    done = browser.post(link, {"csrf": confirm.csrf()})
    assert done.status == 303 and done.location == f"{hub}/tickets", done.body


def test_the_person_still_gets_a_link_after_someone_elses_five_requests(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    limit = settings.hub_sign_in_per_address
    # Given someone who asked for Anna's address as often as the hour allows
    attacker = Browser()
    for n in range(limit):
        assert ask_for_link(attacker, hub, ANNA.upper() if n % 2 else ANNA) == 200
    # When Anna asks in her own browser, she gets the page anyone gets
    anna = Browser()
    assert ask_for_link(anna, hub, ANNA) == 200
    # Then she is not locked out: the newest link in her mailbox signs her in
    _sign_in_with(anna, mailed_link(settings, ANNA, limit), hub)
    # And once the links in her mailbox have run out (within the same hour), asking again
    # mails her a fresh one, which works
    with gateway.db.transaction() as session:
        session.execute(update(HubSignInLink).where(HubSignInLink.used_at.is_(None)).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert ask_for_link(Browser(), hub, ANNA) == 200
    _sign_in_with(Browser(), mailed_link(settings, ANNA, limit + 1), hub)
