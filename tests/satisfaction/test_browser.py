"""The "was this helpful?" page in a real browser on a 375 px phone: Debian's headless
Chromium driven by Playwright, launched as ``tests/grants/test_browser.py`` launches it.

The requester opens the link from the mail, which fetches nothing but the page itself and
fits the screen; they choose "no", write a comment and send; the ticket has the answer;
the link opened again says it was recorded already.  Every page in every language fits
the phone too, with a long unbroken subject.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, ViewportSize

from gateway.config import Settings
from gateway.grants.pages import PageRenderer
from gateway.models import Ticket
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.views import ticket_view
from outbound.render import LANGUAGES
from tests.browser import fits
from tests.satisfaction.conftest import solve

PHONE: ViewportSize = {"width": 375, "height": 667}
LONG_SUBJECT = "Synchronisationsfehler_" * 8 + " „Quartalsberichte 2026/Q3 – Finanzen“"


def test_answer_on_a_phone(web: GatewayServer, gw: Gateway, settings: Settings,
                           browser: Browser) -> None:
    solved = solve(settings, gw, subject=LONG_SUBJECT)
    page = browser.new_page(viewport=PHONE)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    response = page.goto(solved.link)
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Hat Ihnen das geholfen?"
    assert fits(page)
    assert fetched == [solved.link]  # no outside assets, not even a favicon of ours
    page.locator("#rating-bad").check()
    page.locator("#comment").fill("Die Synchronisation läuft, aber sehr langsam.")
    page.locator("#send").click()
    page.wait_for_selector('#message[data-kind="recorded"]')
    assert page.locator("h1").inner_text() == "Vielen Dank" and fits(page)
    with gw.db.reading() as session:
        ticket = session.get(Ticket, solved.number)
        assert ticket is not None
        answer: Any = ticket_view(ticket, with_messages=False)["satisfaction"]
    assert (answer["rating"], answer["comment"]) == (
        "bad", "Die Synchronisation läuft, aber sehr langsam.")
    again = page.goto(solved.link)
    assert again is not None and again.status == 410
    assert page.locator("h1").inner_text() == "Antwort bereits erfasst"


def test_every_page_fits_a_phone_in_every_language(browser: Browser) -> None:
    pages = PageRenderer(section="satisfaction")
    phone = browser.new_page(viewport=PHONE)
    too_wide: list[str] = []
    for language in LANGUAGES:
        shown = {"ask": pages.render("ask", language, {
            "ticket_number": 104711, "subject": LONG_SUBJECT, "ratings": ("good", "bad"),
            "comment_limit": 2000, "csrf": "ab" * 32})}
        shown |= {f"thanks_{r}": pages.render("thanks", language, {"rating": r})
                  for r in ("good", "bad")}
        shown |= {k: pages.render("message", language, {"key": k})
                  for k in ("unknown", "used", "expired", "csrf", "badform")}
        for name, html in shown.items():
            phone.set_content(html, wait_until="domcontentloaded")
            if not fits(phone):
                too_wide.append(f"{name}/{language}")
    assert not too_wide
