"""The one authority on the sender: how sure are we that the From address wrote this message?

:func:`sender_trust` answers once per message (the ``authenticate`` step puts the answer on
``ctx.sender_trust``) with a :class:`SenderTrust`: a level, the method that decided and a
reason a person can read.  Every effect that acts on the claimed identity asks it (roles,
mail commands, reopening, premium terms, acknowledgements); nothing else decides.

- ``Trust.VERIFIED``: the evidence vouches for the From address.
- ``Trust.UNVERIFIED``: no evidence either way (or evidence we cannot read: fail closed).
- ``Trust.FAILED``: the evidence positively fails for the From domain (``dmarc=fail``, or a
  DKIM signature aligned with From that does not verify, and no aligned pass).  Mail is still
  kept; automatic answers to such a sender would be backscatter.

The evidence comes from the method ``sender_authentication`` names:

- ``authres``: our upstream MTA checked DKIM/DMARC and wrote an ``Authentication-Results``
  header (RFC 8601) with its ``authserv_id``.  Only the **topmost** header carrying that id
  counts (§5: anything further down was there before the message reached our MTA and may be
  forged).  If that header cannot be read, the sender is unverified: a lower header never
  decides.  Values are read as received (no RFC 2047 decoding).  ``dmarc=pass`` counts only
  with ``header.from`` equal to the From domain; ``dkim=pass`` only for a domain aligned
  with it (the same domain or a parent of it).
- ``dkim``: we verify DKIM signatures ourselves (dkimpy): only signatures whose ``d=`` is
  aligned with From are tried, at most :data:`MAX_SIGNATURES` of them.
- ``token`` (development only): a valid reply token vouches for the participant it was
  issued to, and only when From is that participant's address (the agents' mailbox token
  vouches for directory agents, who read that mailbox).  It proves the sender received
  (or was shown) our mail to that address, nothing more.

Whatever the method, a pass vouches for nothing when the message carries a field RFC 5322
allows once (From, Subject, In-Reply-To …) more than once: the verifier and our reading
may have seen different instances (``Analysis.repeated_headers``).  In ``dkim`` mode a
signature with a body length limit (``l=``) is not tried.

Three channels are trusted by construction, whatever the method: copies from our own IMAP
account's Sent folder, imported history (where nobody acts), and the support hub (method
``hub``): a message the hub spooled for a signed-in person (spool ``source = "web"``, the
session's person in its options, both written by the server and never by an intake edge)
is verified exactly when its From is that person.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dkim
from dkim.util import parse_tag_value

from gateway.trust.authres_header import MethodResult, authserv_id_of, read_authres

__all__ = [
    "MAX_SIGNATURES",
    "MessageFacts",
    "SenderTrust",
    "TokenFacts",
    "Trust",
    "UNVERIFIED_FLAG",
    "aligned",
    "authres_verdict",
    "dkim_verdict",
    "hub_verdict",
    "sender_trust",
    "token_verdict",
]

log = logging.getLogger(__name__)

UNVERIFIED_FLAG = "unverified sender"
"""How a message flag starts when its sender claimed more than the evidence vouched for."""

MAX_SIGNATURES = 5
"""DKIM signatures tried per message at most (each may cost a DNS query and an RSA check)."""


class Trust(enum.StrEnum):
    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    FAILED = "failed"


@dataclass(frozen=True)
class SenderTrust:
    level: Trust
    method: str
    """``authres``, ``dkim``, ``token``, ``sent_folder``, ``history`` or ``hub``."""
    reason: str

    @property
    def verified(self) -> bool:
        return self.level is Trust.VERIFIED

    @property
    def failed(self) -> bool:
        return self.level is Trust.FAILED

    @property
    def explanation(self) -> str:
        return f"{self.level.value} ({self.method}): {self.reason}"


@dataclass(frozen=True)
class TokenFacts:
    """The valid reply token among the recipients, and whom it was issued to."""

    ticket_number: int
    participant_email: str | None
    """None when the token names no participant of its ticket."""
    participant_role: str = ""


@dataclass(frozen=True)
class MessageFacts:
    """What :func:`sender_trust` needs, collected by the ``authenticate`` step."""

    from_address: str
    method: str
    authserv_id: str = ""
    authentication_results: Sequence[str] = ()
    """Raw header values, topmost first, as received."""
    dkim: SenderTrust | None = None
    """Our own DKIM check (method ``dkim``), done before the transaction began."""
    token: TokenFacts | None = None
    sender_is_agent: bool = False
    agents_address: str = ""
    sent_folder_of: str | None = None
    """The mailbox whose Sent folder this copy came from (None: not a copy)."""
    history: bool = False
    hub_person: str | None = None
    """The signed-in person the hub wrote this message for (None: not from the hub)."""
    repeated_headers: Sequence[str] = ()
    """Header fields RFC 5322 allows once that the message carries more than once."""


def sender_trust(facts: MessageFacts) -> SenderTrust:
    """How sure we are that ``facts.from_address`` wrote the message (the one authority)."""
    if facts.sent_folder_of is not None:
        return SenderTrust(Trust.VERIFIED, "sent_folder", "copy from the Sent folder of our own "
                           f"authenticated IMAP account ({facts.sent_folder_of})")
    if facts.hub_person is not None:
        return hub_verdict(facts.hub_person, facts.from_address)
    if facts.history:
        return SenderTrust(Trust.UNVERIFIED, "history", "imported history: nobody acts, "
                           "nothing is verified")
    return _one_of_each(_evidence_verdict(facts), facts.repeated_headers)


def _evidence_verdict(facts: MessageFacts) -> SenderTrust:
    if facts.method == "authres":
        return authres_verdict(facts.authentication_results, facts.authserv_id,
                               facts.from_address)
    if facts.method == "dkim":
        return facts.dkim or SenderTrust(Trust.UNVERIFIED, "dkim", "DKIM was not verified")
    return token_verdict(facts)


def _one_of_each(trust: SenderTrust, repeated: Sequence[str]) -> SenderTrust:
    """A pass vouches for nothing when a field allowed once is there twice: the verifier
    (a DKIM signature covers the bottom-most instance, a DMARC checker one From of its
    choosing) and our reading (the first) may have seen different instances, so a forger
    adds his own above a genuine signed header (RFC 6376 §8.15)."""
    if not trust.verified or not repeated:
        return trust
    names = ", ".join(repeated)
    return SenderTrust(Trust.UNVERIFIED, trust.method, f"more than one {names} header, where "
                       f"RFC 5322 allows one: the evidence ({trust.reason}) cannot say which "
                       "one it vouched for")


def hub_verdict(hub_person: str, from_address: str) -> SenderTrust:
    """The hub's own message: verified when From is the session's person, else nothing."""
    if hub_person.strip().lower() == from_address.strip().lower():
        return SenderTrust(Trust.VERIFIED, "hub", f"written in the support hub by "
                           f"{hub_person}, signed in by a link mailed to that address")
    return SenderTrust(Trust.UNVERIFIED, "hub", f"written in the support hub by {hub_person}, "
                       f"but From is {from_address}")


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the signer is the From domain or a parent domain of it."""
    signing_domain, from_domain = signing_domain.lower().rstrip("."), from_domain.lower()
    if not signing_domain or "." not in signing_domain:
        return False
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def _authres(reason: str, level: Trust = Trust.UNVERIFIED) -> SenderTrust:
    return SenderTrust(level, "authres", reason)


