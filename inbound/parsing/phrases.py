"""Case-insensitive phrase search that is fast on ordinary mail.

The loop and bounce classifiers and the reply splitter test every message against
long alternations of phrases; CPython's ``re`` tries every branch at every
position under IGNORECASE.  :class:`Phrases` searches the lower-cased text with a
case-sensitive pattern (exact, see ``_FOLD_UNSAFE``) after cheap substring tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["Folded", "Phrases", "fold", "own_needles"]

#: Characters on which ``re.IGNORECASE`` and ``str.lower()`` disagree: the variant
#: letters of CPython's case-fix table (dotless i, long s, micro sign, Greek symbol
#: forms and final sigma, the Cyrillic "rounded" letters U+1C80-U+1C88, ...), capital
#: sigma (which ``lower()`` turns into either sigma by context) and U+0130 (whose lower
#: case is two characters).  On text without them, and with a pattern written in lower
#: case, matching ``text.lower()`` finds exactly what IGNORECASE finds in ``text``, at
#: the same positions: checked for every code point with Python 3.11's tables.
_FOLD_UNSAFE = (
    "\u00b5\u0130\u0131\u017f\u0345\u0390\u03a3\u03b0\u03c2\u03d0\u03d1\u03d5\u03d6"
    "\u03f0\u03f1\u03f5\u1c80\u1c81\u1c82\u1c83\u1c84\u1c85\u1c86\u1c87\u1c88"
    "\u1e9b\u1fbe\u1fd3\u1fe3\ufb05\ufb06"
)
#: In a pattern, each of those characters matches, in text without them, exactly what
#: its ordinary partner matches (dotless "ı" in "yazdı" matches "i" and "I"); the rest
#: (U+0390, U+03B0, U+1FD3, U+1FE3, U+FB05, U+FB06) match nothing there and are refused.
_FOLD_PARTNERS = str.maketrans({
    "\u00b5": "\u03bc", "\u0130": "i", "\u0131": "i", "\u017f": "s", "\u0345": "\u03b9",
    "\u03a3": "\u03c3", "\u03c2": "\u03c3", "\u03d0": "\u03b2", "\u03d1": "\u03b8",
    "\u03d5": "\u03c6", "\u03d6": "\u03c0", "\u03f0": "\u03ba", "\u03f1": "\u03c1",
    "\u03f5": "\u03b5", "\u1c80": "\u0432", "\u1c81": "\u0434", "\u1c82": "\u043e",
    "\u1c83": "\u0441", "\u1c84": "\u0442", "\u1c85": "\u0442", "\u1c86": "\u044a",
    "\u1c87": "\u0463", "\u1c88": "\ua64b", "\u1e9b": "\u1e61", "\u1fbe": "\u03b9",
})


class Folded(NamedTuple):
    """A text with its lower-cased copy, or None where that copy would mislead."""

    text: str
    lower: str | None


def fold(text: str, lowered: str | None = None) -> Folded:
    """Prepare ``text`` for :class:`Phrases`; ``lowered`` is ``text.lower()`` if known.

    Testing for each unsafe character with ``in`` is a fast scan (and immediate when
    the text cannot hold it), far cheaper than a regular-expression character class.
    """
    if text.isascii() or not any(char in text for char in _FOLD_UNSAFE):
        return Folded(text, text.lower() if lowered is None else lowered)
    return Folded(text, None)


class Phrases:
    """A case-insensitive alternation of phrases, searched the cheap way when that is exact.

    Why: CPython's ``re`` cannot skip ahead through a case-insensitive alternation; it
    tries the branches at every position, so the report-wording patterns cost
    milliseconds on every ordinary message.  The same pattern without IGNORECASE on
    ``text.lower()`` is several times faster, and a few plain substring tests for
    *needles* (words each alternative contains) rule out most mail before any regular
    expression runs.  Text on which lower-casing could change the answer (see
    ``_FOLD_UNSAFE``) is searched with the IGNORECASE pattern, as it always was.

    ``source`` must be written in lower case, and every top-level alternative must
    contain one of ``needles`` in the text it matches literally: both are checked here,
    at import, so that an edited pattern fails loudly instead of missing reports.
    ``pattern`` is the IGNORECASE pattern, for callers that need match objects.
    """

    def __init__(self, source: str, flags: int = 0, needles: tuple[str, ...] = ()) -> None:
        folded_source = source.translate(_FOLD_PARTNERS)
        _check_lower_case(folded_source)
        for alternative in _alternatives(folded_source) if needles else ():
            if not _always_contains(alternative, needles):
                raise ValueError(f"no needle is always part of the phrase {alternative!r}")
        self.pattern = re.compile(source, flags | re.IGNORECASE)
        self._folded_pattern = re.compile(folded_source, flags)
        self._needles = needles

    def search(self, text: str | Folded) -> str | None:
        """The first match, as ``text`` spells it, or None."""
        folded = text if isinstance(text, Folded) else fold(text)
        if folded.lower is None:
            match = self.pattern.search(folded.text)
        elif self._needles and not any(needle in folded.lower for needle in self._needles):
            return None
        else:
            match = self._folded_pattern.search(folded.lower)
        return None if match is None else folded.text[match.start() : match.end()]


def own_needles(source: str) -> tuple[str, ...]:
    """Needles for :class:`Phrases`: the longest literal text of each alternative.

    For patterns built from word lists at run time (the reply splitter's verbs); an
    alternative is looked into when it is one required group of alternatives, and one
    without literal text raises ValueError.
    """
    needles: list[str] = []

    def collect(alternative: str) -> None:
        runs, groups = _parts(alternative)
        if runs:
            longest = max(runs, key=len)
            if longest not in needles:
                needles.append(longest)
        elif groups:
            for branch in _alternatives(groups[0]):
                collect(branch)
        else:
            raise ValueError(f"phrase without literal text: {alternative!r}")

    for alternative in _alternatives(source.translate(_FOLD_PARTNERS)):
        collect(alternative)
    return tuple(needles)


def _always_contains(alternative: str, needles: tuple[str, ...]) -> bool:
    """Whether every match of ``alternative`` contains one of ``needles`` verbatim."""
    runs, groups = _parts(alternative)
    return any(needle in run for run in runs for needle in needles) or any(
        all(_always_contains(branch, needles) for branch in _alternatives(group))
        for group in groups
    )


def _check_lower_case(source: str) -> None:
    """Refuse upper case outside escapes: it would never match lower-cased text."""
    escaped = False
    for char in source:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char != char.lower() or char in _FOLD_UNSAFE:
            raise ValueError(f"phrase pattern not in plain lower case at {char!r}: {source!r}")


def _structure(source: str, index: int = 0) -> Iterator[tuple[int, str]]:
    """Each character of a regular expression outside escapes and character classes."""
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
        elif char == "[":
            index = _class_end(source, index)
        else:
            yield index, char
            index += 1


def _alternatives(source: str) -> list[str]:
    """The top-level alternatives of a regular expression."""
    parts: list[str] = []
    depth = start = 0
    for index, char in _structure(source):
        if char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            parts.append(source[start:index])
            start = index + 1
    parts.append(source[start:])
    return parts


def _parts(alternative: str) -> tuple[list[str], list[str]]:
    """What every match of one alternative contains: literal runs and required groups.

    Conservative: escapes, classes, "." and anchors end a run, a quantified character
    is dropped, and only groups without a quantifier that allows zero ("?", "*",
    "{...}") count; lookarounds and other "(?" groups are skipped.
    """
    runs: list[str] = []
    groups: list[str] = []
    current = ""
    index = 0
    while index < len(alternative):
        char = alternative[index]
        if char not in "\\[]()?*+{}.^$|":
            current += char
            index += 1
            continue
        if char in "?*+{":
            current = current[:-1]  # the quantified character is optional
        runs.append(current)
        current = ""
        if char == "\\":
            index += 2
        elif char == "[":
            index = _class_end(alternative, index)
        elif char == "(":
            end = _group_end(alternative, index)
            body = alternative[index + 1 : end]
            if alternative[end + 1 : end + 2] not in ("?", "*", "{"):
                if body.startswith("?:"):
                    groups.append(body[2:])
                elif not body.startswith("?"):
                    groups.append(body)
            index = end + 1
        elif char == "{":
            close = alternative.find("}", index)
            index = len(alternative) if close < 0 else close + 1
        else:
            index += 1
    runs.append(current)
    return [run for run in runs if run], groups


def _class_end(source: str, index: int) -> int:
    """Index after the character class that opens at ``index``."""
    index += 1
    index += source.startswith("^", index)
    index += source.startswith("]", index)  # "[]...]": a leading "]" is a member
    while index < len(source) and source[index] != "]":
        index += 2 if source[index] == "\\" else 1
    return index + 1


def _group_end(source: str, index: int) -> int:
    """Index of the ")" that closes the group opening at ``index``."""
    depth = 0
    for position, char in _structure(source, index):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
    return len(source)
