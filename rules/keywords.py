"""Which keyword of a list a text mentions first, cheaply.

Classification runs over every new request (products, categories, issue types:
dozens of keywords, each looked for in up to 5,000 characters).  A regex per
keyword, or one alternation of them all, walks the text once per keyword and
position; a plain substring test is a fast C scan.  So each keyword is first
looked for as a substring, and only a text that contains it is checked with the
word-boundary regex.  The answer stays "the first keyword in the list's order",
as the policy files promise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["KeywordMatcher"]


class KeywordMatcher:
    """``first(text)``: the first keyword whose needle ``text`` contains (as a whole word
    where ``whole_word``).  Entries are ``(keyword, needle, whole_word)``; the caller
    lower-cases needle and text alike."""

    def __init__(self, keywords: Sequence[tuple[str, str, bool]]) -> None:
        self._entries = tuple(
            (keyword, needle,
             re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)") if whole_word else None)
            for keyword, needle, whole_word in keywords)

    def first(self, text: str) -> str | None:
        for keyword, needle, word in self._entries:
            if needle in text and (word is None or word.search(text)):
                return keyword
        return None