def authres_verdict(values: Sequence[str], authserv_id: str, from_address: str) -> SenderTrust:
    """Judge the ``Authentication-Results`` values (topmost first) for ``from_address``."""
    from_domain = _domain(from_address)
    for index, value in enumerate(values):
        found = authserv_id_of(value)
        if found is None:  # above ours, so written on our side: fail closed
            return _authres(f"an Authentication-Results header above any of {authserv_id} is "
                            "unreadable")
        if found != authserv_id:
            continue
        lower = sum(1 for v in values[index + 1:] if authserv_id_of(v) == authserv_id)
        suffix = (f" ({lower} lower header{'s' if lower > 1 else ''} claiming {authserv_id} "
                  "ignored)") if lower else ""
        header = read_authres(value)
        if header is None:
            return _authres(f"the topmost Authentication-Results of {authserv_id} is "
                            f"unreadable{suffix}")
        return _judge(header.results, authserv_id, from_domain, suffix)
    return _authres(f"no Authentication-Results from {authserv_id}")


def _judge(results: Sequence[MethodResult], authserv_id: str, from_domain: str,
           suffix: str) -> SenderTrust:
    """DMARC about the From domain decides; else an aligned DKIM pass; fails are FAILED."""
    dmarc = [r for r in results if r.method == "dmarc"
             and r.properties.get("header.from", "").lower().rstrip(".") == from_domain]
    if any(r.result == "pass" for r in dmarc):
        return _authres(f"{authserv_id}: dmarc=pass for {from_domain}{suffix}", Trust.VERIFIED)
    if any(r.result == "fail" for r in results if r.method == "dmarc"
           and r.properties.get("header.from", "").lower().rstrip(".") in {"", from_domain}):
        return _authres(f"{authserv_id}: dmarc=fail for {from_domain}{suffix}", Trust.FAILED)
    signed = [r for r in results if r.method == "dkim" and aligned(
        (r.properties.get("header.d") or _domain(r.properties.get("header.i", ""))).lower(),
        from_domain)]
    passed = [r for r in signed if r.result == "pass"]
    if passed:
        signer = passed[0].properties.get("header.d") or passed[0].properties["header.i"]
        return _authres(f"{authserv_id}: dkim=pass for {signer.lower()}, aligned with "
                        f"{from_domain}{suffix}", Trust.VERIFIED)
    if any(r.result == "fail" for r in signed):
        return _authres(f"{authserv_id}: dkim=fail for a signature aligned with {from_domain} "
                        f"and no aligned pass{suffix}", Trust.FAILED)
    return _authres(f"{authserv_id} reports no aligned pass for {from_domain}{suffix}")


