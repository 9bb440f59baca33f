"""``gateway ingest`` hands what it stored to the running ``serve`` (embedded mode).

Why: an MTA's pipe starts one ``ingest`` process per message. Processing the message in
that process means importing and warming the whole pipeline first, about 2 s of CPU a
message on a 2-core machine, when ``serve``'s processing children, already warm, take a
few milliseconds. So ``ingest`` stores the message (that alone makes its exit 0 safe),
writes the spool id to a FIFO in ``var/`` that ``serve`` reads, and leaves. Without a
``serve`` reading (none running, another user's, stopped meanwhile) the write fails at
once and ``ingest`` processes the message itself, as before.

Nothing is lost either way: the id is only a wake-up. A row whose id was dropped (a
``serve`` that died after reading it) is found by ``serve``'s sweep like any other row left
unprocessed. The FIFO is the process owner's only (mode 0600), and an id read from it is
only a request to process a row that is already stored; processing a row twice is refused
by the row's own state.  Both ends take only a FIFO that is the path itself (no symlink
followed) and owned by their own user, ``ingest`` only one no other user may open: a FIFO
somebody else put in ``var/`` would take the ids away from ``serve`` (the mail waiting for
the sweep) or, met by ``serve``, stop its start (``fchmod`` of another user's file).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import stat
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["HANDOFF_FIFO", "HandoffListener", "hand_to_serve"]

log = logging.getLogger(__name__)

#: The FIFO's name in ``var/``.
HANDOFF_FIFO = "processing.fifo"

#: Longest line the listener accepts: a spool id is a few digits.
_MAX_LINE = 32
#: The largest id a spool row can have (a 64-bit signed integer column): a larger number
#: read from the FIFO failed in the database at each of the job's 50 retries, a traceback
#: and a processing child's round trip each time.
_MAX_SPOOL_ID = 2**63 - 1


def _ours(status: os.stat_result) -> bool:
    """A FIFO of this process's user: the hand-off's, not one somebody else put there."""
    return stat.S_ISFIFO(status.st_mode) and status.st_uid == os.geteuid()


def hand_to_serve(var_dir: Path, spool_id: int) -> bool:
    """Tell a running ``serve`` to process stored row ``spool_id``; False if none listens.

    Never blocks: with no reader the open fails (ENXIO), with a full FIFO (a ``serve`` that
    has stopped reading) the write does (EAGAIN); the caller then processes the row itself.
    """
    try:
        descriptor = os.open(var_dir / HANDOFF_FIFO,
                             os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as error:
        log.debug("no serve to hand spool %s to (%s)", spool_id, error)
        return False
    try:
        status = os.fstat(descriptor)
        if not _ours(status) or stat.S_IMODE(status.st_mode) & 0o077:
            log.warning("%s is not a FIFO of this user's alone: ignored",
                        var_dir / HANDOFF_FIFO)
            return False
        line = f"{spool_id}\n".encode()
        return os.write(descriptor, line) == len(line)  # under PIPE_BUF: all or nothing
    except OSError as error:
        log.debug("serve did not take spool %s (%s)", spool_id, error)
        return False
    finally:
        os.close(descriptor)


class HandoffListener:
    """``serve``'s end: a thread that reads spool ids from the FIFO and passes each on."""

    def __init__(self, var_dir: Path, on_spool_id: Callable[[int], None]) -> None:
        self.path = var_dir / HANDOFF_FIFO
        self._on_spool_id = on_spool_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._descriptor: int | None = None

    def start(self) -> bool:
        """Open the FIFO (made if missing) and start reading; False if that cannot be done
        (``ingest`` then processes in its own process, as without a ``serve``)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkfifo(self.path, 0o600)
            # Read and write: the FIFO never reports end of file when an ingest closes it.
            descriptor = os.open(self.path,
                                 os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as error:  # ELOOP: a symlink in its place
            log.warning("no hand-off FIFO at %s (%s): gateway ingest will process in its "
                        "own process", self.path, error)
            return False
        if not _ours(os.fstat(descriptor)):
            os.close(descriptor)
            log.warning("%s exists and is not a FIFO of this user: gateway ingest will "
                        "process in its own process (remove it for the hand-off)", self.path)
            return False
        os.fchmod(descriptor, 0o600)
        self._descriptor = descriptor
        self._thread = threading.Thread(target=self._read, name="ingest-handoff", daemon=True)
        self._thread.start()
        log.info("gateway ingest hands stored mail over through %s", self.path)
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _read(self) -> None:
        assert self._descriptor is not None
        pending = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([self._descriptor], [], [], 0.5)
            if not readable:
                continue
            try:
                chunk = os.read(self._descriptor, 4096)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                log.exception("the hand-off FIFO failed; ingest processes by itself from now")
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > _MAX_LINE:
                pending = b""  # not an ingest's line: dropped
            for line in lines:
                self._pass_on(line)

    def _pass_on(self, line: bytes) -> None:
        text = line.strip()
        if not text.isdigit() or len(text) > _MAX_LINE or int(text) > _MAX_SPOOL_ID:
            log.warning("hand-off FIFO: ignored a line that is not a spool id")
            return
        try:
            self._on_spool_id(int(text))
        except Exception:  # noqa: BLE001 - one id must not stop the listener; the sweep has it
            log.exception("spool %s from gateway ingest could not be queued; the sweep will",
                          int(text))
