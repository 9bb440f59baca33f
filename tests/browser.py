"""What the browser tests share: Debian's Chromium under Playwright, the two screen sizes
the pages and mail are checked at, and the check a phone user makes first (does the page
scroll sideways?)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "browser", "fits", "launched_chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE: ViewportSize = {"width": 375, "height": 667}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; for fixtures of any scope."""
    assert Path(CHROMIUM).exists(), "Debian chromium is required (make system-deps)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


def fits(page: Page) -> bool:
    """No horizontal scrolling: the document is no wider than the viewport."""
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    return bool(scroll <= client)
