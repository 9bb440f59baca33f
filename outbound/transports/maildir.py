"""Deliver into a local maildir (the embedded default): one file per message, atomic.

A message is written (and fsynced) under ``tmp/``, then linked into ``new/`` under the
same unique name, so a reader never sees half a message: the protocol of the stdlib's
``mailbox.Maildir.add``, which wrote here before.  It is done here in two steps
(:meth:`MaildirTransport.stage`, then :meth:`Staged.deliver` or :meth:`Staged.discard`)
so that delivery (``outbound.delivery``) can write the file before it takes the
database's write lock and link it in while it records the row as sent, in one
transaction.  An existing empty root (made by an installer, a volume mount or an
operator's ``mkdir``) would fail every delivery with ENOENT, so the subfolders are
made here when absent.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import TemporaryFailure

__all__ = ["MaildirTransport", "Staged"]

_SUBFOLDERS = ("tmp", "new", "cur")
_SEQUENCE = itertools.count()


def _unique_name() -> str:
    """A maildir name as ``mailbox.Maildir`` makes it: time, microseconds, pid, a
    counter of this process and the host name (with ``/`` and ``:`` escaped)."""
    now = time.time()
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(_SEQUENCE)}.{host}"


@dataclass(frozen=True)
class Staged:
    """A message written and synced under ``tmp/``, not yet visible to readers."""

    tmp: Path
    new: Path

    def deliver(self) -> str:
        """Link the message into ``new/`` (atomic; never over another message), then drop
        the ``tmp/`` name."""
        try:
            return self.link()
        finally:
            self.discard()

    def link(self) -> str:
        """Link the message into ``new/`` and keep the ``tmp/`` name for :meth:`discard`.

        Why apart from :meth:`deliver`: delivery links inside the transaction that marks
        the row sent (SQLite's writer lane) and removes the ``tmp/`` name after it."""
        try:
            os.link(self.tmp, self.new)
        except OSError as error:
            raise TemporaryFailure(f"maildir {self.new.parent.parent}: {error}") from error
        return f"stored in maildir as {self.new.name}"

    def discard(self) -> None:
        """Drop the ``tmp/`` file (after delivering it, or when it is not to be sent)."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.tmp)


class MaildirTransport:
    def __init__(self, path: Path) -> None:
        self.path = path

    def stage(self, mail_from: str, rcpt_to: str, raw: bytes) -> Staged:
        """Write the message with its envelope lines under ``tmp/`` and fsync it."""
        envelope = f"Return-Path: <{mail_from}>\nDelivered-To: {rcpt_to}\n".encode()
        name = _unique_name()
        tmp = self.path / "tmp" / name
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileNotFoundError:  # a missing root or subfolder: make them, once
                for sub in _SUBFOLDERS:  # Maildir's mode
                    (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with open(fd, "wb", closefd=True) as file:
                    file.write(envelope + raw)
                    file.flush()
                    os.fsync(file.fileno())
            except BaseException:
                os.remove(tmp)
                raise
        except OSError as error:
            raise TemporaryFailure(f"maildir {self.path}: {error}") from error
        return Staged(tmp, self.path / "new" / name)

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> str:
        return self.stage(mail_from, rcpt_to, raw).deliver()
