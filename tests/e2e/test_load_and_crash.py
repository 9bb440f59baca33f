"""1,000 messages from 10 concurrent SMTP clients: all answered 250, spooled and processed
exactly once; then the same with the server SIGKILLed part-way and restarted, the clients
retrying like MTAs do until they get their 250."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter

from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import MessageRecord, SpoolEntry, SpoolState, Ticket
from gateway.runtime.app import Gateway
from tests.conftest import Processes, run_gateway, wait_for
from tests.mail import make_mail

CLIENTS = 10
PER_CLIENT = 100


def _mails(client: int) -> list[tuple[str, bytes]]:
    mails = []
    for n in range(PER_CLIENT):
        message_id = f"<load-{client}-{n}@client.example>"
        raw = make_mail(sender=f"user{client}@load.example", subject=f"Load {client}/{n}",
                        body=f"Message {n} of client {client}.", message_id=message_id)
        mails.append((message_id.strip("<>"), raw))
    return mails


class MtaLikeClient(threading.Thread):
    """Sends its mails over one session; on any failure reconnects and resends the mail
    that had no 250 yet, as an MTA does."""

    def __init__(self, host_port: str, client: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.mails = _mails(client)
        self.sender = f"user{client}@load.example"
        self.deadline = deadline
        self.accepted: list[str] = []
        self.retries = 0

    def run(self) -> None:
        pending = list(self.mails)
        while pending and time.monotonic() < self.deadline:
            try:
                with smtplib.SMTP(self.host, self.port, timeout=30) as session:
                    while pending:
                        message_id, raw = pending[0]
                        session.sendmail(self.sender, ["support@support.example"], raw)
                        self.accepted.append(message_id)
                        pending.pop(0)
            except (OSError, smtplib.SMTPException):
                self.retries += 1
                time.sleep(0.2)


def _run_clients(settings: Settings, deadline_s: float = 240) -> list[MtaLikeClient]:
    deadline = time.monotonic() + deadline_s
    clients = [MtaLikeClient(settings.smtp_listen, c, deadline) for c in range(CLIENTS)]
    for client in clients:
        client.start()
    return clients


def _processed_everything(gateway: Gateway) -> bool:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(SpoolEntry).where(
            SpoolEntry.state == SpoolState.RECEIVED)) == 0


def _assert_exactly_once(gateway: Gateway, accepted: list[str]) -> None:
    expected = {message_id for message_id, _raw in
                (m for c in range(CLIENTS) for m in _mails(c))}
    assert len(accepted) == CLIENTS * PER_CLIENT and set(accepted) == expected
    with gateway.db.reading() as session:
        spooled = Counter(session.scalars(select(SpoolEntry.message_id)))
        states = Counter(session.scalars(select(SpoolEntry.state)))
        recorded = Counter(session.scalars(select(MessageRecord.message_id)))
        tickets = session.scalar(select(func.count()).select_from(Ticket))
    assert set(spooled) == expected and max(spooled.values()) == 1
    assert states == {SpoolState.PROCESSED: CLIENTS * PER_CLIENT}
    assert set(recorded) == expected and max(recorded.values()) == 1
    assert tickets == CLIENTS * PER_CLIENT


def test_thousand_messages_from_ten_clients(processes: Processes, gateway: Gateway,
                                            settings: Settings) -> None:
    processes.serve()
    clients = _run_clients(settings)
    for client in clients:
        client.join()
    accepted = [m for c in clients for m in c.accepted]
    assert sum(c.retries for c in clients) == 0, processes.logs()[-3000:]
    wait_for(lambda: _processed_everything(gateway), timeout=300, interval=0.5,
             message="every spooled message processed")
    _assert_exactly_once(gateway, accepted)


def test_sigkill_during_load_loses_and_duplicates_nothing(processes: Processes, gateway: Gateway,
                                                          settings: Settings) -> None:
    server = processes.serve()
    clients = _run_clients(settings)
    # Kill the server hard once a third of the mail has been accepted.
    wait_for(lambda: sum(len(c.accepted) for c in clients) >= CLIENTS * PER_CLIENT // 3,
             timeout=120, message="a third of the load accepted")
    server.kill()
    server.wait()
    time.sleep(1.0)
    processes.serve()  # restart; the clients reconnect and retry by themselves
    for client in clients:
        client.join()
    assert sum(c.retries for c in clients) > 0  # the kill really cut sessions
    accepted = [m for c in clients for m in c.accepted]
    wait_for(lambda: _processed_everything(gateway), timeout=300, interval=0.5,
             message="every spooled message processed after the restart")
    _assert_exactly_once(gateway, accepted)
    inbox = run_gateway(settings, "inbox", "list", "--json", "--state", "quarantined")
    assert inbox.returncode == 0 and inbox.stdout.strip() == b"[]"


