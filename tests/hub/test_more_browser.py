"""The insights and call-back pages in a real browser (Debian's headless Chromium driven by
Playwright, launched as ``tests/grants/test_browser.py`` launches it): an admin signed in by
the mailed link reads her team's insights at 1280 px and books a call-back on a 375 px
phone; every page of this group fits both widths in every language, with long words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import Callback, Ticket, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.web.hub.pages import HubPages
from outbound.render import LANGUAGES
from tests.browser import DESKTOP, PHONE, fits
from tests.hub.conftest import ANNA, signed_in
from tests.hub.test_more_page_words import PAGES
from tests.hub.test_page_words import LAYOUT

LONG = "Synchronisationskonfliktbehandlung_" * 4




def test_every_page_fits_a_phone_and_a_desktop_in_every_language(browser: Browser) -> None:
    pages = HubPages()
    too_wide: list[str] = []
    long_layout = {**LAYOUT, "nav": [{"key": k, "url": "http://h/hub", "label": LONG,
                                      "current": False} for k in ("a", "b")]}
    for viewport in (PHONE, DESKTOP):
        screen = browser.new_page(viewport=viewport)
        for language in LANGUAGES:
            for name, context in PAGES.items():
                html = pages.render(name.removesuffix("_booked"), language,
                                    {**long_layout, **context}).replace(
                                        "&lt;script&gt;x&lt;/script&gt;", LONG)
                screen.set_content(html, wait_until="domcontentloaded")
                if not fits(screen):
                    too_wide.append(f"{name}/{language}/{viewport['width']}")
        screen.close()
    assert not too_wide


def test_an_admin_reads_insights_and_books_a_call_back_on_a_phone(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str,
        browser: Browser) -> None:
    # Given acme has two open tickets and Anna signed in with the mailed link
    created = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with gateway.db.transaction() as session:
        session.add_all(Ticket(subject=f"t{n}", requester=ANNA, team_id="acme",
                               product="files", issue_type="sync", status=TicketStatus.OPEN,
                               created_at=created, updated_at=created) for n in range(2))
    session_cookie = signed_in(settings, hub, ANNA).cookies["hub_session"]
    context = browser.new_context(viewport=DESKTOP)
    context.add_cookies([{"name": "hub_session", "value": session_cookie, "url": hub}])
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))

    # When she opens insights on a desktop
    response = page.goto(f"{hub}/insights")

    # Then she reads her team's numbers in German, and the page fetched nothing else
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Einblicke"
    assert page.locator("#open-tickets").inner_text() == "2" and fits(page)
    assert fetched == [f"{hub}/insights"]

    # When she books a call-back on her phone through the form
    page.set_viewport_size(PHONE)
    page.locator("#nav-callback").click()
    page.wait_for_selector("#callback-form")
    assert fits(page)
    day = datetime.now(UTC).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    page.locator("#topic").fill("Sync conflicts in the shared folder")
    page.locator("#phone").fill("+49 221 1234567")
    page.locator("#day").fill(day.isoformat())
    page.locator("#start").select_option("14")
    page.locator("#end").select_option("16")
    page.locator("#book-callback").click()

    # Then the page confirms it and shows the booking, still fitting the phone
    page.wait_for_selector('#notice[data-notice="callback_booked"]')
    assert f"{day.isoformat()} 14:00–16:00 Europe/Berlin" in page.locator("#booked").inner_text()
    assert fits(page)
    with gateway.db.reading() as session:
        assert [c.topic for c in session.scalars(select(Callback))] == [
            "Sync conflicts in the shared folder"]
    context.close()
