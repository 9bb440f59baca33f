"""DKIM-sign outgoing mail at delivery time (dkimpy), when a key is configured.

Why at delivery and not when composing: the outbox keeps the unsigned bytes, so a
retry days later, or a key rotated meanwhile, still gets a fresh, valid signature
(the key file is re-read when it changes).  The signature covers the headers that
matter to recipients, including List-Unsubscribe and List-Unsubscribe-Post, which
RFC 8058 requires to be signed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import dkim

from gateway.config import Settings
from gateway.errors import TemporaryFailure

__all__ = ["SIGNED_HEADERS", "dkim_sign"]

log = logging.getLogger(__name__)

SIGNED_HEADERS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"content-language", b"auto-submitted",
    b"list-unsubscribe", b"list-unsubscribe-post",
)

_cache: dict[Path, tuple[float, bytes]] = {}
_cache_lock = threading.Lock()


def _key(path: Path) -> bytes:
    mtime = path.stat().st_mtime
    with _cache_lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, path.read_bytes())
            _cache[path] = cached
        return cached[1]


def dkim_sign(settings: Settings, raw: bytes) -> bytes:
    """``raw`` with a DKIM-Signature header in front, or unchanged if signing is off."""
    key_file = settings.dkim_private_key_file
    if key_file is None or not settings.dkim_selector or not settings.dkim_domain:
        return raw
    try:
        signature: bytes = dkim.sign(
            raw, settings.dkim_selector.encode(), settings.dkim_domain.encode(),
            _key(Path(key_file)), include_headers=list(SIGNED_HEADERS))
    except (OSError, dkim.DKIMException) as error:
        # A broken key must not send unsigned mail that the domain's policy would reject;
        # the row waits (retries) until the key is fixed.
        raise TemporaryFailure(f"DKIM signing failed: {error}") from error
    return signature + raw
