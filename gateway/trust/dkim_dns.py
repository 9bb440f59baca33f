"""DKIM key lookups for one message, all of them within one deadline.

Why: dkimpy gives every signature's key lookup its own five seconds, so a message with
:data:`~gateway.trust.sender_auth.MAX_SIGNATURES` signatures whose selectors point at a
name server that never answers kept its processing waiting 25 seconds.  Here the lookups
of one message share ``seconds`` in all; once they are spent, the signatures not yet
checked count as not checkable (the sender stays unverified, nothing is failed).

The name servers are the system's (``/etc/resolv.conf``) unless ``dns_nameservers`` names
others (``host`` or ``host:port``, an IPv6 address in brackets when it has a port).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import dkim
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from gateway.config import nameserver_address

__all__ = ["KeyLookup", "key_lookup", "nameserver"]

KeyLookup = Callable[..., bytes | None]
"""What dkimpy calls to read a key: ``lookup(name, timeout=…)`` → the TXT text or None."""


def key_lookup(nameservers: Sequence[str], seconds: float) -> KeyLookup:
    """A TXT lookup for dkimpy whose calls share ``seconds`` from now on."""
    deadline = time.monotonic() + seconds

    def lookup(name: bytes, timeout: float = 5.0) -> bytes | None:
        del timeout  # dkimpy's five seconds a lookup: the deadline decides instead
        left = deadline - time.monotonic()
        if left <= 0:
            raise dkim.DnsTimeoutError(f"the {seconds:g} s for this message's DKIM key "
                                       "lookups are spent")
        try:
            qname = name.decode("ascii")
        except UnicodeDecodeError:
            return None
        try:
            answer = _resolver(tuple(nameservers)).resolve(
                qname, dns.rdatatype.TXT, raise_on_no_answer=False, search=False,
                lifetime=left)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        except dns.exception.Timeout as error:
            raise dkim.DnsTimeoutError(str(error)) from error
        except (dns.exception.DNSException, ValueError) as error:  # no resolver, bad name
            raise dkim.DnsTimeoutError(f"{type(error).__name__}: {error}") from error
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None

    return lookup


@functools.lru_cache(maxsize=4)
def _resolver(nameservers: tuple[str, ...]) -> dns.resolver.Resolver:
    """One resolver per process and name server list (the system's read once)."""
    if not nameservers:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver(text) for text in nameservers]
    return resolver


def nameserver(text: str) -> dns.nameserver.Nameserver:
    """One entry of ``dns_nameservers`` as a plain-DNS name server."""
    host, port = nameserver_address(text)
    return dns.nameserver.Do53Nameserver(host, port)
