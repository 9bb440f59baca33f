"""The one-pass keyword matcher and script test give what the obvious loops give."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.classify import _JAPANESE, _LETTER, _keyword_in, mostly_japanese
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
