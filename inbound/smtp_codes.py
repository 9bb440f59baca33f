"""Every SMTP reply the gateway gives, named ``S<code>_<REASON>``, in one place.

Each reply carries an RFC 3463 enhanced status code and no internals, except those RFC 2034
exempts: the greeting, the answers to HELO and EHLO, and ``354`` (the class digit of an
enhanced code is 2, 4 or 5).  aiosmtpd's own replies have none: :func:`with_enhanced_code`
gives them one on their way out.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "S221_BYE",
    "S250_OK",
    "S250_QUEUED",
    "S250_RECIPIENT_OK",
    "S250_SENDER_OK",
    "S354_START_DATA",
    "S421_DEADLINE",
    "S421_IDLE",
    "S421_LIFETIME",
    "S421_TOO_MANY_CONNECTIONS",
    "S421_TOO_MANY_FROM_ADDRESS",
    "S421_TOO_MANY_JUNK",
    "S451_STORAGE",
    "S452_TOO_MANY_RECIPIENTS",
    "S501_DATA_SYNTAX",
    "S501_EHLO_SYNTAX",
    "S503_NEED_RCPT",
    "S503_TLS_ACTIVE",
    "S530_STARTTLS_FIRST",
    "S550_NO_RELAY",
    "S550_UNKNOWN_USER",
    "S552_TOO_BIG",
    "S553_BAD_ADDRESS",
    "S553_BAD_SENDER",
    "with_enhanced_code",
]

S221_BYE = "221 2.0.0 Bye"
S250_OK = "250 2.0.0 OK"
S250_QUEUED = "250 2.0.0 Message accepted for delivery"
S250_RECIPIENT_OK = "250 2.1.5 Recipient OK"
S250_SENDER_OK = "250 2.1.0 Sender OK"
S354_START_DATA = "354 End data with <CR><LF>.<CR><LF>"
S421_DEADLINE = "421 4.4.2 Transaction took too long, closing connection"
S421_IDLE = "421 4.4.2 Idle for too long, closing connection"
S421_LIFETIME = "421 4.4.2 Connection open for too long, closing connection"
S421_TOO_MANY_JUNK = "421 4.7.0 Too many commands without a message, closing connection"
S421_TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
S421_TOO_MANY_FROM_ADDRESS = "421 4.7.0 Too many connections from your address, try again later"
S451_STORAGE = "451 4.3.0 Temporary failure storing the message, please try again later"
S452_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
S501_DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
S501_EHLO_SYNTAX = "501 5.5.4 Syntax: EHLO hostname"
S503_NEED_RCPT = "503 5.5.1 Error: need RCPT command"
S503_TLS_ACTIVE = "503 5.5.1 Error: TLS already active"
S530_STARTTLS_FIRST = "530 5.7.0 Must issue a STARTTLS command first"
S550_NO_RELAY = "550 5.7.1 Relaying denied: we only accept mail for our own domains"
S550_UNKNOWN_USER = "550 5.1.1 No such mailbox here"
S552_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
S553_BAD_ADDRESS = "553 5.1.3 Recipient address syntax is not valid"
S553_BAD_SENDER = "553 5.1.7 Sender address syntax is not valid"

_HAS_ENHANCED = re.compile(r"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")

_REPLACED = {
    "250 OK": S250_OK,  # NOOP, RSET
    "221 Bye": S221_BYE,
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "454 TLS not available": "454 4.7.0 TLS not available",
    "552 Error: message size exceeds fixed maximum message size": S552_TOO_BIG,
    "530 Must issue a STARTTLS command first": S530_STARTTLS_FIRST,
}
"""aiosmtpd's fixed texts whose code is not the default of their reply code below."""

_BY_PREFIX = (
    ('500 Error: command "', "5.5.1"),  # unknown command
    ("502 Could not VRFY", "5.1.3"),
    ("250 Syntax: ", "2.0.0"),  # HELP
    ("250 Supported commands: ", "2.0.0"),
    ("252 ", "2.0.0"),  # VRFY
)
"""aiosmtpd's texts that quote the client, by their start."""

_BY_REPLY_CODE = {
    "421": "4.4.2", "451": "4.3.0", "452": "4.5.3", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "550": "5.7.1", "552": "5.3.4", "553": "5.1.3", "554": "5.7.0",
    "555": "5.5.4",
}


@functools.lru_cache(maxsize=256)
def with_enhanced_code(reply: str) -> str:
    """``reply`` with an enhanced status code after its reply code if it had none.

    Replies RFC 2034 exempts (greeting, HELO, 354) pass unchanged: they match nothing
    here, as 2xx and 3xx replies get a code only when listed.  Cached: the few texts a
    session sends are the same every time.
    """
    if _HAS_ENHANCED.match(reply):
        return reply
    replaced = _REPLACED.get(reply)
    if replaced is not None:
        return replaced
    code, text = reply[:3], reply[4:]
    for prefix, detail in _BY_PREFIX:
        if reply.startswith(prefix):
            return f"{code} {detail} {text}"
    if code[:1] in ("4", "5") and reply[3:4] in (" ", ""):
        return f"{code} {_BY_REPLY_CODE.get(code, code[0] + '.0.0')} {text}".rstrip()
    return reply
