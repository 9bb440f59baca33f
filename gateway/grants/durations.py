"""The durations a grant may be given for, and when each one ends.

Time counts from the moment of the grant (MISSION section 4), never from a login.
"Today" ends at midnight in ``Settings.grant_timezone``; "1 month" is a calendar
month (31 January + 1 month = 28/29 February).
"""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_DURATION", "DURATIONS", "grant_end"]

DURATIONS: tuple[str, ...] = ("1h", "2h", "4h", "today", "1w", "2w", "1m", "permanent")
DEFAULT_DURATION = "1h"

_FIXED = {"1h": timedelta(hours=1), "2h": timedelta(hours=2), "4h": timedelta(hours=4),
          "1w": timedelta(weeks=1), "2w": timedelta(weeks=2)}


def _add_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def grant_end(duration: str, granted_at: datetime, timezone: str = "UTC") -> datetime | None:
    """When a grant of ``duration`` given at ``granted_at`` ends; None for permanent."""
    if duration not in DURATIONS:
        raise ValueError(f"unknown duration {duration!r}; expected one of {', '.join(DURATIONS)}")
    if duration == "permanent":
        return None
    if duration in _FIXED:
        return granted_at + _FIXED[duration]
    zone = ZoneInfo(timezone)
    local = granted_at.astimezone(zone)
    if duration == "today":
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
        return midnight.astimezone(granted_at.tzinfo)
    return _add_month(local).astimezone(granted_at.tzinfo)
