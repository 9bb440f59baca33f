"""Deliver into a local maildir (the embedded default): one file per message, atomic.

Uses the stdlib ``mailbox.Maildir``, which writes to ``tmp/`` and renames into
``new/``, so a reader never sees half a message.  ``Maildir(create=True)`` creates
the three subfolders only when the root itself is missing; an existing empty root (made
by an installer, a volume mount or an operator's ``mkdir``) would fail every delivery
with ENOENT, so the subfolders are made here when absent.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from gateway.errors import TemporaryFailure

__all__ = ["MaildirTransport"]

_SUBFOLDERS = ("tmp", "new", "cur")


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> str:
        envelope = f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt_to}\n".encode()
        try:
            for sub in _SUBFOLDERS:  # cheap when present; Maildir uses the same mode
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            box = mailbox.Maildir(self.path, create=True)
            key = box.add(envelope + raw)
        except OSError as error:
            raise TemporaryFailure(f"maildir {self.path}: {error}") from error
        return f"stored in maildir as {key}"
