"""Who may receive mail here: the one recipient check of SMTP's RCPT and the pipe (DESIGN 9, 10).

Both entries ask :func:`recipient_refusal` with the same identity
(:func:`intake_identity`: the directory's ``[support]`` table plus the policy's
aliases), so an address refused over SMTP is refused by ``gateway ingest -r`` too,
with the same enhanced status code.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.active_policy import support_aliases
from gateway.config import Settings
from gateway.db import Database
from gateway.directory import SupportIdentity, support_identity
from inbound.addresses import RecipientVerdict, classify_recipient
from inbound.smtp_codes import (
    S452_TOO_MANY_RECIPIENTS,
    S550_NO_RELAY,
    S550_UNKNOWN_USER,
    S553_BAD_ADDRESS,
)

__all__ = ["intake_identity", "recipient_refusal"]

_REFUSALS = {
    RecipientVerdict.FOREIGN_DOMAIN: S550_NO_RELAY,
    RecipientVerdict.UNKNOWN_USER: S550_UNKNOWN_USER,
    RecipientVerdict.INVALID: S553_BAD_ADDRESS,
}


def intake_identity(database: Database, settings: Settings) -> SupportIdentity:
    """The identity recipients are checked against: the directory's, with the policy's
    product, category and emergency local parts as aliases."""
    with database.reading() as session:
        identity = support_identity(session)
    return replace(identity, aliases=support_aliases(settings))


def recipient_refusal(address: str, support: SupportIdentity, *, accepted: int,
                      limit: int) -> str | None:
    """The SMTP reply refusing ``address`` (``"550 5.1.1 …"``), or None when it is ours.

    ``accepted`` recipients of the same message were taken already; ``limit`` is
    ``max_recipients`` (beyond it: ``452 4.5.3``, temporary, as RFC 5321 asks).
    """
    if accepted >= limit:
        return S452_TOO_MANY_RECIPIENTS
    return _REFUSALS.get(classify_recipient(address, support))
