"""Secrets at rest (issue 12, item 6): after an activation mail is delivered, no live
token can be read from the database, in its files or its rows; the link still works once.
Before delivery the live copy is sealed (retries send it, DKIM signs it); after, it is gone.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.errors import TemporaryFailure
from gateway.grants.service import request_access
from gateway.models import OutboxItem, OutboxStatus
from gateway.runtime.app import Gateway
from outbound.delivery import deliver_outbox_item
from outbound.sealing import MARKER, live_bytes
from outbound.transports.maildir import MaildirTransport
from outbound.transports.smtp import SmtpTransport
from tests.conftest import free_port, run_gateway, wait_for
from tests.grants.conftest import activation_link, overview_link, wait_for_mail
from tests.grants.http import request
from tests.secrets_scan import files_holding, rows_holding, sqlite_files


def _settled(gateway: Gateway) -> bool:
    with gateway.db.reading() as session:
        return not list(session.scalars(select(OutboxItem.id).where(
            OutboxItem.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))))


def test_no_live_activation_token_in_the_database_after_delivery_and_the_link_works_once(
        web: str, settings: Settings, gateway: Gateway) -> None:
    # Given Kenji asked for access and Bert (English) got his activation mail
    done = run_gateway(settings, "grants", "request", "--team", "acme", "--agent",
                       "kenji@support.example", "--reason", "Sync fails, ticket 42")
    assert done.returncode == 0, done.stderr.decode()
    mail = wait_for_mail(settings, 1, To="bert@acme.example")[0]
    link, overview = activation_link(mail), overview_link(mail)
    token, signed = link.rsplit("/", 1)[1], overview.rsplit("/", 1)[1]
    wait_for(lambda: _settled(gateway), message="every grant mail delivered")
    # Then neither his activation token nor his overview link is in any row or file
    assert rows_holding(gateway, token) == [] and rows_holding(gateway, signed) == []
    assert files_holding(gateway, token) == [] and files_holding(gateway, signed) == []
    if settings.is_sqlite:
        assert any(p.name.endswith("-wal") for p in sqlite_files(gateway))  # WAL read too
    # The stored copy says where the secret was, and no live copy is kept
    with gateway.db.reading() as session:
        rows = list(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "grant_activation")))
    assert rows and all(r.status == OutboxStatus.SENT and r.sealed is None for r in rows)
    assert all(f"/grants/activate/{MARKER}".encode() in r.raw for r in rows)
    # And the link from the mail works, once
    page = request("GET", link)
    assert page.status == 200
    assert request("POST", link, {"csrf": page.csrf(), "duration": "1h"}).status == 200
    assert request("POST", link, {"csrf": page.csrf(), "duration": "1h"}).status == 410


def test_a_retry_sends_the_live_link_and_delivery_drops_the_sealed_copy(
        settings: Settings, gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        outbox_ids = request_access(session, gateway.services, "acme",
                                    agent_email="kenji@support.example", reason="Check sync")
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_ids[0])
        assert item is not None and item.sealed is not None
        live = live_bytes(gateway.services.secret, item)
    token = activation_link(message_from_bytes(live, policy=policy.default)).rsplit("/", 1)[1]
    # Queued: the token is only in the sealed (encrypted) copy
    assert rows_holding(gateway, token) == []
    # A smarthost that cannot be reached: a temporary failure keeps the sealed copy
    down = SmtpTransport(host="127.0.0.1", port=free_port(), timeout=2)
    with pytest.raises(TemporaryFailure):
        deliver_outbox_item(gateway.db, down, settings, outbox_ids[0])
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_ids[0])
        assert item is not None and item.status == OutboxStatus.PENDING
        assert item.sealed is not None and item.attempts == 1
    # The retry delivers the live link, then only the redacted copy remains
    sent = Path(settings.outbound_url.removeprefix("maildir:"))
    assert deliver_outbox_item(gateway.db, MaildirTransport(sent), settings,
                               outbox_ids[0]) == "sent"
    delivered = wait_for_mail(settings, 1)[0]
    assert token in activation_link(delivered)
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_ids[0])
        assert item is not None and item.sealed is None and token.encode() not in item.raw


def test_a_refused_mail_ends_dead_without_its_sealed_copy(
        web: str, settings: Settings, gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        outbox_ids = request_access(session, gateway.services, "acme",
                                    agent_email="kenji@support.example", reason="Check sync")
    # A smarthost that refuses the recipient for good: our own SMTP listener (550 5.7.1,
    # acme.example is not a support domain)
    host, port = settings.smtp_listen.rsplit(":", 1)
    refusing = SmtpTransport(host=host, port=int(port), timeout=10)
    assert deliver_outbox_item(gateway.db, refusing, settings, outbox_ids[0]) == "dead"
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_ids[0])
        assert item is not None and item.status == OutboxStatus.DEAD
        assert item.sealed is None and f"/grants/activate/{MARKER}".encode() in item.raw
