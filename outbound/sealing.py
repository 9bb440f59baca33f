"""Secrets at rest: the outbox keeps no readable live link once its mail is gone.

Mail that carries a secret link (activation, grant overview, unsubscribe, and the hub
sign-in and satisfaction links of DESIGN §13/§14) is stored twice in its outbox row:

- ``raw``: the mail with the secret part of each such link replaced by ``REDACTED``,
  readable by operators and kept for good;
- ``sealed``: the live bytes, encrypted and authenticated (Fernet: AES-CBC + HMAC-SHA256)
  under a key derived from ``GATEWAY_SECRET_KEY``, only until the row is ``sent`` or
  ``dead`` (``outbound/delivery.py`` drops it then).

So a copy of the database (a backup, a dump, the SQLite file and its WAL) never holds a
live token in clear, not even while the mail waits for delivery, and after delivery the
row no longer holds the sealed copy at all (a freed database page may keep its encrypted
bytes until reused: without the key they open nothing, and the tokens they hold are
single use and expire).  Retries send the live bytes; DKIM signs them at each attempt.

Reply tokens (``support+TOKEN@…`` in Reply-To) are not redacted: they are addresses handed
to every participant, quoted in replies and kept in every mail client, and they only let
someone write into one ticket as its participant (see docs/security.md).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import re
from collections.abc import Sequence
from email.message import EmailMessage

from cryptography.fernet import Fernet, InvalidToken

from gateway.models import OutboxItem
from outbound.compose import verbatim_header

__all__ = ["MARKER", "SealError", "holds_secret_link", "live_bytes", "redact", "redact_text",
           "seal", "unseal"]

MARKER = "REDACTED"

#: Web paths whose next segment is a secret: whoever holds the link may act on it.
SECRET_PATHS = ("grants/activate", "grants/overview", "unsubscribe", "hub/sign-in",
                "satisfaction")
_LINK = re.compile(r"(/(?:" + "|".join(re.escape(p) for p in SECRET_PATHS) + r")/)"
                   r"(?!" + MARKER + r"\b)([A-Za-z0-9_.~%-]+)")
# ``mailto:unsubscribe+TOKEN@domain`` of List-Unsubscribe.
_MAILTO = re.compile(r"(\bunsubscribe\+)(?!" + MARKER + r"@)([A-Za-z0-9]+)(@)", re.IGNORECASE)


class SealError(Exception):
    """The sealed bytes cannot be opened with this key (changed key, or damaged row)."""


def redact_text(text: str) -> str:
    """``text`` with the secret segment of every known link replaced by :data:`MARKER`."""
    text = _LINK.sub(lambda m: m.group(1) + MARKER, text)
    return _MAILTO.sub(lambda m: m.group(1) + MARKER + m.group(3), text)


def _redact_part(part: EmailMessage) -> bool:
    if part.is_multipart() or part.get_content_maintype() != "text" or part.is_attachment():
        return False
    content = part.get_content()
    redacted = redact_text(content)
    if redacted == content:
        return False
    language = part.get("Content-Language")
    part.set_content(redacted, subtype=part.get_content_subtype(), charset="utf-8")
    if language is not None:  # set_content clears every Content-* header
        part["Content-Language"] = language
    return True


def holds_secret_link(text: str) -> bool:
    """Whether :func:`redact_text` could change ``text``: a search, no new string."""
    return _LINK.search(text) is not None or _MAILTO.search(text) is not None


def _has_secret_links(message: EmailMessage, bodies: Sequence[str] | None = None) -> bool:
    if any(holds_secret_link(str(value)) for value in message.values()):
        return True
    if bodies is not None:
        return any(holds_secret_link(body) for body in bodies)
    return any(holds_secret_link(part.get_content()) for part in message.walk()
               if not part.is_multipart() and part.get_content_maintype() == "text"
               and not part.is_attachment())


def _copy_parts(message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` whose parts and header lists are its own.

    The policy and the header objects are shared, not copied: both are immutable in use,
    and the policy's header factory holds a cache (``outbound.compose``) that other
    threads fill while this one copies; a deep copy walking it fails with "dictionary
    changed size during iteration" (and copies up to 512 cached headers for nothing).
    """
    shared: dict[int, object] = {}
    for part in message.walk():
        shared[id(part.policy)] = part.policy
        for value in part.values():  # the stored header objects themselves
            shared[id(value)] = value
    return copy.deepcopy(message, shared)


def redact(message: EmailMessage, *, bodies: Sequence[str] | None = None
           ) -> EmailMessage | None:
    """A copy of ``message`` with its secret links redacted, or None when it has none.

    ``bodies``: the texts the caller gave its text parts (``compose``'s plain and HTML
    bodies, no attachment), searched as they are instead of decoding every part again
    (quoted-printable, base64) only to learn that most mail holds no secret link.  The
    decoded part differs from its text only in line breaks, which no link contains."""
    if not _has_secret_links(message, bodies):
        return None  # most mail: no copy made
    copied = _copy_parts(message)
    changed = False
    for name, value in list(copied.items()):
        redacted = redact_text(str(value))
        if redacted != str(value):
            copied.replace_header(name, verbatim_header(name, redacted) if redacted.isascii()
                                  else redacted)
            changed = True
    for part in list(copied.walk()):
        changed = _redact_part(part) or changed
    return copied if changed else None


def _fernet(secret: bytes) -> Fernet:
    key = hmac.new(secret, b"gateway.outbox.sealed", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: bytes, raw: bytes) -> bytes:
    return _fernet(secret).encrypt(raw)


def unseal(secret: bytes, sealed: bytes) -> bytes:
    try:
        return _fernet(secret).decrypt(sealed)
    except InvalidToken:
        raise SealError("the sealed mail cannot be opened with this gateway key "
                        "(was GATEWAY_SECRET_KEY changed?)") from None


def live_bytes(secret: bytes, item: OutboxItem) -> bytes:
    """The bytes to send: the sealed live copy while there is one, else ``raw``."""
    return unseal(secret, item.sealed) if item.sealed is not None else item.raw
