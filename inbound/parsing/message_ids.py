"""Message-ID extraction and normalisation for threading.

Threading compares ids as plain strings, so every id must be reduced to one
canonical form: no angle brackets, no whitespace (a msg-id cannot contain any,
so whitespace inside one is folding damage). ``In-Reply-To`` and ``References``
are written by every client differently: comments such as ``(Lars's message of
"Tue, 17 Nov 2009")``, free text, phrases with addresses in them, ids without
brackets. A small linear scanner copes with all of that without regexes that
could backtrack on a 200 KB header.
"""

from __future__ import annotations

__all__ = ["extract_message_ids", "normalize_message_id"]

#: Longest header value we look at; the rest is junk or an attack.
_MAX_SCAN_CHARS = 512 * 1024
#: An id longer than this is not an id (RFC 5322 lines are at most 998 octets).
_MAX_ID_CHARS = 998

_WHITESPACE = frozenset(" \t\r\n\v\f")


def _strip_all_whitespace(value: str) -> str:
    return "".join(ch for ch in value if ch not in _WHITESPACE)


def normalize_message_id(value: str | None) -> str | None:
    """Return the canonical form of one Message-ID, or None if there is none.

    ``" <abc@example.org> "`` and ``"abc@example.org"`` both give
    ``"abc@example.org"``. If the value holds junk around a bracketed id, the
    first bracketed id wins; an empty or blank value gives None.
    """
    if value is None:
        return None
    ids = _scan(value)
    if ids:
        return ids[0]
    stripped = _strip_all_whitespace(value.strip().strip("<>"))
    if not stripped or len(stripped) > _MAX_ID_CHARS:
        return None
    return stripped


def extract_message_ids(value: str | None) -> tuple[str, ...]:
    """Return every Message-ID in an In-Reply-To/References value, in order.

    Ids are normalised and de-duplicated (first occurrence kept). Text between
    ids (comments, "message of ..." phrases) is ignored; bracketed addresses
    inside parenthesised comments are not taken for ids. When the value has no
    bracketed id at all, bare tokens that look like ``local@domain`` are used,
    as some clients omit the brackets.
    """
    if not value:
        return ()
    ids = _scan(value)
    if not ids:
        ids = [
            token.strip("<>,;\"'")
            for token in value[:_MAX_SCAN_CHARS].split()
            if "@" in token and "(" not in token and ")" not in token
        ]
        ids = [i for i in ids if i and len(i) <= _MAX_ID_CHARS and not i.startswith("@")]
    seen: set[str] = set()
    unique: list[str] = []
    for message_id in ids:
        if message_id not in seen:
            seen.add(message_id)
            unique.append(message_id)
    return tuple(unique)


def _scan(value: str) -> list[str]:
    """Collect the contents of ``<...>`` outside comments and quoted strings.

    An unbalanced quote or parenthesis would hide every later id, so when the
    careful pass finds nothing a second pass ignores quotes and comments.
    """
    text = value[:_MAX_SCAN_CHARS]
    return _scan_text(text, structured=True) or _scan_text(text, structured=False)


def _scan_text(text: str, *, structured: bool) -> list[str]:
    ids: list[str] = []
    depth = 0  # parenthesised comment nesting
    in_quote = False
    escaped = False
    start = -1  # index after "<" while inside an id
    for index, char in enumerate(text):
        if escaped:
            escaped = False
            continue
        if start >= 0:
            if char == ">":
                candidate = _strip_all_whitespace(text[start:index])
                if candidate and len(candidate) <= _MAX_ID_CHARS:
                    ids.append(candidate)
                start = -1
            elif char == "<":
                start = index + 1  # "<junk <id>": restart at the inner bracket
            continue
        if not structured:
            if char == "<":
                start = index + 1
        elif char == "\\" and (in_quote or depth):
            escaped = True
        elif in_quote:
            if char == '"':
                in_quote = False
        elif depth:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
        elif char == '"':
            in_quote = True
        elif char == "(":
            depth = 1
        elif char == "<":
            start = index + 1
    return ids
