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
# report is in them: a spammer or a person wrote them.  The tests assert that they stay
# personal mail, because a support gateway must not drop them unread.
NOT_DELIVERY_REPORTS = {
    "bounceparser/spam-bogus-email-in-report.msg": "an ordinary spam mail, no report inside",
    "bounceparser/spam-lots-of-bogus-addresses.msg": "an ordinary spam mail, no report inside",
    "bounceparser/spam-with-badly-parsed-email.msg": "an ordinary spam mail, no report inside",
    "bounceparser/spam-with-image.msg": "an ordinary spam mail, no report inside",
    "sisimai/lhost-sendmail-14.eml": "a person forwarding a bounce (\"Forward the message.\"): "
    "that is a request for help, and must become a ticket",
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
