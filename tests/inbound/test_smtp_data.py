"""The DATA block reader gives what aiosmtpd's line-by-line reader gives, however the
bytes arrive: property tests against a line-by-line reference, then the same cases
over a real socket with smtplib."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from inbound.smtp_data import DataResult, DataState, read_data

SIZE_LIMIT = 400


def _stuff(lines: list[bytes]) -> bytes:
    """The wire form of a message body: each line CRLF-ended, leading dots doubled."""
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def _reference(wire: bytes, *, size_limit: int) -> tuple[DataState, bytes]:
    """What a line-by-line reader without a line-length limit makes of ``wire`` (up to its
    terminator): the state it answers with, and the content."""
    lines, size = [], 0
    rest = wire
    while True:
        line, _, rest = rest.partition(b"\r\n")
        if line == b".":
            break
        size += len(line) + 2
        lines.append(line[1:] if line.startswith(b".") else line)
    if size > size_limit:
        return DataState.TOO_MUCH, b""
    return DataState.NOMINAL, b"".join(line + b"\r\n" for line in lines)


async def _read(wire: bytes, cuts: list[int], *, limit: int
                ) -> tuple[DataResult | None, bytes]:
    """Feed ``wire`` to a stream in pieces cut at ``cuts``; return the result and the rest."""
    reader = asyncio.StreamReader(limit=limit)
    task = asyncio.ensure_future(read_data(reader, size_limit=SIZE_LIMIT))
    start = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        reader.feed_data(wire[start:cut])
        start = cut
        await asyncio.sleep(0)
    reader.feed_eof()
    result = await task
    return result, await reader.read()


line_bytes = st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b" ", b"\xe9", b"x" * 20,
                                       b"y" * 90]),
                      max_size=6).map(b"".join).filter(lambda line: b"\r\n" not in line)
"""One line's bytes: anything but CRLF, which would end it (lone CR and LF included)."""


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(line_bytes, max_size=25), cuts=st.lists(st.integers(0, 700), max_size=12),
       limit=st.sampled_from([8, 16, 64, 10_000]))
def test_block_reader_matches_line_reader(lines: list[bytes], cuts: list[int], limit: int) -> None:
    wire = _stuff(lines) + b".\r\n"
    after = b"QUIT\r\n"
    result, rest = asyncio.run(_read(wire + after, cuts, limit=limit))
    state, content = _reference(wire, size_limit=SIZE_LIMIT)
    assert result is not None
    assert result.state is state and result.content == content
    assert rest == after  # what the client sent after the terminator is still there


def test_edge_cases_of_the_terminator() -> None:
    cases = {
        b".\r\n": b"",  # an empty message
        b"..\r\n.\r\n": b".\r\n",  # one line that is a lone dot
        b"a\r\n.\r\n": b"a\r\n",
        b"a\n.\n\r\n.\r\n": b"a\n.\n\r\n",  # bare LFs never end the message
        b"a\r\n.b\r\n..\r\n.\r\n": b"a\r\nb\r\n.\r\n",
    }
    for wire, expected in cases.items():
        for cuts in ([], list(range(len(wire)))):  # all at once, one byte at a time
            result, rest = asyncio.run(_read(wire + b"RSET\r\n", cuts, limit=16))
            assert result is not None and result.content == expected, wire
            assert rest == b"RSET\r\n"


def test_a_client_that_leaves_mid_message_gives_none() -> None:
    result, _ = asyncio.run(_read(b"Subject: x\r\n\r\nhalf a mes", [5], limit=64))
    assert result is None


# -- over a real socket --------------------------------------------------------------------


def _stored(gateway: Gateway) -> list[bytes]:
    with gateway.db.reading() as session:
        return [entry.raw for entry in session.scalars(select(SpoolEntry).order_by(SpoolEntry.id))]


