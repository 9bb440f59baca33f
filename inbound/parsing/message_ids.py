"""Message-ID extraction and normalisation for threading.

Threading compares ids as plain strings, so every id must be reduced to one
canonical form: no angle brackets, no whitespace (a msg-id cannot contain any,
so whitespace inside one is folding damage). ``In-Reply-To`` and ``References``
are written by every client differently: comments such as ``(Lars's message of
"Tue, 17 Nov 2009")``, free text, phrases with addresses in them, ids without
brackets. A small linear scanner copes with all of that without regexes that
could backtrack on a 200 KB header (it searches only for single characters).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["THREAD_INDEX_DOMAIN", "extract_message_ids", "normalize_message_id",
           "thread_index_root"]

#: Longest header value we look at; the rest is junk or an attack.
_MAX_SCAN_CHARS = 512 * 1024
#: An id longer than this is not an id (RFC 5322 lines are at most 998 octets).
_MAX_ID_CHARS = 998

_WHITESPACE = frozenset(" \t\r\n\v\f")
#: A msg-id holds no control character (C0, DEL, C1, Unicode line separators): one that
#: does is not an id, and kept it would break every header we build from it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


#: The domain of the ids :func:`thread_index_root` makes ("invalid" is reserved, RFC 2606):
#: no client makes a Message-ID there.
THREAD_INDEX_DOMAIN = "thread-index.invalid"
#: A Thread-Index is 22 bytes for the conversation's first message and 5 more per reply
#: (MS-OXOMSG 2.2.1.3); Outlook writes at most a few hundred replies.
_THREAD_INDEX_ROOT_BYTES = 22
_MAX_THREAD_INDEX_CHARS = 4096


def thread_index_root(value: str | None) -> str | None:
    """The conversation a ``Thread-Index`` names, as an id we can index like a Message-ID.

    Outlook and Exchange write this header on every message: its first 22 bytes (a time and
    a GUID) are the conversation's first message's and every reply repeats them.  Outlook
    sometimes sends a reply with no ``In-Reply-To`` or ``References`` at all (a reply to one's
    own sent mail, some Exchange paths), and then the Thread-Index is what is left.  A value
    that is not base64 of 22 + 5n bytes is no Thread-Index: None."""
    if not value:
        return None
    compact = _strip_all_whitespace(value[:_MAX_THREAD_INDEX_CHARS])
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) < _THREAD_INDEX_ROOT_BYTES or (len(data) - _THREAD_INDEX_ROOT_BYTES) % 5:
        return None
    root = data[:_THREAD_INDEX_ROOT_BYTES]
    if not any(root[6:]):  # no GUID: not a conversation of its own
        return None
    return f"{root.hex()}@{THREAD_INDEX_DOMAIN}"


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
    if not stripped or len(stripped) > _MAX_ID_CHARS or _CONTROL.search(stripped):
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
        ids = [i for i in ids if i and len(i) <= _MAX_ID_CHARS and not i.startswith("@")
               and not _CONTROL.search(i)]
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
    return _scan_structured(text) or _scan_loose(text)


def _scan_loose(text: str) -> list[str]:
    """Every ``<...>`` ignoring quotes and comments: a ``>`` closes what the last ``<``
    before it opened ("<junk <id>" gives "id")."""
    ids: list[str] = []
    pieces = text.split(">")
    for piece in pieces[:-1]:  # the last piece has no ">" after it
        opened = piece.rfind("<")
        if opened >= 0:
            _keep(piece[opened + 1 :], ids)
    return ids


# Where the state of the careful scan can change; one character class each, so a
# search never backtracks.
_OPENER = re.compile(r'["(<]')
_IN_QUOTE = re.compile(r'[\\"]')
_IN_COMMENT = re.compile(r"[\\()]")
_IN_ID = re.compile(r"[<>]")


def _scan_structured(text: str) -> list[str]:
    """The ``<...>`` outside quoted strings and (nested) comments, where a backslash
    escapes the next character."""
    ids: list[str] = []
    index = 0
    while (found := _OPENER.search(text, index)) is not None:
        char = found.group()
        if char == '"':
            index = _quote_end(text, found.end())
        elif char == "(":
            index = _comment_end(text, found.end())
        else:
            index = _id_end(text, found.end(), ids)
    return ids


def _quote_end(text: str, index: int) -> int:
    """Index after the closing quote of a quoted string whose content starts at ``index``."""
    while (found := _IN_QUOTE.search(text, index)) is not None:
        if found.group() == '"':
            return found.end()
        index = found.end() + 1  # a backslash: skip the escaped character
    return len(text)


def _comment_end(text: str, index: int) -> int:
    """Index after the ")" closing a comment whose content starts at ``index``."""
    depth = 1
    while (found := _IN_COMMENT.search(text, index)) is not None:
        char = found.group()
        index = found.end()
        if char == "\\":
            index += 1  # skip the escaped character
        elif char == "(":
            depth += 1
        else:
            depth -= 1
            if not depth:
                return index
    return len(text)


def _id_end(text: str, start: int, ids: list[str]) -> int:
    """Index after the ">" closing an id whose content starts at ``start``, keeping the id;
    a second "<" restarts the id ("<junk <id>")."""
    while (found := _IN_ID.search(text, start)) is not None:
        if found.group() == ">":
            _keep(text[start : found.start()], ids)
            return found.end()
        start = found.end()
    return len(text)


def _keep(content: str, ids: list[str]) -> None:
    candidate = _strip_all_whitespace(content)
    if candidate and len(candidate) <= _MAX_ID_CHARS and not _CONTROL.search(candidate):
        ids.append(candidate)
