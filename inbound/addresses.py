"""Recipient grammar: ``local+TOKEN@domain`` and which of our addresses a recipient is.

Like Mailman's recipient splitting: the part after ``+`` carries a reply token
(and ``+note`` for internal notes); the domain must be one we serve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from gateway.directory import SupportIdentity

__all__ = ["Recipient", "RecipientVerdict", "classify_recipient", "is_storable", "split_address"]


class RecipientVerdict(Enum):
    OURS = "ours"
    FOREIGN_DOMAIN = "foreign_domain"
    UNKNOWN_USER = "unknown_user"
    INVALID = "invalid"


@dataclass(frozen=True)
class Recipient:
    local: str
    detail: str  # the part after "+", "" if none
    domain: str


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_storable(text: str) -> bool:
    """False for an envelope address no database column or mail header can carry: bytes
    that were not UTF-8 (SMTP arguments and argv are decoded with ``surrogateescape``) or
    a control character (RFC 5321 has none in a path; PostgreSQL refuses NUL).  Such an
    address is refused where it arrives, never stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _CONTROL.search(text) is None


def split_address(address: str) -> Recipient | None:
    """Split ``Local+Detail@Domain`` (case-folded); None when it is not an address."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    base, _, detail = local.partition("+")
    return Recipient(base.lower(), detail.lower(), domain.lower().rstrip("."))


_ALWAYS_ACCEPTED = {"postmaster", "abuse", "unsubscribe"}  # unsubscribe+TOKEN: RFC 8058 mailto


def classify_recipient(address: str, support: SupportIdentity) -> RecipientVerdict:
    """Decide at RCPT time whether an address is ours (DESIGN section 9)."""
    recipient = split_address(address)
    if recipient is None or not is_storable(address):
        return RecipientVerdict.INVALID
    if recipient.domain not in support.domains:
        return RecipientVerdict.FOREIGN_DOMAIN
    if (recipient.local == support.local_part.lower() or recipient.local in _ALWAYS_ACCEPTED
            or recipient.local in support.aliases):
        return RecipientVerdict.OURS
    return RecipientVerdict.UNKNOWN_USER
