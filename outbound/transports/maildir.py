"""Deliver into a local maildir (the embedded default): one file per message, atomic.

Uses the stdlib ``mailbox.Maildir``, which writes to ``tmp/`` and renames into
``new/``, so a reader never sees half a message.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from gateway.errors import TemporaryFailure

__all__ = ["MaildirTransport"]


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> str:
        envelope = f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt_to}\n".encode()
        try:
            box = mailbox.Maildir(self.path, create=True)
            key = box.add(envelope + raw)
        except OSError as error:
            raise TemporaryFailure(f"maildir {self.path}: {error}") from error
        return f"stored in maildir as {key}"
