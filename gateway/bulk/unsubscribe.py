"""Unsubscribe tokens and the bulk-mail lists people can leave (RFC 8058 one-click).

Why tokens and not signed addresses: a one-click POST comes from the recipient's mail
provider with no session and no CSRF token, so the link itself is the only proof.  Each
mail gets its own 160-bit random token (lower-case base32, so it also survives as the
case-folded detail of ``unsubscribe+TOKEN@domain``); only its SHA-256 is stored, it
names one address and one list, expires, and is marked used.  Nobody can unsubscribe
someone else without holding a mail sent to them.  Ticket mail is never on a list.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory import SupportIdentity
from gateway.models import Unsubscribe, UnsubscribeToken, utcnow
from inbound.addresses import UNSUBSCRIBE_LOCAL_PART  # the mailto target of List-Unsubscribe

__all__ = [
    "LISTS",
    "UNSUBSCRIBE_LOCAL_PART",
    "Outcome",
    "bulk_headers",
    "is_unsubscribed",
    "issue_token",
    "redeem",
    "token_hash",
    "unsubscribe_link",
    "unsubscribed",
]

#: The bulk mail lists: quarterly feature mail and announcements.
LISTS = {"quarterly": "quarterly feature emails", "announcements": "announcements"}



def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().lower().encode()).hexdigest()


def issue_token(session: Session, email: str, list_name: str, days: int,
                now: datetime | None = None) -> str:
    """A new token for ``email`` to leave ``list_name``, stored hashed (caller's transaction)."""
    if list_name not in LISTS:
        raise ValueError(f"unknown list {list_name!r}")
    token = base64.b32encode(secrets.token_bytes(20)).decode().lower()
    moment = now or utcnow()
    session.add(UnsubscribeToken(token_hash=token_hash(token), email=email.lower(),
                                 list_name=list_name, created_at=moment,
                                 expires_at=moment + timedelta(days=days)))
    return token


def unsubscribe_link(public_url: str, token: str) -> str:
    """The one-click page of a token (under ``GATEWAY_PUBLIC_URL``)."""
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"


def bulk_headers(public_url: str, support: SupportIdentity, token: str) -> dict[str, str]:
    """List-Unsubscribe (https and mailto) and List-Unsubscribe-Post for one bulk mail."""
    link = unsubscribe_link(public_url, token)
    mailto = f"mailto:{UNSUBSCRIBE_LOCAL_PART}+{token}@{support.domain}?subject=unsubscribe"
    return {
        "List-Unsubscribe": f"<{link}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Precedence": "bulk",
    }


@dataclass(frozen=True)
class Outcome:
    """What redeeming a token did: ``ok`` (now or earlier unsubscribed) or why not."""

    ok: bool
    email: str = ""
    list_name: str = ""
    reason: str = ""


def lookup(session: Session, token: str) -> UnsubscribeToken | None:
    """The token's row if it exists and has not expired (for the GET confirmation page)."""
    row = session.get(UnsubscribeToken, token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def redeem(session: Session, token: str, source: str) -> Outcome:
    """Unsubscribe the token's address from its list, in the caller's transaction.

    Using a token twice is harmless: the second time reports the address as already
    unsubscribed and changes nothing."""
    row = session.get(UnsubscribeToken, token_hash(token), with_for_update=True)
    now = utcnow()
    if row is None:
        return Outcome(False, reason="unknown unsubscribe token")
    if row.used_at is None and row.expires_at <= now:
        return Outcome(False, row.email, row.list_name, reason="expired unsubscribe token")
    if row.used_at is None:
        row.used_at = now
        if not is_unsubscribed(session, row.email, row.list_name):
            session.add(Unsubscribe(email=row.email, list_name=row.list_name, source=source,
                                    created_at=now))
    return Outcome(True, row.email, row.list_name)


def is_unsubscribed(session: Session, email: str, list_name: str) -> bool:
    return session.scalar(select(Unsubscribe.id).where(
        Unsubscribe.email == email.lower(), Unsubscribe.list_name == list_name)) is not None


def unsubscribed(session: Session, list_name: str) -> set[str]:
    """Every address that left ``list_name`` (one query for a whole audience)."""
    return set(session.scalars(select(Unsubscribe.email).where(
        Unsubscribe.list_name == list_name)))
