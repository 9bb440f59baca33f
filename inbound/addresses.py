"""Recipient grammar: ``local+TOKEN@domain`` and which of our addresses a recipient is.

Like Mailman's recipient splitting: the part after ``+`` carries a reply token
(and ``+note`` for internal notes); the domain must be one we serve.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from gateway.directory import SupportIdentity, domain_key

__all__ = ["UNSUBSCRIBE_LOCAL_PART", "EnvelopeRole", "Recipient", "RecipientVerdict",
           "address_key", "classify_recipient", "copy_carries_a_role", "envelope_role",
           "is_storable", "local_key", "split_address"]


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


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\U0010ffff-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
"""RFC 5321's Dot-string, with RFC 6531's UTF-8 characters: a local part needing no quotes."""
_QUOTED_PAIR = re.compile(r"\\(.)")


def local_key(local: str) -> str:
    """A local part as it is compared: ``"support"`` is ``support`` (RFC 5321 4.1.2: a
    quoted string whose content needs no quoting names the same mailbox); one that needs
    its quotes (``"john smith"``) keeps them, so it never equals an unquoted one."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        content = _QUOTED_PAIR.sub(r"\1", local[1:-1])
        if _DOT_ATOM.fullmatch(content):
            return content
    return local


def split_address(address: str) -> Recipient | None:
    """Split ``Local+Detail@Domain`` as compared: the local part unquoted when it needs no
    quotes and case-folded, the domain in its IDNA form (:func:`domain_key`); None when it
    is not an address.  Every check whether an address is one of ours reads this."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    base, _, detail = local_key(local).partition("+")
    return Recipient(base.lower(), detail.lower(), domain_key(domain))


def address_key(address: str) -> str:
    """The whole address as compared (:func:`split_address`'s parts put together), or the
    address stripped and lower-cased when it is none."""
    recipient = split_address(address)
    if recipient is None:
        return address.strip().lower()
    detail = f"+{recipient.detail}" if recipient.detail else ""
    return f"{recipient.local}{detail}@{recipient.domain}"


#: The local part of the one-click unsubscribe address ``unsubscribe+TOKEN@`` (RFC 8058's
#: mailto), which the bulk mail names and intake always accepts.
UNSUBSCRIBE_LOCAL_PART = "unsubscribe"
_ALWAYS_ACCEPTED = {"postmaster", "abuse", UNSUBSCRIBE_LOCAL_PART}


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


class EnvelopeRole(Enum):
    """What an envelope recipient asks of a message, for the copies of one message an MTA
    pipes one recipient at a time (``inbound.spool``, ``gateway.pipeline.processing``)."""

    MESSAGE = "message"
    """Support itself (or an alias, a reply token, anyone): the message is to be processed."""
    UNSUBSCRIBE = "unsubscribe"
    """``unsubscribe+TOKEN@``: read from the envelope alone (step ``unsubscribe``)."""
    ACCESS = "access"
    """``support+<grant_address_tag>@``: read from the envelope alone (``access-request``)."""


def envelope_role(address: str, support: SupportIdentity, access_tag: str) -> EnvelopeRole:
    """Which :class:`EnvelopeRole` ``address`` carries on a message to ``support``."""
    recipient = split_address(address)
    if recipient is None or recipient.domain not in support.domains:
        return EnvelopeRole.MESSAGE
    if recipient.local == UNSUBSCRIBE_LOCAL_PART:
        return EnvelopeRole.UNSUBSCRIBE
    if recipient.local == support.local_part.lower() and recipient.detail == access_tag.lower():
        return EnvelopeRole.ACCESS
    return EnvelopeRole.MESSAGE


def copy_carries_a_role(earlier: Sequence[Sequence[str]], later: Sequence[str],
                        role_of: Callable[[str], EnvelopeRole]) -> frozenset[EnvelopeRole]:
    """The roles a later copy of a processed message asks of its own with the recipients
    ``later`` (those on none of the message's rows so far), given ``earlier``, the envelope
    recipients of each of those rows (the first copy's, then each later copy's; a row
    without any was processed as the message).  Empty: a plain duplicate.

    - an unsubscribe address: always (one with another token is another request);
    - the access address: unless a row so far carried it (the request was made there);
    - the message itself: only while every row so far was an unsubscribe request only
      (their processing stopped there; any other recipient, the access address too,
      processed the message): one row processes the message, never two."""
    done = {role_of(address) for addresses in earlier for address in addresses}
    if done - {EnvelopeRole.UNSUBSCRIBE} or any(not addresses for addresses in earlier):
        done.add(EnvelopeRole.MESSAGE)  # a row's processing went past ``unsubscribe``
    roles = {role_of(address) for address in later}
    return frozenset(role for role in roles
                     if role is EnvelopeRole.UNSUBSCRIBE or role not in done)
