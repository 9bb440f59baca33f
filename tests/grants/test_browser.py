"""End to end in a real browser: Debian's headless Chromium driven by Playwright.

The gateway serves, the CLI requests access, the activation mail is read from the
maildir, the browser opens the link, keeps the default hour and confirms; the
check then allows (and denies after the hour); the link opened again shows the
"used" page; the overview page revokes; the check denies.  Playwright never
downloads a browser here: it drives /usr/bin/chromium (Makefile system-deps).
"""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser

from gateway.config import Settings
from gateway.models import utcnow
from tests.conftest import run_gateway
from tests.grants.conftest import activation_link, overview_link, wait_for_mail


def _check(settings: Settings, *extra: str) -> int:
    return run_gateway(settings, "grants", "check", "--team", "acme", "--agent",
                       "kenji@support.example", *extra).returncode


def test_grant_and_revoke_in_a_real_browser(web: str, settings: Settings,
                                            browser: Browser) -> None:
    # Given Kenji asks for access to Acme through the support tooling
    done = run_gateway(settings, "grants", "request", "--team", "acme", "--agent",
                       "kenji@support.example", "--reason", "Sync fails since Monday")
    assert done.returncode == 0, done.stderr
    # When Bert opens the link from his mail in the browser
    mail = wait_for_mail(settings, 1, To="bert@acme.example")[0]
    link = activation_link(mail)
    page = browser.new_page()
    response = page.goto(link)
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Grant support access"
    assert page.locator("#reason").inner_text() == "Sync fails since Monday"
    # Then the page offers one hour by default and no export
    assert page.locator('input[name="duration"][value="1h"]').is_checked()
    assert not page.locator('input[name="export"]').is_checked()
    assert _check(settings) == 1  # opening the page granted nothing
    # When he keeps the default and confirms
    page.locator("#confirm").click()
    page.wait_for_selector("#result")
    assert page.locator("h1").inner_text() == "Access granted"
    # Then Kenji is allowed now, not to export, and not after the hour
    assert _check(settings) == 0
    assert _check(settings, "--export") == 1
    later = (utcnow() + timedelta(minutes=61)).strftime("%Y-%m-%dT%H:%M:%S")
    assert _check(settings, "--at", later) == 1
    # When the link is opened a second time
    second = page.goto(link)
    assert second is not None and second.status == 410
    assert page.locator("h1").inner_text() == "Link already used"
    # When Bert revokes the grant from the overview page linked in his mail
    page.goto(overview_link(mail))
    assert page.locator("#live").count() == 1
    page.locator("#live button").first.click()
    page.wait_for_selector("#notice")
    assert page.locator("#no-live").count() == 1
    # Then access ends at once
    assert _check(settings) == 1
    page.close()
