"""The scheduled jobs of bulk mail: the quarterly feature mail and resuming announcements.

The quarterly job runs daily during the first week of each quarter: running it again is
harmless (one mail per admin, team and quarter), and a node that was down on the first
day catches up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.bulk.announcements import resume_unfinished
from gateway.bulk.quarterly import current_quarter, run_quarterly
from gateway.models import utcnow
from gateway.runtime.scheduler import register

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway


def quarterly_feature_mail(gateway: Gateway) -> None:
    run_quarterly(gateway, current_quarter(utcnow().date()), inline=False)


def resume_announcements(gateway: Gateway) -> None:
    resume_unfinished(gateway)


register("quarterly-feature-mail", quarterly_feature_mail,
         cron={"month": "1,4,7,10", "day": "1-7", "hour": 7})
register("announcements-resume", resume_announcements, seconds=30)