DnsFunction = Callable[..., bytes | None]


def dkim_verdict(raw: bytes, from_address: str, dnsfunc: DnsFunction | None = None
                 ) -> SenderTrust:
    """Verify the DKIM signatures aligned with From (at most :data:`MAX_SIGNATURES`).

    ``dnsfunc`` reads the keys (:func:`gateway.trust.dkim_dns.key_lookup`: all of one
    message's lookups within one deadline); None: the system's resolver, five seconds.
    It waits on the network: callers ask before they take the writer lane or open a
    transaction, so a slow name server holds up this message alone."""
    from_domain = _domain(from_address)
    found = _signatures(raw)
    signatures = [domain for domain, _ in found]
    aligned_ones = [i for i, domain in enumerate(signatures) if aligned(domain, from_domain)]
    candidates = [i for i in aligned_ones if not found[i][1]]
    if not signatures:
        return SenderTrust(Trust.UNVERIFIED, "dkim", "no DKIM signature")
    if not aligned_ones:
        return SenderTrust(Trust.UNVERIFIED, "dkim", f"no DKIM signature aligned with "
                           f"{from_domain} (unaligned ones are not tried)")
    if not candidates:
        return SenderTrust(Trust.UNVERIFIED, "dkim", f"the DKIM signature(s) aligned with "
                           f"{from_domain} sign only the first bytes of the body (l=): text "
                           "added after them would pass, so they are not tried")
    failed = False
    try:
        verifier = dkim.DKIM(raw)
    except Exception as error:  # malformed message: not verified
        return SenderTrust(Trust.UNVERIFIED, "dkim", f"DKIM verification impossible: {error}")
    for index in candidates[:MAX_SIGNATURES]:
        outcome = _verify_one(verifier, index, dnsfunc)
        if outcome is True:
            return SenderTrust(Trust.VERIFIED, "dkim", f"DKIM signature of "
                               f"{signatures[index]} verified, aligned with {from_domain}")
        failed = failed or outcome is False
    tried = min(len(candidates), MAX_SIGNATURES)
    if failed:
        return SenderTrust(Trust.FAILED, "dkim", f"{tried} DKIM signature(s) aligned with "
                           f"{from_domain} did not verify")
    return SenderTrust(Trust.UNVERIFIED, "dkim", f"{tried} DKIM signature(s) aligned with "
                       f"{from_domain} could not be checked (key not found or unreadable)")


