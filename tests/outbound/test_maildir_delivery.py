"""Delivery to a maildir in one write transaction (issue 18): the file is staged under
``tmp/`` before the row is claimed and linked into ``new/`` in the transaction that marks
the row sent.  The mail and the row end exactly as on the general path (claim, send,
settle), and a row that is done or being sent by another worker is not sent again."""

from __future__ import annotations

import mailbox
import os
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.errors import TemporaryFailure
from gateway.models import OutboxItem, OutboxStatus, utcnow
from gateway.runtime.app import Gateway
from outbound import delivery
from outbound.delivery import deliver_outbox_item
from outbound.transports.maildir import MaildirTransport, Staged

RAW = (b"From: Support <support@support.example>\nTo: max@acme.example\n"
       b"Subject: [#1] Printer\nMessage-ID: <x@support.example>\n\n"
       + b"Hello\r\nline with CRLF\n" * 200)


def _queue(gateway: Gateway, **values: object) -> int:
    with gateway.db.transaction() as session:
        item = OutboxItem(kind="ack", mail_from="support@support.example",
                          rcpt_to="max@acme.example", message_id="<x@support.example>",
                          raw=RAW, **values)
        session.add(item)
        session.flush()
        return item.id


def _row(gateway: Gateway, outbox_id: int) -> OutboxItem:
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_id)
        assert item is not None
        return item


def _files(root: Path, sub: str) -> list[bytes]:
    folder = root / sub
    return [path.read_bytes() for path in sorted(folder.iterdir())] if folder.exists() else []


def test_the_one_transaction_path_writes_what_the_stdlib_maildir_wrote(
        gateway: Gateway, tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "sent")
    outbox_id = _queue(gateway)
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "sent"
    # The same bytes as mailbox.Maildir.add (the transport before) of the same message,
    reference = mailbox.Maildir(tmp_path / "reference", create=True)
    reference.add(b"Return-Path: <support@support.example>\n"
                  b"Delivered-To: max@acme.example\n" + RAW)
    assert _files(tmp_path / "sent", "new") == _files(tmp_path / "reference", "new")
    assert _files(tmp_path / "sent", "tmp") == []
    # and the row as claim + settle left it: sent, one attempt, no live copy.
    item = _row(gateway, outbox_id)
    assert item.status == OutboxStatus.SENT and item.attempts == 1
    assert item.sent_at is not None and item.sealed is None and item.next_attempt_at is None
    assert item.last_error == ""
    # Delivering it again sends nothing.
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "skipped"
    assert len(_files(tmp_path / "sent", "new")) == 1


def test_a_row_another_worker_is_sending_is_left_alone(gateway: Gateway,
                                                       tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "sent")
    outbox_id = _queue(gateway, status=OutboxStatus.SENDING, attempts=1, updated_at=utcnow())
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "skipped"
    assert _files(tmp_path / "sent", "new") == [] and _files(tmp_path / "sent", "tmp") == []
    assert _row(gateway, outbox_id).status == OutboxStatus.SENDING


def test_a_stale_claim_is_taken_over(gateway: Gateway, tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "sent")
    outbox_id = _queue(gateway, status=OutboxStatus.SENDING, attempts=1,
                       updated_at=utcnow() - delivery.STALE_SENDING - timedelta(seconds=1))
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "sent"
    assert len(_files(tmp_path / "sent", "new")) == 1
    assert _row(gateway, outbox_id).attempts == 2


def test_a_row_sent_meanwhile_drops_the_staged_copy(gateway: Gateway, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers with the same row: the second finds it sent once it gets the lock,
    and its staged file never reaches ``new/``."""
    transport = MaildirTransport(tmp_path / "sent")
    outbox_id = _queue(gateway)
    stage = transport.stage

    def stage_while_another_sends(mail_from: str, rcpt_to: str, raw: bytes) -> Staged:
        staged = stage(mail_from, rcpt_to, raw)
        other = MaildirTransport(tmp_path / "sent")
        assert deliver_outbox_item(gateway.db, other, gateway.settings, outbox_id) == "sent"
        return staged

    monkeypatch.setattr(transport, "stage", stage_while_another_sends)
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "skipped"
    assert len(_files(tmp_path / "sent", "new")) == 1
    assert _files(tmp_path / "sent", "tmp") == []
    assert _row(gateway, outbox_id).attempts == 1


def test_a_failed_link_leaves_the_row_to_the_general_path(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The link into ``new/`` fails: the transaction rolls back and the general path
    records the temporary failure (one attempt, pending, a retry time) as before."""
    root = tmp_path / "sent"
    transport = MaildirTransport(root)
    outbox_id = _queue(gateway)

    def no_link(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    with pytest.raises(TemporaryFailure):
        deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id)
    item = _row(gateway, outbox_id)
    assert item.status == OutboxStatus.PENDING and item.attempts == 1
    assert item.next_attempt_at is not None and "No space left" in item.last_error
    assert _files(root, "tmp") == [] and _files(root, "new") == []


def test_the_staged_name_is_removed_after_the_row_is_marked_sent(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the link is in the row's transaction (SQLite's writer lane); the ``tmp/`` name
    goes once it committed, and the general path's ``send`` still leaves none."""
    root = tmp_path / "sent"
    transport = MaildirTransport(root)
    outbox_id = _queue(gateway)
    seen: list[tuple[list[bytes], OutboxStatus]] = []
    real_discard = Staged.discard

    def discard(staged: Staged) -> None:
        seen.append((_files(root, "new"), _row(gateway, outbox_id).status))
        real_discard(staged)

    monkeypatch.setattr(Staged, "discard", discard)
    assert deliver_outbox_item(gateway.db, transport, gateway.settings, outbox_id) == "sent"
    [(linked, status)] = seen
    assert len(linked) == 1 and status == OutboxStatus.SENT
    assert _files(root, "tmp") == []
    transport.send("support@support.example", "max@acme.example", RAW)
    assert _files(root, "tmp") == [] and len(_files(root, "new")) == 2
