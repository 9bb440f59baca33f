"""What a request is about: product, category and script, from addresses and words.

Pure functions over plain values; each returns its answer with the reason, which
ends up in the ticket's explanation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Protocol

from rules.keywords import KeywordMatcher
from rules.policy import Policy

__all__ = ["category_for", "mostly_japanese", "product_for"]

_JAPANESE_RANGES = r"\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"
_JAPANESE = re.compile(f"[{_JAPANESE_RANGES}]")
_LETTER = re.compile(r"[^\W\d_]")
_JAPANESE_LETTER = re.compile(rf"(?=[^\W\d_])[{_JAPANESE_RANGES}]")


def mostly_japanese(text: str) -> bool:
    """True when more than half of the letters are kana or kanji."""
    sample = text[:5000]
    if sample.isascii():  # no kana or kanji can be in it: a C scan, not a regex one
        return False
    if _JAPANESE.search(sample) is None:  # nearly every non-Japanese text: one quick scan
        return False
    letters = len(_LETTER.findall(sample))
    return letters > 0 and len(_JAPANESE_LETTER.findall(sample)) * 2 > letters


@lru_cache(maxsize=256)
def _wanted(addresses: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """A policy entry's addresses as compared: all of them, and the bare local parts (no
    ``@``) among them.  Cached: every request asks about the same few entries."""
    items = [item.strip().lower() for item in addresses]
    return frozenset(items), frozenset(item for item in items if "@" not in item)


@lru_cache(maxsize=256)
def _matcher(keywords: tuple[str, ...]) -> KeywordMatcher:
    # No spaces between Japanese words: a Japanese keyword is a plain substring.
    return KeywordMatcher([(keyword, keyword, False) if _JAPANESE.search(keyword)
                           else (keyword, keyword.lower(), True) for keyword in keywords])


def _keyword_in(text: str, keywords: Iterable[str]) -> str | None:
    """The first of ``keywords`` that ``text`` (lower case) mentions as a word."""
    return _matcher(tuple(keywords)).first(text)


class _Routed(Protocol):
    addresses: list[str]
    keywords: list[str]


def _by_address_or_keyword(what: str, entries: Mapping[str, _Routed],
                           recipients: Sequence[str], subject: str, text: str
                           ) -> tuple[str, str] | None:
    """The first entry a recipient address names, else the first whose keyword the request
    mentions; with the reason.  Products and categories are found the same way."""
    if recipients:
        wanted = [(key, *_wanted(tuple(spec.addresses))) for key, spec in entries.items()]
        for recipient in recipients:
            # an entry's address names the recipient whole, or a bare local part names its
            # local part without a +detail
            address = recipient.strip().lower()
            local = address.partition("@")[0].partition("+")[0]
            for key, whole, bare in wanted:
                if address in whole or local in bare:
                    return key, f"{what} {key}: sent to {recipient}"
    words = f"{subject}\n{text[:5000]}".lower()
    for key, spec in entries.items():
        keyword = _keyword_in(words, spec.keywords)
        if keyword is not None:
            return key, f"{what} {key}: the request mentions {keyword!r}"
    return None


def product_for(policy: Policy, recipients: Sequence[str], subject: str, text: str,
                team_products: Sequence[str], known_products: Sequence[str]
                ) -> tuple[str | None, str]:
    """The product a new request is about, and why; None when it cannot be told."""
    found = _by_address_or_keyword("product", policy.spec.products, recipients, subject, text)
    if found is not None:
        return found
    distinct = sorted(set(team_products))
    if len(distinct) == 1:
        return distinct[0], f"product {distinct[0]}: the team's only product"
    if not distinct and len(set(known_products)) == 1:
        return known_products[0], f"product {known_products[0]}: the only product we support"
    if distinct:
        return None, f"product unknown: the team has {', '.join(distinct)} and none was named"
    return None, "product unknown: none was named"


def category_for(policy: Policy, recipients: Sequence[str], subject: str, text: str
                 ) -> tuple[str, str]:
    """technical, administrative or commercial (the policy's keys), and why."""
    found = _by_address_or_keyword("category", policy.spec.categories, recipients, subject,
                                   text)
    if found is not None:
        return found
    default = policy.spec.default_category
    return default, f"category {default}: the default"
