"""SMTP intake before processing, inside one process (embedded ``gateway serve``).

The in-process worker threads and the SMTP event loop share one GIL.  A busy
worker thread makes the event loop wait up to the interpreter's switch interval
(5 ms) every time it wants the GIL back, after each socket call: a burst of mail
was then taken at a tenth of the speed of a bare aiosmtpd.  So intake counts its
open mail transactions (MAIL FROM to the answer after DATA), and a worker job
waits to start while one is open or one ended in the last ``quiet`` seconds.
Counting transactions, not bytes, matters: a worker that holds the GIL also keeps
the event loop from reading, which would look like a quiet intake.  It never starves:
while intake stays busy one job at a time waits at most ``max_wait`` and then
runs, so processing keeps a minimum share and a burst is processed right after.
Transactions that stall (no transaction began or ended for a second) stop counting.
Nothing waits for anything durable here; every job is still a database row.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dramatiq import Broker, Message
from dramatiq.middleware import Middleware

__all__ = ["IntakePriority", "IntakePriorityMiddleware"]

QUIET_SECONDS = 0.005
MAX_WAIT_SECONDS = 0.2
STALLED_SECONDS = 1.0
"""Open transactions with no transaction starting or ending anywhere for this long do not
count: a client that sent MAIL FROM and went silent must not slow processing."""


class IntakePriority:
    """When intake last did something, and the wait worker jobs make because of it."""

    def __init__(self, quiet: float = QUIET_SECONDS, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._last_activity = -1.0e9
        self._open = 0  # changed by the event loop thread only
        self._lane = threading.Lock()  # during intake, one job at a time passes

    def begin(self) -> None:
        """A mail transaction started (MAIL FROM accepted)."""
        self._open += 1
        self._last_activity = time.monotonic()

    def end(self) -> None:
        """A mail transaction ended (answered after DATA, reset, or the client left)."""
        self._open = max(0, self._open - 1)
        self._last_activity = time.monotonic()

    def busy(self) -> bool:
        idle = time.monotonic() - self._last_activity
        return idle < self.quiet or (self._open > 0 and idle < STALLED_SECONDS)

    def wait_turn(self) -> None:
        """Block the calling worker thread while intake is busy, at most ``max_wait``."""
        if not self.busy():
            return
        with self._lane:
            deadline = time.monotonic() + self.max_wait
            while self.busy() and time.monotonic() < deadline:
                time.sleep(self.quiet)


class IntakePriorityMiddleware(Middleware):
    """Each job of this process's worker waits for its turn before it starts."""

    def __init__(self, priority: IntakePriority) -> None:
        self.priority = priority

    def before_process_message(self, broker: Broker, message: Message[Any]) -> None:
        self.priority.wait_turn()