def _verify_one(verifier: dkim.DKIM, index: int, dnsfunc: DnsFunction | None) -> bool | None:
    """True verified, False the key was found and the signature fails, None not checkable."""
    verifier.pk = None
    try:
        ok = (verifier.verify(idx=index, dnsfunc=dnsfunc) if dnsfunc
              else verifier.verify(idx=index))
    except dkim.ValidationError as error:  # e.g. body hash mismatch: the message changed
        log.info("DKIM signature %d does not verify: %s", index, error)
        return False
    except Exception as error:  # malformed signature or key, DNS trouble
        log.info("DKIM signature %d not checkable: %s", index, error)
        return None
    if ok:
        return True
    return False if verifier.pk is not None else None


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]


def _signatures(raw: bytes) -> list[tuple[str, bool]]:
    """The ``d=`` of each DKIM-Signature, in order ("" when unreadable: never tried), and
    whether it has a body length limit (``l=``: it signs part of the body only)."""
    found: list[tuple[str, bool]] = []
    for block in _signature_blocks(raw):
        try:
            tags = parse_tag_value(block)
            found.append((tags.get(b"d", b"").decode("ascii", "replace").strip().lower(),
                          b"l" in tags))
        except Exception:  # noqa: BLE001 - an unreadable signature is never tried
            found.append(("", False))
    return found


def _signature_blocks(raw: bytes) -> list[bytes]:
    blocks: list[list[bytes]] = []
    inside = False
    for line in _header_block(raw).splitlines():
        if line[:1] in {b" ", b"\t"}:
            if inside:
                blocks[-1].append(line)
            continue
        inside = line.lower().startswith(b"dkim-signature:")
        if inside:
            blocks.append([line.split(b":", 1)[1]])
    return [b" ".join(part.strip() for part in block) for block in blocks]


def token_verdict(facts: MessageFacts) -> SenderTrust:
    """Development mode: a reply token vouches for the participant it was issued to."""
    token, sender = facts.token, facts.from_address.lower()
    if token is None:
        return SenderTrust(Trust.UNVERIFIED, "token", "no valid reply token among the "
                           "recipients")
    issued_to = (token.participant_email or "").lower()
    if not issued_to:
        return SenderTrust(Trust.UNVERIFIED, "token", f"the reply token of ticket "
                           f"#{token.ticket_number} names no participant of it")
    if issued_to == sender:
        return SenderTrust(Trust.VERIFIED, "token", f"reply token of ticket "
                           f"#{token.ticket_number} issued to {issued_to} (development mode)")
    if (facts.sender_is_agent and token.participant_role == "agent" and facts.agents_address
            and issued_to == facts.agents_address.lower()):
        return SenderTrust(Trust.VERIFIED, "token", f"reply token of ticket "
                           f"#{token.ticket_number} issued to the agents' mailbox "
                           f"{issued_to}, From a directory agent (development mode)")
    return SenderTrust(Trust.UNVERIFIED, "token", f"the reply token of ticket "
                       f"#{token.ticket_number} was issued to {issued_to}, not to {sender}")
