"""The one-pass keyword matcher and script test give what the obvious loops give."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.classify import (
    _JAPANESE,
    _LETTER,
    _by_address_or_keyword,
    _keyword_in,
    mostly_japanese,
)
from rules.keywords import KeywordMatcher

WORDS = ["login", "log in", "invoice", "sso", "c++", "請求書", "ログイン", "export", "x"]
text_parts = st.sampled_from([*WORDS, " ", "\n", "-", "relogin", "loginx", "Login", "。", "é",
                              "ー", "・", "1"])


def _slow_first(text: str, keywords: list[str]) -> str | None:
    for keyword in keywords:
        if _JAPANESE.search(keyword):
            if keyword in text:
                return keyword
        elif re.search(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)", text):
            return keyword
    return None


def _slow_mostly_japanese(text: str) -> bool:
    letters = _LETTER.findall(text[:5000])
    return bool(letters) and sum(1 for c in letters if _JAPANESE.match(c)) * 2 > len(letters)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(text_parts, max_size=30),
       keywords=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6, unique=True))
def test_first_keyword_in_list_order(parts: list[str], keywords: list[str]) -> None:
    text = "".join(parts).lower()
    assert _keyword_in(text, keywords) == _slow_first(text, keywords)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(text_parts, max_size=40))
def test_mostly_japanese_counts_only_japanese_letters(parts: list[str]) -> None:
    text = "".join(parts)
    assert mostly_japanese(text) == _slow_mostly_japanese(text)


def test_examples() -> None:
    matcher = KeywordMatcher([("invoice", "invoice", True), ("sso", "sso", True),
                              ("請求", "請求", False)])
    assert matcher.first("our sso and the invoice") == "invoice"  # list order, not text order
    assert matcher.first("invoices and ssox") is None
    assert matcher.first("ご請求について") == "請求"
    assert KeywordMatcher([]).first("anything") is None
    assert mostly_japanese("ログインできません。help") and not mostly_japanese("ー・ー abc")


@dataclass
class _Entry:
    addresses: list[str]
    keywords: list[str] = field(default_factory=list)


def _slow_by_address(entries: dict[str, _Entry], recipients: list[str]) -> str | None:
    """The loop the sets replaced: recipients in order, then entries, then their items."""
    for recipient in recipients:
        address = recipient.strip().lower()
        local = address.partition("@")[0].partition("+")[0]
        for key, entry in entries.items():
            for item in entry.addresses:
                item = item.strip().lower()
                if item == address or ("@" not in item and item == local):
                    return f"product {key}: sent to {recipient}"
    return None


ADDRESSES = ["sales", "Sales@Support.example", " billing ", "billing@other.example", "x+y",
             "support", "sales@support.example"]
RECIPIENTS = ["sales@support.example", "SALES+eu@support.example", "billing@other.example ",
              "Billing", "x+y@support.example", "x@support.example", "nobody@support.example",
              "sales"]


@settings(max_examples=300, deadline=None)
@given(entries=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                               st.lists(st.sampled_from(ADDRESSES), max_size=3), max_size=4),
       recipients=st.lists(st.sampled_from(RECIPIENTS), max_size=4))
def test_address_routing_is_the_first_recipient_and_entry_named(
        entries: dict[str, list[str]], recipients: list[str]) -> None:
    routed = {key: _Entry(addresses) for key, addresses in entries.items()}
    found = _by_address_or_keyword("product", routed, recipients, "", "")
    assert (found[1] if found else None) == _slow_by_address(routed, recipients)
