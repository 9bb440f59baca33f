"""Secrets in links: activation tokens, CSRF values and signed overview links.

Activation tokens carry 256 random bits (``secrets.token_urlsafe(32)``) and are
stored only as their SHA-256, so a copy of the database opens nothing.  A form's
CSRF value is an HMAC of the page's own secret (the activation token's hash, or
the overview link) under the gateway key: a page can only be submitted by
someone who could load it.  Overview links are signed and time-stamped with
itsdangerous, so they need no table and cannot be forged or extended.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

__all__ = [
    "OverviewClaim",
    "csrf_value",
    "csrf_valid",
    "hash_token",
    "new_token",
    "read_overview_token",
    "make_overview_token",
]

_OVERVIEW_SALT = "gateway.grants.overview"


def new_token() -> tuple[str, str]:
    """A fresh activation token and the hash to store: ``(token, sha256 hex)``."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def csrf_value(secret: bytes, purpose: str, bound_to: str) -> str:
    """The hidden form value for ``purpose`` on the page identified by ``bound_to``."""
    return hmac.new(secret, f"csrf:{purpose}:{bound_to}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, purpose: str, bound_to: str, given: str) -> bool:
    return hmac.compare_digest(csrf_value(secret, purpose, bound_to), given or "")


@dataclass(frozen=True)
class OverviewClaim:
    team_id: str
    person: str


def make_overview_token(secret: bytes, team_id: str, person: str) -> str:
    return URLSafeTimedSerializer(secret, salt=_OVERVIEW_SALT).dumps([team_id, person])


def read_overview_token(secret: bytes, token: str, max_age: float) -> OverviewClaim | None:
    """The team and person a link was made for, or None if forged, mangled or expired."""
    try:
        value = URLSafeTimedSerializer(secret, salt=_OVERVIEW_SALT).loads(
            token, max_age=int(max_age))
    except (SignatureExpired, BadSignature):
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, str) for v in value)):
        return None
    return OverviewClaim(value[0], value[1])
