"""How sure are we that the From address wrote this message?  (Before any privilege.)

Three methods, one chosen by ``sender_authentication``:

- ``authres``: our upstream MTA checked DKIM/DMARC/SPF and wrote an
  ``Authentication-Results`` header (RFC 8601) with its ``authserv_id``.  Only the
  **topmost** header carrying that id counts: anything further down was there before
  the message reached our MTA and may be forged by the sender.  It vouches for the
  From address when DMARC passed for the From domain, or DKIM passed for a domain
  aligned with it (the same domain or a parent of it).
- ``dkim``: we verify the DKIM signature ourselves (dkimpy) with the same alignment.
- ``token`` (development only): a valid reply token of the ticket among the envelope
  recipients.  It proves the sender received (or was shown) our mail, nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import authres
import dkim

__all__ = ["Verdict", "aligned", "authres_verdict", "dkim_verdict"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    verified: bool
    explanation: str


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the signer is the From domain or a parent domain of it."""
    signing_domain, from_domain = signing_domain.lower().rstrip("."), from_domain.lower()
    if not signing_domain or "." not in signing_domain:
        return False
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    try:
        return authres.AuthenticationResultsHeader.parse(
            "Authentication-Results: " + " ".join(value.split()))
    except Exception:  # authres raises several kinds on syntax errors
        return None


def authres_verdict(values: Sequence[str], authserv_id: str, from_address: str) -> Verdict:
    """Judge the ``Authentication-Results`` values (topmost first) for ``from_address``."""
    from_domain = _domain(from_address)
    ours = [header for header in map(_parse, values)
            if header is not None and str(header.authserv_id).lower() == authserv_id]
    if not ours:
        return Verdict(False, f"no Authentication-Results from {authserv_id}")
    ignored = len(ours) - 1
    suffix = (f" ({ignored} lower header{'s' if ignored > 1 else ''} claiming {authserv_id} "
              "ignored)") if ignored else ""
    for result in ours[0].results:
        method, outcome = str(result.method).lower(), str(result.result).lower()
        properties = {f"{p.type}.{p.name}".lower(): str(p.value).lower()
                      for p in result.properties}
        if outcome != "pass":
            continue
        if method == "dmarc" and properties.get("header.from", from_domain) == from_domain:
            return Verdict(True, f"{authserv_id}: dmarc=pass for {from_domain}{suffix}")
        if method == "dkim":
            signer = properties.get("header.d") or _domain(properties.get("header.i", ""))
            if aligned(signer, from_domain):
                return Verdict(True, f"{authserv_id}: dkim=pass for {signer}, aligned with "
                               f"{from_domain}{suffix}")
    return Verdict(False, f"{authserv_id} reports no aligned pass for {from_domain}{suffix}")


DnsFunction = Callable[..., bytes | None]


def dkim_verdict(raw: bytes, from_address: str, dnsfunc: DnsFunction | None = None) -> Verdict:
    """Verify every DKIM signature; pass when one verifies for a domain aligned with From."""
    from_domain = _domain(from_address)
    try:
        verifier = dkim.DKIM(raw)
        count = len(_signatures(raw))
        for index in range(count):
            ok = (verifier.verify(idx=index, dnsfunc=dnsfunc) if dnsfunc
                  else verifier.verify(idx=index))
            signer = (verifier.domain or b"").decode("ascii", "replace")
            if ok and aligned(signer, from_domain):
                return Verdict(True, f"DKIM signature of {signer} verified, aligned with "
                               f"{from_domain}")
    except Exception as error:  # malformed signatures or DNS trouble: not verified
        log.info("DKIM verification failed: %s", error)
        return Verdict(False, f"DKIM verification failed: {error}")
    if count == 0:
        return Verdict(False, "no DKIM signature")
    return Verdict(False, f"no valid DKIM signature aligned with {from_domain}")


def _signatures(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return [line for line in head.splitlines() if line.lower().startswith(b"dkim-signature:")]
