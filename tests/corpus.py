"""Locate the shared real-world mail corpus; tests fail (never skip) without it.

The corpus lives outside the repository (``GATEWAY_TEST_CORPUS`` or
``../shared/corpus`` next to the repo root) and is never copied in: it is
read-only test data with its own provenance and licences.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

__all__ = ["corpus_available", "corpus_dir", "load_index"]

# Rows of bounces/ that the index labels bounce (and automatic) although no delivery
# report is in them: a spammer or a person wrote them.  Each was read by hand (issue 14):
# none carries a sign of machine mail (no report part, no X-Failed-Recipients, no
# Auto-Submitted or Precedence, no mail-system sender, nothing but a person's From and
# Return-Path), so with a person's envelope they are a person's mail and open a ticket
# (Zammad's bounce filters too act only on a delivery report, the Mail gem's ``bounced?``);
# with the null sender no person sends, and they open none.  Spam is the spam filter's business, not
# the bounce classifier's: dropping mail that merely names addresses or says "returned"
# would drop customers' mail too.  The tests assert that they stay personal mail.
NOT_DELIVERY_REPORTS = {
    "bounceparser/spam-bogus-email-in-report.msg":
        "HTML spam (\"Get a $1000.00 Babies R Us gift card on us\") from spammer@example.net, "
        "no report inside; upstream's own test says \"a non-bounce spam message is parsed as "
        "a bounce\" and asserts that no report comes out (t/spam-bogus-email-in-report.t)",
    "bounceparser/spam-lots-of-bogus-addresses.msg":
        "Outlook Express spam (\"Hey baby, found this site ...\", \"P@tches\" offers), no "
        "report inside; upstream's test calls it \"a non-bounce spam message\" whose "
        "\"P@ck@ge\" strings were misread as addresses, and asserts no report",
    "bounceparser/spam-with-badly-parsed-email.msg":
        "HTML pill spam (\"My dream\") from a hotmail.com address, no report inside; no "
        "upstream test asserts anything about it: the index labels it by its folder only "
        "(confidence \"name-derived\")",
    "bounceparser/spam-with-image.msg":
        "image spam (\"Re:\", a PNG and one line of text) from spammer@example.com, no "
        "report inside; upstream's test is about image data misread as reports and asserts "
        "\"No reports (good)\" (t/spam-with-image.t)",
    "sisimai/lhost-sendmail-14.eml":
        "a person forwarding a bounce with Apple Mail (\"Forward the message.\", subject "
        "\"Fwd: Returned mail: see transcript for details\", the report quoted with '>'): "
        "sisimai reads bounces out of forwards on purpose, but sent to a helpdesk it is a "
        "request for help (\"why did my mail fail?\") and must become a ticket",
}
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _location() -> Path:
    configured = os.environ.get("GATEWAY_TEST_CORPUS")
    return Path(configured) if configured else _REPO_ROOT.parent / "shared" / "corpus"


def corpus_available() -> bool:
    """Whether the corpus is there; for building parameter lists at collection time.

    Test modules use it to collect a single placeholder test when the corpus is
    missing, which then fails through :func:`corpus_dir`: the rest of the suite
    still runs, and the run still fails.
    """
    return (_location() / "README.md").is_file()


def corpus_dir() -> Path:
    """The corpus directory; fails the calling test if it is missing."""
    path = _location()
    if not (path / "README.md").is_file():
        pytest.fail(
            f"mail corpus not found at {path}; set GATEWAY_TEST_CORPUS to its directory",
            pytrace=False,
        )
    return path


def load_index(folder: str) -> dict[str, Any]:
    """The parsed ``index.json`` of one corpus folder (e.g. ``"replies"``)."""
    index_path = corpus_dir() / folder / "index.json"
    if not index_path.is_file():
        pytest.fail(f"corpus index missing: {index_path}", pytrace=False)
    data: dict[str, Any] = json.loads(index_path.read_text(encoding="utf-8"))
    return data


@cache
def corpus_entries(folder: str) -> tuple[dict[str, Any], ...]:
    """The index entries of one folder, read once per test run."""
    return tuple(load_index(folder)["entries"])


@cache
def corpus_bytes(folder: str, name: str) -> bytes:
    """One corpus file's raw bytes, read once per test run."""
    return (corpus_dir() / folder / name).read_bytes()
