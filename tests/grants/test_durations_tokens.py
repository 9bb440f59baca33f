"""Durations count from the grant; tokens are random, hashed, and CSRF is bound to a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.grants.durations import DEFAULT_DURATION, DURATIONS, grant_end
from gateway.grants.tokens import (
    csrf_valid,
    csrf_value,
    hash_token,
    make_overview_token,
    new_token,
    read_overview_token,
)

AT = datetime(2026, 1, 31, 15, 30, tzinfo=UTC)


def test_offered_durations_and_their_ends() -> None:
    assert DURATIONS == ("1h", "2h", "4h", "today", "1w", "2w", "1m", "permanent")
    assert DEFAULT_DURATION == "1h"
    assert grant_end("1h", AT) == AT + timedelta(hours=1)
    assert grant_end("4h", AT) == AT + timedelta(hours=4)
    assert grant_end("2w", AT) == AT + timedelta(weeks=2)
    assert grant_end("today", AT) == datetime(2026, 2, 1, tzinfo=UTC)
    assert grant_end("today", AT, "Asia/Tokyo") == datetime(2026, 2, 1, 15, tzinfo=UTC)
    assert grant_end("1m", AT) == datetime(2026, 2, 28, 15, 30, tzinfo=UTC)
    assert grant_end("permanent", AT) is None
    with pytest.raises(ValueError, match="unknown duration"):
        grant_end("forever", AT)


def test_tokens_are_random_and_stored_as_hash() -> None:
    token, digest = new_token()
    assert len(token) >= 43 and digest == hash_token(token) and token not in digest
    assert new_token()[0] != token


def test_csrf_is_bound_to_purpose_and_page() -> None:
    value = csrf_value(b"k", "activate", "page-1")
    assert csrf_valid(b"k", "activate", "page-1", value)
    assert not csrf_valid(b"k", "activate", "page-2", value)
    assert not csrf_valid(b"k", "revoke", "page-1", value)
    assert not csrf_valid(b"other", "activate", "page-1", value)
    assert not csrf_valid(b"k", "activate", "page-1", "")


def test_overview_token_is_signed() -> None:
    token = make_overview_token(b"k", "acme", "bert@acme.example")
    claim = read_overview_token(b"k", token, 60)
    assert claim is not None and (claim.team_id, claim.person) == ("acme", "bert@acme.example")
    assert read_overview_token(b"other", token, 60) is None
    forged = make_overview_token(b"k", "globex", "bert@acme.example").split(".")[0]
    assert read_overview_token(b"k", ".".join([forged, *token.split(".")[1:]]), 60) is None
