"""The hub's main journeys in a real browser: Debian's headless Chromium driven by
Playwright, launched as ``tests/grants/test_browser.py`` launches it (one browser for the
module, one signed-in page per journey).

A member signs in from the mailed link (the form, the mail in the maildir, the link's
button), finds their ticket in "my tickets", replies on the ticket page and sees the reply
there once the pipeline has it, asks a new request and gets its acknowledgement by mail,
and signs out.  An admin sees the team's tickets (the cut-off honoured), the insights, the
recommendations and announcements, and books a call-back the agents are mailed about.
Every main page is photographed at 375 px and at 1280 px and must not scroll sideways;
every form's fields are reached by Tab in their order and each has a label.

Screenshots go to the test's temporary folder, or to ``$GATEWAY_TEST_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from gateway.config import Settings
from gateway.models import MessageRecord, Ticket, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from gateway.web.hub.pages import HubPages
from tests.browser import DESKTOP, PHONE, fits, launched_chromium
from tests.conftest import wait_for
from tests.e2e.test_conversations import (
    acknowledgement,
    body_text,
    mail_to,
    open_ticket,
    passed,
)
from tests.hub.conftest import ANNA, MAX, hub_rows_done, mailed_link, sign_in_links

WORDS = HubPages().catalog("de")  # Anna and Max read German
KENJI = "kenji@support.example"  # the directory's agent: told of call-backs
SHOTS = os.environ.get("GATEWAY_TEST_SCREENSHOTS", "")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- what every page must do ----------------------------------------------------------------

def _png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return int(struct.unpack(">I", data[16:20])[0])


def fits_both_widths(page: Page, name: str, shots: Path) -> None:
    """Photograph the page at 375 and at 1280 px; neither may scroll sideways."""
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        assert fits(page), f"{name} scrolls sideways at {viewport['width']} px"
        shot = shots / f"{name}-{viewport['width']}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert _png_width(shot) == viewport["width"]


def unlabelled_fields(page: Page) -> list[str]:
    """Form fields a screen reader could not name (no label, aria-label or -labelledby)."""
    found: list[str] = page.evaluate("""() => [...document.querySelectorAll(
        'main input:not([type=hidden]), main select, main textarea')]
        .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')
                     && !e.getAttribute('aria-labelledby'))
        .map(e => e.id || e.name)""")
    return found


def tab_order(page: Page, presses: int = 40) -> list[str]:
    """The ids Tab reaches from the top of the page, in order."""
    page.locator("body").focus()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(str(page.evaluate("document.activeElement.id || "
                                         "document.activeElement.tagName")))
    return reached


def reaches_in_order(page: Page, fields: list[str]) -> None:
    """Tab reaches each of ``fields`` (ids), in this order, each with a label."""
    reached = tab_order(page)
    positions = [reached.index(f) if f in reached else -1 for f in fields]
    assert -1 not in positions, f"Tab never reaches {fields}: {reached}"
    assert positions == sorted(positions), f"Tab order {reached}, wanted {fields}"
    assert unlabelled_fields(page) == []


def h1(page: Page) -> str:
    return page.locator("h1").inner_text().strip()


# -- signing in -------------------------------------------------------------------------------

def sign_in(browser: Browser, settings: Settings, hub: str, address: str,
            shots: Path | None = None) -> Page:
    """Ask for a link on the form, open the mailed link, press its button."""
    page = browser.new_page(viewport=DESKTOP, locale="de-DE")  # a German browser
    before = len(sign_in_links(settings, address))
    page.goto(f"{hub}/sign-in")
    assert h1(page) == WORDS["sign_in_title"]
    if shots is not None:
        fits_both_widths(page, "sign-in", shots)
        reaches_in_order(page, ["email", "send-link"])
    page.locator("#email").fill(address)
    page.locator("#send-link").click()
    page.wait_for_selector('#message[data-kind="sent"]')  # the same page for any address
    link = mailed_link(settings, address, before + 1)
    answer = page.goto(link)
    assert answer is not None and answer.status == 200
    assert page.locator("#sign-in").count() == 1  # the GET only shows the button
    if shots is not None:
        fits_both_widths(page, "sign-in-link", shots)
    page.locator("#sign-in").click()
    page.wait_for_url(f"{hub}/tickets")
    assert page.locator("#visitor").count() == 1
    return page


# -- a member ---------------------------------------------------------------------------------

def test_a_member_signs_in_replies_and_asks_in_a_browser(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str,
        browser: Browser, shots: Path) -> None:
    # Given Max's ticket, opened by mail
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"),
                            subject="VPN drops every hour")
    # When he signs in from the mailed link
    page = sign_in(browser, settings, hub, MAX, shots)
    # Then "my tickets" lists it
    assert h1(page) == WORDS["tickets_title"]
    row = page.locator(f'tr[data-number="{number}"]')
    assert "VPN drops every hour" in row.inner_text()
    assert page.locator("#nav-team").count() == 0  # not an admin
    fits_both_widths(page, "my-tickets", shots)
    reaches_in_order(page, ["status", "since", "until", "filter"])
    # When he opens it and replies
    row.locator("a").first.click()
    page.wait_for_url(f"{hub}/tickets/{number}")
    assert h1(page).startswith(f"#{number}")
    fits_both_widths(page, "ticket", shots)
    reaches_in_order(page, ["text", "files", "send-reply"])
    page.locator("#text").fill("It dropped again at 10:15, right after lunch.")
    page.locator("#send-reply").click()
    page.wait_for_selector('#notice[data-notice="reply_received"]')
    # Then the reply goes through the pipeline onto the ticket, and the page shows it
    hub_rows_done(gateway, 1)
    page.goto(f"{hub}/tickets/{number}")
    history = page.locator(".history").inner_text()
    assert "It dropped again at 10:15, right after lunch." in history
    # When he asks a new request
    page.locator("#nav-new").click()
    page.wait_for_url(f"{hub}/new")
    assert h1(page) == WORDS["new_title"]
    fits_both_widths(page, "new-request", shots)
    fields = ["category", "subject", "text", "files", "send-request"]
    if page.locator("#product").count():
        fields.insert(0, "product")
    reaches_in_order(page, fields)
    page.locator("#category").select_option("administrative")
    page.locator("#subject").fill("Invoice lists 30 licences")
    page.locator("#text").fill("Our November invoice lists 30 licences; we have 25.")
    page.locator("#send-request").click()
    page.wait_for_selector('#notice[data-notice="request_received"]')
    # Then it becomes a ticket with an acknowledgement in his mailbox, and is listed
    rows = hub_rows_done(gateway, 2)
    new_number = rows[-1].ticket_number
    assert new_number is not None and new_number != number
    assert acknowledgement(settings, MAX, new_number)["Auto-Submitted"] == "auto-replied"
    page.goto(f"{hub}/tickets")
    assert "Invoice lists 30 licences" in page.locator(
        f'tr[data-number="{new_number}"]').inner_text()
    # When he signs out, the hub asks him to sign in again
    page.locator("#sign-out").click()
    page.wait_for_selector('#notice[data-notice="signed_out"]')
    page.goto(f"{hub}/tickets")
    assert page.url.startswith(f"{hub}/sign-in") and page.locator("#email").count() == 1
    page.close()


# -- an admin ---------------------------------------------------------------------------------

def _old_team_ticket(gateway: Gateway) -> int:
    """A ticket of Max's from before the cut-off, untouched since."""
    long_ago = datetime(2024, 11, 20, 9, 0, tzinfo=UTC)
    with gateway.db.transaction() as session:
        old = Ticket(subject="Old sync problem", status=TicketStatus.CLOSED, requester=MAX,
                     requester_name="Max Member", team_id="acme", created_at=long_ago,
                     updated_at=long_ago)
        session.add(old)
        session.flush()
        session.add(MessageRecord(ticket_number=old.number, from_address=MAX, role="requester",
                                  text="Sync stopped.", received_at=long_ago,
                                  threaded_by="new_ticket"))
        return old.number


