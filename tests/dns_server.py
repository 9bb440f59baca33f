"""A name server on a real UDP socket for the DKIM tests: TXT records it is given, NXDOMAIN
for every other name, and on request no answer at all (``hold``) until ``release``.

dnspython builds and reads the packets; the gateway talks to it as to any name server
(``dns_nameservers``), so its lookups, timeouts and retries are the real ones.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.rcode
import dns.rrset
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["NameServer", "dkim_key_pair", "name_server"]


def dkim_key_pair() -> tuple[bytes, bytes]:
    """(a new private key in PEM, the DKIM TXT record that publishes it)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


class NameServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.records: dict[str, bytes] = {}
        """TXT text by name (lower case, with the final dot)."""
        self.asked: list[str] = []
        """Every query's name, in the order received (retries included)."""
        self.answering = threading.Event()
        self.answering.set()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    def hold(self) -> None:
        """Receive queries but answer none (a name server that does not respond)."""
        self.answering.clear()

    def release(self) -> None:
        """Answer again, from the next query (the client's retries) on."""
        self.answering.set()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - not DNS: ignored as a server would
                continue
            name = query.question[0].name.to_text().lower()
            self.asked.append(name)
            if not self.answering.is_set():
                continue
            self.sock.sendto(self._answer(query, name).to_wire(), peer)

    def _answer(self, query: dns.message.Message, name: str) -> dns.message.Message:
        response = dns.message.make_response(query)
        text = self.records.get(name)
        if text is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        chunks = " ".join(f'"{text[i:i + 200].decode()}"' for i in range(0, len(text), 200))
        response.answer.append(dns.rrset.from_text(name, 60, "IN", "TXT", chunks))
        return response

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()


@contextmanager
def name_server() -> Iterator[NameServer]:
    server = NameServer()
    try:
        yield server
    finally:
        server.close()
