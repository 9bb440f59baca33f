"""What the browser tests share: Debian's Chromium under Playwright, and the check a phone
user makes first (does the page scroll sideways?)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.grants.test_browser import CHROMIUM, CHROMIUM_ARGS

__all__ = ["browser", "fits"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def fits(page: Page) -> bool:
    """No horizontal scrolling: the document is no wider than the viewport."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    return bool(scroll <= client)
