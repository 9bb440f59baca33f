"""IDLE on every watched folder: an agent's answer appended to Sent is recorded within
seconds, with the poll interval at its default 60 s so that only IDLE can explain it."""

from __future__ import annotations

import time
from functools import partial

from sqlalchemy import select

from gateway.config import MailboxConfig
from gateway.models import MessageRecord, Ticket
from gateway.runtime.app import Gateway
from tests.conftest import wait_for
from tests.imap.conftest import SHARED, ImapGateways, mailbox, wait_all_processed, wait_polled
from tests.imap.dovecot import Dovecot
from tests.mail import make_mail


def _append(dovecot: Dovecot, folder: str, raw: bytes) -> float:
    """APPEND one message; returns the moment the server confirmed it (monotonic)."""
    client = dovecot.client(SHARED)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, raw)
        return time.monotonic()
    finally:
        client.logout()


def _agent_message(gateway: Gateway, message_id: str) -> bool:
    with gateway.db.reading() as session:
        found = session.scalar(select(MessageRecord).where(
            MessageRecord.message_id == message_id))
        return found is not None and found.role == "agent"


def test_reply_appended_to_sent_is_recorded_within_five_seconds(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    # Given a shared mailbox with a Sent folder, polled at the default interval (60 s)
    box = {k: v for k, v in mailbox(dovecot, sent="Sent").items() if k != "poll_interval"}
    assert MailboxConfig.model_validate(box).poll_interval == 60.0
    _append(dovecot, "Sent", make_mail(sender=SHARED, subject="Old", message_id="<old@x.example>"))
    server = imap_gateways.start([box])
    gateway = server.gateway
    wait_polled(gateway, "shared", "Sent")
    wait_polled(gateway, "shared", "INBOX")
    # ... and a customer's ticket
    _append(dovecot, "INBOX", make_mail(sender="anna@acme.example", subject="Sync fails",
                                        message_id="<question@acme.example>"))
    wait_all_processed(gateway, 1)
    with gateway.db.reading() as session:
        number = session.scalars(select(Ticket)).one().number

    for n in (1, 2):
        time.sleep(1.5)  # everything is idle now: only IDLE can announce what comes next
        # When an agent's answer is appended to Sent (their client's copy)
        appended = _append(dovecot, "Sent", make_mail(
            sender=SHARED, to="anna@acme.example", subject=f"Re: [#{number}] Sync fails",
            body=f"Answer {n}.", message_id=f"<answer{n}@support.example>",
            in_reply_to="<question@acme.example>"))

        # Then it is on the ticket as the agent's message within 5 s
        wait_for(partial(_agent_message, gateway, f"answer{n}@support.example"), 30,
                 interval=0.05, message=f"answer {n} recorded")
        assert time.monotonic() - appended < 5.0, f"answer {n} took too long"

    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None and ticket.first_response_at is not None
