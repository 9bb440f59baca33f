"""Every SMTP reply the gateway gives, named ``S<code>_<REASON>``, in one place.

Each 4xx/5xx carries an RFC 3463 enhanced status code and no internals.
"""

from __future__ import annotations

__all__ = [
    "S250_QUEUED",
    "S250_RECIPIENT_OK",
    "S451_STORAGE",
    "S452_TOO_MANY_RECIPIENTS",
    "S500_LINE_TOO_LONG",
    "S550_NO_RELAY",
    "S550_UNKNOWN_USER",
    "S552_TOO_BIG",
    "S553_BAD_ADDRESS",
]

S250_QUEUED = "250 2.0.0 Message accepted for delivery"
S250_RECIPIENT_OK = "250 2.1.5 Recipient OK"
S451_STORAGE = "451 4.3.0 Temporary failure storing the message, please try again later"
S452_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
S500_LINE_TOO_LONG = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"
S550_NO_RELAY = "550 5.7.1 Relaying denied: we only accept mail for our own domains"
S550_UNKNOWN_USER = "550 5.1.1 No such mailbox here"
S552_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
S553_BAD_ADDRESS = "553 5.1.3 Recipient address syntax is not valid"