def _dialogue(address: str, chunks: list[bytes], pause: float = 0.01) -> bytes:
    """Send raw SMTP bytes in the given pieces, ``pause`` apart; the server's lines until
    it closes (after QUIT or a timeout).  The client never half-closes: aiosmtpd ends the
    session at EOF, so a message still being committed would get no answer."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        answers = b""
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection (idle timeout)
                break
            time.sleep(pause)  # its own TCP segment, most likely
        while data := sock.recv(65536):
            answers += data
    return answers


def test_dots_and_a_terminator_split_over_packets(running: GatewayServer, gateway: Gateway) -> None:
    settings_ = running.gateway.settings
    body = (b"From: anna@acme.example\r\nTo: support@support.example\r\nSubject: dots\r\n"
            b"Message-ID: <dots@client.example>\r\n\r\n.leading dot\r\n.\r\n..\r\nend\r\n")
    host, port = settings_.smtp_listen.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        assert client.sendmail("anna@acme.example", ["support@support.example"], body) == {}
    # smtplib stuffed the dots; the spool holds the message as the client meant it
    assert _stored(gateway) == [body]

    wire = (b"From: anna@acme.example\r\nSubject: split\r\n"
            b"Message-ID: <split@client.example>\r\n\r\nline\r\n.\r\n")
    head = (b"EHLO client.example\r\nMAIL FROM:<anna@acme.example>\r\n"
            b"RCPT TO:<support@support.example>\r\nDATA\r\n")
    last_bytes = [wire[i:i + 1] for i in range(len(wire) - 12, len(wire))]
    answers = _dialogue(settings_.smtp_listen, [head, wire[:-12], *last_bytes, b"QUIT\r\n"])
    after_data = answers.split(b"354 ")[-1].splitlines()
    assert after_data[1].startswith(b"250 ") and after_data[-1].startswith(b"221 ")
    assert _stored(gateway)[-1] == wire[:-3]


def test_a_line_longer_than_the_stream_buffer_is_kept_and_over_size_is_refused(
    running: GatewayServer, gateway: Gateway
) -> None:
    settings_ = running.gateway.settings
    head = (b"EHLO client.example\r\nMAIL FROM:<anna@acme.example>\r\n"
            b"RCPT TO:<support@support.example>\r\nDATA\r\n")
    long_line = b"Subject: long\r\n\r\n" + b"y" * 20_000 + b"\r\n"
    host, port = settings_.smtp_listen.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        client.ehlo("client.example")
        client.mail("anna@acme.example")
        client.rcpt("support@support.example")
        code, text = client.data(long_line)
    assert (code, text[:5]) == (250, b"2.0.0")
    assert _stored(gateway) == [long_line]
    too_big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * (
        settings_.max_message_size // 1000 + 2) + b".\r\n"
    answers = _dialogue(settings_.smtp_listen, [head, too_big, b"QUIT\r\n"])
    assert b"552 5.3.4 " in answers and answers.rstrip().endswith(b"221 2.0.0 Bye")
    assert len(_stored(gateway)) == 1


def test_a_slow_message_is_taken_while_its_bytes_keep_coming_and_a_stalled_one_is_not(
    gateway: Gateway, settings_factory: Callable[..., Settings]
) -> None:
    settings_ = settings_factory(smtp_timeout=1.0)  # idle timeout: one second
    server = GatewayServer(Gateway(settings_), run_worker=False, run_web=False)
    server.start()
    try:
        head = (b"EHLO client.example\r\nMAIL FROM:<anna@acme.example>\r\n"
                b"RCPT TO:<support@support.example>\r\nDATA\r\n")
        lines = [b"Subject: slow\r\nMessage-ID: <slow@client.example>\r\n\r\n",
                 *[b"a line of a message on a slow link\r\n"] * 6, b".\r\n"]
        # 2.8 s in all, 0.4 s between blocks: longer than the timeout, never idle that long
        host, port = settings_.smtp_listen.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(head)
            for line in lines:
                time.sleep(0.4)
                sock.sendall(line)
            sock.sendall(b"QUIT\r\n")
            answers = b""
            while data := sock.recv(65536):
                answers += data
        assert answers.split(b"354 ")[-1].splitlines()[1].startswith(b"250 ")
        stalled = _dialogue(settings_.smtp_listen,
                            [head, b"Subject: stalled\r\n\r\nhalf of it", b""], pause=2.0)
        assert b"250 2.0.0" not in stalled.split(b"354 ")[-1]
        assert len(_stored(gateway)) == 1
    finally:
        server.stop()
