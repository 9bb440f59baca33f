"""The scheduled jobs of bulk mail: the quarterly feature mail and resuming announcements.

Both are rows of the job table (:mod:`gateway.runtime.jobs`) and take what they use as
arguments.  The quarterly job runs daily during the first week of each quarter: running
it again is harmless (one mail per admin, team and quarter), and a node that was down on
the first day catches up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.bulk.announcements import resume_unfinished
from gateway.bulk.quarterly import current_quarter, run_quarterly
from gateway.db import Database
from gateway.job_items import JobItems
from gateway.services import Services

__all__ = ["quarterly_feature_mail", "resume_announcements"]


def quarterly_feature_mail(database: Database, services: Services,
                           deliver: Callable[[list[int]], None], now: datetime) -> None:
    """Mail the quarter ``now`` falls in (what was sent already is skipped; an admin whose
    mail failed is named after the others were sent, and tried again by the next run)."""
    report = run_quarterly(database, services, deliver, current_quarter(now.date()),
                           today=now.date())
    report.items.check()


def resume_announcements(database: Database, services: Services,
                         deliver: Callable[[list[int]], None], now: datetime) -> None:
    """Continue announcements whose sender died; the clock does not matter here."""
    del now
    items = JobItems("announcements")
    resume_unfinished(database, services, deliver, items)
    items.check()
