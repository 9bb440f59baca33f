"""Business calendars: open hours per weekday in one time zone, minus public holidays.

A first-response target on a calendar that is not 24/7 counts only its open hours
(Friday 16:30 JST + 1 h on Mon-Fri 09:00-17:00 Asia/Tokyo is Monday 09:30 JST).
Open intervals are built from local wall-clock times and then compared as absolute
(UTC) instants, so a DST change shortens or lengthens an open day by the real hour
it gains or loses, and "10 hours" is always ten real hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays as holidays_lib

__all__ = ["MAX_DAYS", "BusinessCalendar", "Interval"]

MAX_DAYS = 3700
"""How far ahead (days) arithmetic looks for open hours before giving up (about ten years)."""

Interval = tuple[int, int]
"""Open from and until, in minutes after local midnight (0 ≤ start < end ≤ 1440)."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Open hours ``hours`` on ``weekdays`` (0 = Monday) in ``timezone``; closed on holidays."""

    name: str
    timezone: str
    weekdays: frozenset[int] = frozenset(range(7))
    hours: tuple[Interval, ...] = ((0, 1440),)
    holiday_country: str = ""
    holiday_subdivision: str = ""
    _holiday_cache: dict[int, frozenset[date]] = field(default_factory=dict, compare=False,
                                                       repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always_open(self) -> bool:
        return (self.weekdays == frozenset(range(7)) and self.hours == ((0, 1440),)
                and not self.holiday_country)

    def holiday_dates(self, year: int) -> frozenset[date]:
        """Public holidays of ``year`` (empty unless the calendar names a country)."""
        if not self.holiday_country:
            return frozenset()
        if year not in self._holiday_cache:
            found = holidays_lib.country_holidays(
                self.holiday_country, subdiv=self.holiday_subdivision or None, years=year)
            self._holiday_cache[year] = frozenset(found.keys())
        return self._holiday_cache[year]

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holiday_dates(day.year)

    def _instant(self, day: date, minutes: int) -> datetime:
        local = datetime.combine(day, time(0), tzinfo=self.zone) if minutes == 0 else (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
            if minutes == 1440 else
            datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone))
        return local.astimezone(UTC)

    def intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals (UTC, half-open) that end after ``start``, in order."""
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_DAYS):
            if self.is_business_day(day):
                for begin, end in self.hours:
                    a, b = self._instant(day, begin), self._instant(day, end)
                    if b > a and b > start:
                        yield a, b
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no open hours within {MAX_DAYS} days")

    def is_open(self, at: datetime) -> bool:
        for a, b in self.intervals(at):
            return a <= at < b
        return False  # pragma: no cover - intervals() raises instead

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of open time has passed since ``start``.

        A zero duration gives the next open instant; a duration that ends exactly
        at closing time gives the closing time, not the next opening.
        """
        if start.tzinfo is None:
            raise ValueError("naive datetime given to a business calendar")
        start = start.astimezone(UTC)
        if self.always_open:
            return start + duration
        remaining = duration
        for a, b in self.intervals(start):
            begin = max(a, start)
            if remaining <= b - begin:
                return begin + remaining
            remaining -= b - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def open_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much open time lies between two instants (zero if ``end`` ≤ ``start``)."""
        total = timedelta(0)
        if end <= start:
            return total
        for a, b in self.intervals(start):
            if a >= end:
                break
            total += min(b, end) - max(a, start)
        return total
