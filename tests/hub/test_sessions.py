"""Hub sessions over a real socket: idle and absolute expiry, sign-out, the cookie's flags,
and the limits on asking for sign-in links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from gateway.config import Settings
from gateway.models import HubSession, HubSignInAttempt, HubSignInLink
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import Processes, serve_in_process
from tests.hub.conftest import MAX, ask_for_link, sign_in_links, signed_in
from tests.hub.http import Browser


def _age(gateway: Gateway, **ago: timedelta) -> None:
    now = datetime.now(UTC)
    with gateway.db.transaction() as session:
        session.execute(update(HubSession).values({k: now - v for k, v in ago.items()}))


def test_a_session_ends_after_the_idle_timeout(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    _age(gateway, last_seen_at=timedelta(seconds=settings.hub_session_idle - 60))
    assert browser.get(f"{hub}/tickets").status == 200  # used in time: goes on
    _age(gateway, last_seen_at=timedelta(seconds=settings.hub_session_idle + 1))
    page = browser.get(f"{hub}/tickets")
    assert page.status == 303 and page.location == f"{hub}/sign-in"


def test_a_busy_session_still_ends_after_its_lifetime(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    _age(gateway, created_at=timedelta(seconds=settings.hub_session_lifetime + 1),
         last_seen_at=timedelta(seconds=5))
    assert browser.get(f"{hub}/tickets").status == 303


def test_sign_out_ends_the_session_for_good(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = signed_in(settings, hub, MAX)
    cookie = browser.cookies["hub_session"]
    out = browser.post(f"{hub}/sign-out", {"csrf": browser.get(f"{hub}/tickets").csrf()})
    assert out.status == 303 and out.location == f"{hub}/sign-in?notice=signed_out"
    assert "hub_session" not in browser.cookies  # the cookie is cleared
    assert 'data-notice="signed_out"' in browser.get(out.location).body
    replay = Browser(cookies={"hub_session": cookie})  # a copy of the old cookie
    assert replay.get(f"{hub}/tickets").status == 303
    with gateway.db.reading() as session:
        assert session.scalar(select(HubSession.ended_at)) is not None
        assert session.scalar(select(HubSession.id_hash)) != cookie  # only the hash at rest


def _links(gateway: Gateway, address: str) -> int:
    """Sign-in links made for ``address`` (each one mailed)."""
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(HubSignInLink).where(
            HubSignInLink.email == address)) or 0


def test_asking_too_often_for_one_address_mails_nothing_more_while_a_link_works(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    browser = Browser()
    for _ in range(settings.hub_sign_in_per_address):
        assert ask_for_link(browser, hub, MAX) == 200
    # When the address is asked for again within the hour, while its links still work
    form = browser.get(f"{hub}/sign-in")
    page = browser.post(f"{hub}/sign-in", {"email": MAX.upper(), "csrf": form.csrf()})
    # Then the page is the one any address gets (it tells nothing), and no link is added
    assert page.status == 200 and 'data-kind="sent"' in page.body
    assert _links(gateway, MAX) == settings.hub_sign_in_per_address


def test_one_client_asking_for_many_addresses_is_refused(
        web: GatewayServer, settings: Settings, hub: str) -> None:
    browser = Browser()
    for n in range(settings.hub_sign_in_per_client):
        assert ask_for_link(browser, hub, f"probe{n}@else.example") == 200
    assert ask_for_link(browser, hub, MAX) == 429
    assert sign_in_links(settings, MAX) == []


def test_on_https_the_cookie_is_secure(
        settings_factory: Callable[..., Settings], processes: Processes) -> None:
    base = settings_factory()
    secure = settings_factory(web_listen=base.web_listen, smtp_listen=base.smtp_listen,
                              public_url=f"https://{base.web_listen}")
    gw = Gateway(secure)
    try:
        with serve_in_process(gw, secure, processes, run_web=True):
            form = Browser().get(f"http://{base.web_listen}/hub/sign-in")
            cookie = next(c for c in form.set_cookies if c.startswith("hub_sign_in="))
            assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/hub" in cookie
    finally:
        gw.close()


def test_old_attempts_links_and_sessions_are_forgotten(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    # Given a used link, an ended session and a full hour of attempts, all two days old
    browser = signed_in(settings, hub, MAX)
    browser.post(f"{hub}/sign-out", {"csrf": browser.get(f"{hub}/tickets").csrf()})
    for _ in range(settings.hub_sign_in_per_address - 1):
        ask_for_link(Browser(), hub, MAX)
    old = datetime.now(UTC) - timedelta(days=2)
    with gateway.db.transaction() as session:
        session.execute(update(HubSignInAttempt).values(at=old))
        session.execute(update(HubSignInLink).values(created_at=old, expires_at=old))
        session.execute(update(HubSession).values(created_at=old, ended_at=old))
    # When someone asks for a link again, the limit has room and the old rows are gone
    assert ask_for_link(Browser(), hub, MAX) == 200
    with gateway.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(HubSignInAttempt)) == 1
        assert session.scalar(select(func.count()).select_from(HubSignInLink)) == 1
        assert session.scalar(select(func.count()).select_from(HubSession)) == 0
