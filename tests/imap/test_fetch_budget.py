"""Large mail in a shared mailbox cannot exhaust the poller's memory (MISSION §5.6).

The poller used to FETCH the bytes of a whole batch (50 messages of up to 25 MB) at once,
and the header block of an over-size message without bound.  These tests watch, through a
relay that sees every IMAP command (``tests/imap/proxy.py``), what the poller asks Dovecot
for: each FETCH of bytes within ``batch_bytes`` or one message alone, every message stored
once, the checkpoint following each FETCH and the mark only after the commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from gateway.models import SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from tests.conftest import wait_for
from tests.imap.conftest import (
    SHARED,
    ImapGateways,
    folder_state,
    mailbox,
    wait_all_processed,
    wait_polled,
)
from tests.imap.dovecot import Dovecot
from tests.imap.proxy import Command, ImapProxy
from tests.mail import make_mail

KEYWORD = "$Gateway"
BUDGET = 300_000


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[ImapProxy]:
    relay = ImapProxy((dovecot.host, dovecot.port))
    yield relay
    relay.close()


def _via(proxy: ImapProxy, dovecot: Dovecot) -> str:
    return dovecot.url(SHARED).replace(f":{dovecot.port}", f":{proxy.port}")


def _large(n: int, lines: int) -> bytes:
    body = "".join(f"line {k:05d} of a long log {'x' * 50}\n" for k in range(lines))
    return make_mail(sender=f"user{n}@customer.example", subject=f"Large {n}", body=body,
                     message_id=f"<large-{n}@client.example>")


def _server_sizes(dovecot: Dovecot) -> dict[int, int]:
    client = dovecot.client(SHARED)
    try:
        client.select_folder("INBOX", readonly=True)
        return {uid: int(data[b"RFC822.SIZE"])
                for uid, data in client.fetch("1:*", [b"RFC822.SIZE"]).items()}
    finally:
        client.logout()


def _keyword_uids(dovecot: Dovecot) -> list[int]:
    client = dovecot.client(SHARED)
    try:
        client.select_folder("INBOX", readonly=True)
        return sorted(client.search(["KEYWORD", KEYWORD]))
    finally:
        client.logout()


def _stored_uids(gateway: Gateway) -> Counter[int]:
    with gateway.db.reading() as session:
        return Counter(int(entry.options["imap"]["uid"])
                       for entry in session.scalars(select(SpoolEntry)))


def _append(dovecot: Dovecot, mails: list[bytes]) -> None:
    client = dovecot.client(SHARED)
    try:
        client.multiappend("INBOX", mails)
    finally:
        client.logout()


def _body_fetches(proxy: ImapProxy) -> list[Command]:
    return [c for c in proxy.commands if c.name == "FETCH" and "BODY.PEEK[" in c.rest]


def test_a_batch_of_large_messages_is_fetched_within_the_byte_budget(
        dovecot: Dovecot, proxy: ImapProxy, imap_gateways: ImapGateways) -> None:
    seen_at_fetch: list[tuple[list[int], int]] = []
    unstored_at_mark: list[tuple[list[int], list[int]]] = []
    server = imap_gateways.start([mailbox(dovecot, url=_via(proxy, dovecot),
                                          after=f"flag:{KEYWORD}", batch_bytes=BUDGET)])
    gateway = server.gateway

    def check(command: Command) -> None:
        """At each FETCH of bytes, where the checkpoint stands; at each mark, what is not
        in the spool yet (must be nothing: marking comes after the commit)."""
        if command.name == "FETCH" and "BODY.PEEK[" in command.rest:
            state = folder_state(gateway, "shared", "INBOX")
            seen_at_fetch.append((command.uids, state.last_uid if state else -1))
        elif command.name == "STORE":
            stored = _stored_uids(gateway)
            unstored_at_mark.append((command.uids, [u for u in command.uids if u not in stored]))

    proxy.on_command = check
    wait_polled(gateway, "shared")
    # Ten messages of about 70 KB (four fit the budget) and one of 400 KB (over it).
    mails = [_large(n, 1000) for n in range(5)] + [_large(5, 6000)] + [
        _large(n, 1000) for n in range(6, 11)]
    _append(dovecot, mails)
    wait_all_processed(gateway, 11)
    sizes = _server_sizes(dovecot)
    assert len(sizes) == 11 and sizes[6] > BUDGET and sum(sizes.values()) > 3 * BUDGET
    fetches = _body_fetches(proxy)
    assert proxy.errors == []
    # Each FETCH of bytes asks for at most the budget, or for one message alone.
    for fetch in fetches:
        assert fetch.rest == "(BODY.PEEK[])"
        assert len(fetch.uids) == 1 or sum(sizes[u] for u in fetch.uids) <= BUDGET, fetch
    assert len(fetches) >= 4 and [6] in [f.uids for f in fetches]
    # Every message fetched, stored and marked exactly once.
    assert sorted(u for f in fetches for u in f.uids) == list(range(1, 12))
    assert _stored_uids(gateway) == Counter(range(1, 12))
    with gateway.db.reading() as session:
        states = Counter(session.scalars(select(SpoolEntry.state)))
    assert states == {SpoolState.PROCESSED: 11}
    assert _keyword_uids(dovecot) == list(range(1, 12))
    marks = [u for c in proxy.commands if c.name == "STORE" for u in c.uids]
    assert sorted(marks) == list(range(1, 12))
    assert unstored_at_mark and all(missing == [] for _uids, missing in unstored_at_mark)
    # The checkpoint followed each FETCH: a crash repeats one FETCH's messages, not a batch.
    done = 0
    for uids, last_uid in seen_at_fetch:
        assert last_uid == done, (uids, last_uid, seen_at_fetch)
        done = max(uids)
    wait_for(lambda: (s := folder_state(gateway, "shared", "INBOX")) is not None
             and s.last_uid == 11 and s.taken == 11, 10, message="the checkpoint at UID 11")


def test_an_oversize_message_all_header_is_stored_with_at_most_the_bounded_header(
        dovecot: Dovecot, proxy: ImapProxy, imap_gateways: ImapGateways) -> None:
    boxes = [mailbox(dovecot, url=_via(proxy, dovecot), after=f"flag:{KEYWORD}")]
    server = imap_gateways.start(boxes, max_message_size=50_000, max_header_block_size=20_000)
    gateway = server.gateway
    wait_polled(gateway, "shared")
    pad = b"X-Pad: " + b"y" * 900 + b"\r\n"
    all_header = (b"From: mallory@evil.example\r\nSubject: All header\r\n"
                  b"Message-ID: <all-header@evil.example>\r\n" + pad * 100 + b"\r\nshort\r\n")
    _append(dovecot, [make_mail(message_id="<small@acme.example>"), all_header])
    wait_all_processed(gateway, 2)
    with gateway.db.reading() as session:
        rows = {e.message_id: e for e in session.scalars(select(SpoolEntry))}
    assert set(rows) == {"small@acme.example", "all-header@evil.example"}
    assert rows["small@acme.example"].state == SpoolState.PROCESSED
    huge = rows["all-header@evil.example"]
    size = _server_sizes(dovecot)[2]
    assert huge.state == SpoolState.QUARANTINED
    assert huge.options["too_large"] == {"size": size, "limit": 50_000}
    # At most the header-block limit: whole fields, ended by a blank line.
    assert len(huge.raw) <= 20_000 and huge.raw.endswith(b"\r\n\r\n")
    fields, pads = all_header[:all_header.index(b"X-Pad")], huge.raw.count(pad)
    assert 10 < pads < 22 and huge.raw == fields + pad * pads + b"\r\n"
    header_fetches = [f for f in _body_fetches(proxy) if "HEADER" in f.rest]
    assert [(f.uids, f.rest) for f in header_fetches] == [([2], "(BODY.PEEK[HEADER]<0.20000>)")]
    assert _keyword_uids(dovecot) == [1, 2]
