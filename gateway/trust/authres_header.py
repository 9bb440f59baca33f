"""A tolerant reader of one ``Authentication-Results`` header (RFC 8601), values as received.

Why not the ``authres`` library: it rejects legal values our MTA writes (``smtp.mailfrom=<>``,
``smtp.helo=[192.0.2.7]``, a UTF-8 mailfrom), and a header that cannot be read must make the
sender *unverified*, never let a lower (forgeable) header decide.  So the grammar is read
here, loosely where RFC 8601 is loose (any property value up to white space or ``;``) and
strictly where it matters: every result must be ``method[/version]=result`` followed by
``key=value`` pairs; anything else makes the whole header unreadable (None).

Nothing is decoded: an RFC 2047 encoded-word (``=?utf-8?q?pass?=``) is not a value here, it
breaks the ``key=value`` structure and the header is unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AuthResults", "MethodResult", "authserv_id_of", "read_authres"]

_SPECIALS = frozenset(';="()')


@dataclass(frozen=True)
class MethodResult:
    method: str
    """Lower case, without a ``/version``."""
    result: str
    properties: dict[str, str] = field(default_factory=dict, hash=False)
    """``ptype.property`` (lower case) → value as written (quotes removed)."""


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    results: tuple[MethodResult, ...]


class _Unreadable(ValueError):
    pass


def _skip_comment(value: str, index: int) -> int:
    """Index after the (possibly nested) comment starting at ``value[index] == "("``."""
    depth = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise _Unreadable("unclosed comment")


def _quoted(value: str, index: int) -> tuple[str, int]:
    """The text of the quoted-string starting at ``value[index] == '"'`` and the index after."""
    out: list[str] = []
    index += 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    raise _Unreadable("unclosed quoted string")


def _tokens(value: str) -> list[tuple[str, str]]:
    """(kind, text) with kind ``word``, ``quoted``, ``=`` or ``;``; comments dropped."""
    tokens: list[tuple[str, str]] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char.isspace():
            index += 1
        elif char == "(":
            index = _skip_comment(value, index)
        elif char == ")":
            raise _Unreadable("unbalanced ')'")
        elif char == '"':
            text, index = _quoted(value, index)
            tokens.append(("quoted", text))
        elif char in "=;":
            tokens.append((char, char))
            index += 1
        else:
            start = index
            while index < len(value) and not value[index].isspace() and (
                    value[index] not in _SPECIALS):
                index += 1
            tokens.append(("word", value[start:index]))
    return tokens


def _split(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == ";":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _authserv_id(part: list[tuple[str, str]]) -> str:
    """``authserv-id [version]``: one word (or quoted string) and an optional number."""
    if not part or part[0][0] not in {"word", "quoted"} or not part[0][1]:
        raise _Unreadable("no authserv-id")
    if len(part) > 2 or (len(part) == 2 and not (part[1][0] == "word" and part[1][1].isdigit())):
        raise _Unreadable("unexpected words after the authserv-id")
    return part[0][1].strip().lower()


def _result(part: list[tuple[str, str]]) -> MethodResult:
    """``method[/version] = result`` then ``key = value`` pairs."""
    if len(part) < 3 or part[0][0] != "word" or part[1][0] != "=" or part[2][0] != "word":
        raise _Unreadable("a result is not method=result")
    method = part[0][1].split("/", 1)[0].strip().lower()
    result = part[2][1].lower()
    if not method or not result.isalpha():
        raise _Unreadable(f"bad method or result {part[0][1]}={part[2][1]}")
    properties: dict[str, str] = {}
    rest = part[3:]
    if len(rest) % 3:
        raise _Unreadable(f"{method}: a property is not key=value")
    for offset in range(0, len(rest), 3):
        key, equals, value = rest[offset:offset + 3]
        if key[0] != "word" or equals[0] != "=" or value[0] not in {"word", "quoted"}:
            raise _Unreadable(f"{method}: a property is not key=value")
        properties.setdefault(key[1].lower(), value[1])
    return MethodResult(method, result, properties)


def authserv_id_of(value: str) -> str | None:
    """The authserv-id of a header value (lower case), or None if even that is unreadable."""
    try:
        return _authserv_id(_split(_tokens(value))[0])
    except _Unreadable:
        return None


def read_authres(value: str) -> AuthResults | None:
    """The whole header, or None when any part of it cannot be read."""
    try:
        parts = _split(_tokens(value))
        authserv_id = _authserv_id(parts[0])
        rest = [part for part in parts[1:] if part]  # a trailing ";" is harmless
        if not rest:
            raise _Unreadable("no results")
        if len(rest) == 1 and [t[1].lower() for t in rest[0]] == ["none"]:
            return AuthResults(authserv_id, ())
        return AuthResults(authserv_id, tuple(_result(part) for part in rest))
    except _Unreadable:
        return None
