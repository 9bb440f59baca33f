"""Every mail kind in every language fits a 375 px phone screen: no horizontal scrolling.

Debian's headless Chromium driven by Playwright, launched as ``tests/grants/test_browser.py``
launches it; one browser and one page, each mail's HTML body loaded with ``set_content``.
The contexts (``tests/outbound/mail_kinds.py``) carry long URLs, long subjects, long names
and unbroken words, as real mail does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from outbound.render import LANGUAGES, Renderer
from tests.browser import PHONE, fits, launched_chromium
from tests.outbound.mail_kinds import CONTEXTS, context


@pytest.fixture(scope="module")
def phone() -> Iterator[Page]:
    with launched_chromium() as browser:
        yield browser.new_page(viewport=PHONE)


def test_every_mail_fits_a_375_px_screen(phone: Page) -> None:
    # Given every kind of mail in every language, rendered with a demanding context
    renderer = Renderer()
    too_wide: list[str] = []
    checked = 0
    for kind in sorted(CONTEXTS):
        for language in LANGUAGES:
            html = renderer.render(kind, language, context(kind)).html
            # When a phone shows its HTML body
            phone.set_content(html, wait_until="domcontentloaded")
            checked += 1
            # Then nothing scrolls sideways
            if not fits(phone):
                too_wide.append(f"{kind}/{language}")
    assert checked == len(CONTEXTS) * len(LANGUAGES)
    assert not too_wide, "\n".join(too_wide)
