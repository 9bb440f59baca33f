"""One scheduled run, many items: an item that raises is logged and named, the rest go on.

Why: a job loops over tickets, grants or admins, and one item whose mail cannot be made
(a template of one language an operator broke, a value no mail can carry) must not hold
up every item after it, run after run.  Each item runs in its own transaction, so its
failure rolls back that item alone; the run goes on with the next one.  It still ends
``failed`` (``jobs list``, the scheduler's log, the exit status of ``jobs run``), naming
the items, once what the others queued has been handed to delivery (:meth:`JobItems.check`).

A database that cannot be reached is no item's fault: that error ends the run at once, as
before (the next run tries again), instead of being logged once per item.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.errors import GatewayError

__all__ = ["JobItems", "JobItemsFailed"]

log = logging.getLogger(__name__)

_NAMED = 10
"""Failed items named in the run's error at most (the log has every one)."""


class JobItemsFailed(GatewayError):
    """Some items of a run failed; the others were done (the sentence names them)."""


def _database_down(error: Exception) -> bool:
    return isinstance(error, OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated)


@dataclass
class JobItems:
    """The items of one run of ``job`` that failed, each with why."""

    job: str
    failures: list[str] = field(default_factory=list)
    done: int = 0

    @contextmanager
    def item(self, label: str) -> Iterator[None]:
        """Run one item (``label`` names it: "ticket #12"); an error is kept, not raised."""
        try:
            yield
        except Exception as error:  # noqa: BLE001 - one item must not stop the others
            if _database_down(error):
                raise
            log.exception("job %s: %s failed; the run goes on with the next item",
                          self.job, label)
            self.failures.append(f"{label}: {type(error).__name__}: {error}"[:300])
        else:
            self.done += 1

    def check(self) -> None:
        """Raise :class:`JobItemsFailed` when an item failed (call after delivery)."""
        if not self.failures:
            return
        named = "; ".join(self.failures[:_NAMED])
        more = (f"; and {len(self.failures) - _NAMED} more (see the log)"
                if len(self.failures) > _NAMED else "")
        total = self.done + len(self.failures)
        raise JobItemsFailed(f"job {self.job}: {len(self.failures)} of {total} items failed "
                             f"and were left for the next run ({named}{more}); the others "
                             "were done")
