"""A client that leaves while its message is being committed must not stop the spool writer.

aiosmtpd cancels the session's handler when the client closes; the cancel reaches the
spool writer's future.  The writer used to die on it (``InvalidStateError`` from
``set_result``), and every later message then waited for an answer that never came.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.models import SpoolEntry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.mail import make_mail, send


@contextmanager
def _spool_locked(gateway: Gateway) -> Iterator[None]:
    """Hold the spool's write lock from outside, so a commit waits until we let go."""
    if gateway.db.is_sqlite:
        path = make_url(gateway.settings.database_url).database
        assert path is not None
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
    else:
        with gateway.db.engine.connect() as locked:
            locked.exec_driver_sql("LOCK TABLE spool IN EXCLUSIVE MODE")
            yield
            locked.rollback()


def _message_ids(gateway: Gateway) -> set[str | None]:
    with gateway.db.reading() as session:
        return set(session.scalars(select(SpoolEntry.message_id)))


def test_a_client_gone_during_the_commit_leaves_intake_working(running: GatewayServer,
                                                                gateway: Gateway) -> None:
    host, port = running.gateway.settings.smtp_listen.rsplit(":", 1)
    leaving = make_mail(subject="I will not wait", message_id="<leaving@acme.example>")
    with _spool_locked(gateway):
        with socket.create_connection((host, int(port)), timeout=30) as client:
            client.sendall(b"EHLO client.example\r\nMAIL FROM:<anna@acme.example>\r\n"
                           b"RCPT TO:<support@support.example>\r\nDATA\r\n")
            wanted = b"354"
            seen = b""
            while wanted not in seen:
                seen += client.recv(4096)
            client.sendall(leaving.replace(b"\n", b"\r\n") + b".\r\n")
            time.sleep(0.5)  # the message is with the writer, which waits for the lock
        time.sleep(0.5)  # the server has seen the close and cancelled the session
    # The next client is answered (it waited forever once the writer had died) ...
    staying = make_mail(subject="I wait for the 250", message_id="<staying@acme.example>")
    assert send(running.gateway.settings.smtp_listen, staying, timeout=30) == {}
    # ... and the message of the client that left was stored all the same: it was complete.
    wait_for(lambda: {"leaving@acme.example", "staying@acme.example"} <= _message_ids(gateway),
             message="both messages in the spool")