def test_an_admin_sees_the_team_and_books_a_call_back_in_a_browser(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str,
        browser: Browser, shots: Path) -> None:
    # Given a recent ticket of Max's and one from before the cut-off
    recent, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"),
                            subject="Sharing links expire too early")
    old = _old_team_ticket(gateway)
    # When Anna, the team's admin, signs in and opens the team's tickets
    page = sign_in(browser, settings, hub, ANNA)
    page.locator("#nav-team").click()
    page.wait_for_url(f"{hub}/tickets?scope=team")
    # Then she sees Max's recent ticket, not the one from before the cut-off
    assert h1(page) == WORDS["team_tickets_title"]
    assert page.locator("#cutoff").count() == 1
    assert MAX in page.locator(f'tr[data-number="{recent}"]').inner_text()
    assert page.locator(f'tr[data-number="{old}"]').count() == 0
    fits_both_widths(page, "team-tickets", shots)
    # And a team ticket opens with the colleague hint above the reply form
    page.locator(f'tr[data-number="{recent}"] a').first.click()
    page.wait_for_url(f"{hub}/tickets/{recent}")
    assert page.locator("#colleague-hint").count() == 1
    # When she opens the insights
    page.locator("#nav-insights").click()
    page.wait_for_url(f"{hub}/insights")
    # Then they count the team's requests, the old one too, and the one still open
    assert h1(page) == WORDS["insights_title"]
    assert page.locator("#total-requests").inner_text() == "2"
    assert page.locator("#open-tickets").inner_text() == "1"
    fits_both_widths(page, "insights", shots)
    # And the recommendations and announcements show in the same frame
    for key in ("recommendations", "announcements"):
        page.locator(f"#nav-{key}").click()
        page.wait_for_url(f"{hub}/{key}")
        assert h1(page) == WORDS[f"{key}_title"]
        fits_both_widths(page, key, shots)
    # When she opens the call-back form
    page.locator("#nav-callback").click()
    page.wait_for_url(f"{hub}/callback")
    assert h1(page) == WORDS["callback_title"]
    fits_both_widths(page, "callback", shots)
    reaches_in_order(page, ["topic", "phone", "day", "start", "end", "timezone",
                            "book-callback"])
    # And books one for the proposed day, 09:00-11:00 Berlin time
    assert page.locator("#timezone").input_value() == "Europe/Berlin"
    page.locator("#topic").fill("Setting up sync for the new Hamburg office")
    page.locator("#phone").fill("+49 40 1234567")
    page.locator("#book-callback").click()
    page.wait_for_selector('#notice[data-notice="callback_booked"]')
    # Then the page shows her booking instead of the form
    assert page.locator("#booked").count() == 1 and page.locator("#callback-form").count() == 0
    assert "+49 40 1234567" in page.locator("#booked").inner_text()
    fits_both_widths(page, "callback-booked", shots)
    # And the agents are told by mail, with the topic and the number to call
    told = wait_for(lambda: [m for m in mail_to(settings, KENJI)
                             if "Hamburg office" in body_text(m)],
                    message="the agents' call-back mail")
    assert "+49 40 1234567" in body_text(told[0])
    page.close()
