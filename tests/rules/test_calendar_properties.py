"""Business-time arithmetic, checked as properties over DST changes, weekends, holidays
and time zones (hypothesis), plus the worked examples of MISSION.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.calendar import BusinessCalendar

ZONES = ["Europe/Berlin", "Asia/Tokyo", "America/New_York", "Australia/Sydney", "UTC",
         "America/Sao_Paulo", "Asia/Kolkata"]
JAPANESE = BusinessCalendar("japanese", "Asia/Tokyo", frozenset(range(5)), ((540, 1020),))
JAPANESE_HOLIDAYS = BusinessCalendar("jp-holidays", "Asia/Tokyo", frozenset(range(5)),
                                     ((540, 1020),), holiday_country="JP")

instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31),
                        timezones=st.just(UTC))
durations = st.integers(min_value=0, max_value=60 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    # At least an hour open a day, so 60 h of target fit in a reasonable search.
    start = draw(st.integers(0, 23 * 60))
    end = draw(st.integers(start + 60, 24 * 60))
    hours = [(start, end)]
    if end < 24 * 60 - 1 and draw(st.booleans()):  # a second opening later the same day
        later = draw(st.integers(end + 1, 24 * 60 - 1))
        hours.append((later, draw(st.integers(later + 1, 24 * 60))))
    country = draw(st.sampled_from(["", "", "JP", "DE", "US"]))
    return BusinessCalendar("drawn", zone, frozenset(days), tuple(hours), holiday_country=country)


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, durations)
def test_due_time_holds_exactly_the_target_of_open_time(calendar: BusinessCalendar,
                                                       start: datetime,
                                                       target: timedelta) -> None:
    due = calendar.add(start, target)
    assert due >= start
    assert calendar.open_time_between(start, due) == target


@settings(max_examples=150, deadline=None)
@given(calendars(), instants, durations.filter(lambda d: d > timedelta(0)))
def test_due_time_falls_in_open_hours_on_a_business_day(calendar: BusinessCalendar,
                                                       start: datetime,
                                                       target: timedelta) -> None:
    due = calendar.add(start, target)
    just_before = due - timedelta(microseconds=1)
    assert calendar.is_open(just_before)
    local_day = just_before.astimezone(calendar.zone).date()
    assert local_day.weekday() in calendar.weekdays  # never on a weekend the calendar closes
    assert local_day not in calendar.holiday_dates(local_day.year)  # nor on a holiday


@settings(max_examples=100, deadline=None)
@given(calendars(), instants, durations, durations.filter(lambda d: d > timedelta(0)))
def test_adding_in_two_steps_equals_adding_once(calendar: BusinessCalendar, start: datetime,
                                               first: timedelta, second: timedelta) -> None:
    assert calendar.add(calendar.add(start, first), second) == calendar.add(start,
                                                                            first + second)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), instants, durations)
def test_an_always_open_calendar_is_plain_time_in_every_zone(zone: str, start: datetime,
                                                            target: timedelta) -> None:
    calendar = BusinessCalendar("always", zone)
    assert calendar.add(start, target) == start + target
    as_hours = BusinessCalendar("hours", zone, frozenset(range(7)), ((0, 720), (720, 1440)))
    assert as_hours.add(start, target) == start + target  # same calendar, not short-cut


@settings(max_examples=100, deadline=None)
@given(instants, durations)
def test_the_same_hours_in_utc_and_in_a_fixed_offset_zone_agree(start: datetime,
                                                                target: timedelta) -> None:
    # Mon-Fri 00:00-08:00 in Tokyo (UTC+9, no DST) is Sun-Thu 15:00-23:00 UTC.
    tokyo = BusinessCalendar("t", "Asia/Tokyo", frozenset(range(5)), ((0, 480),))
    utc = BusinessCalendar("u", "UTC", frozenset({6, 0, 1, 2, 3}), ((900, 1380),))
    assert tokyo.add(start, target) == utc.add(start, target)


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(1, 600).map(lambda m: timedelta(minutes=m)))
def test_holidays_only_ever_delay(start: datetime, target: timedelta) -> None:
    assert JAPANESE_HOLIDAYS.add(start, target) >= JAPANESE.add(start, target)


def test_friday_afternoon_in_japan_rolls_to_monday() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=tokyo)
    assert JAPANESE.add(friday, timedelta(hours=1)) == datetime(2026, 11, 23, 9, 30,
                                                                tzinfo=tokyo)


def test_a_japanese_holiday_is_skipped_only_when_switched_on() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # Monday 23 November 2026 is Labour Thanksgiving Day.
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=tokyo)
    assert date(2026, 11, 23) in JAPANESE_HOLIDAYS.holiday_dates(2026)
    assert JAPANESE_HOLIDAYS.add(friday, timedelta(hours=1)) == datetime(
        2026, 11, 24, 9, 30, tzinfo=tokyo)


def test_office_hours_over_the_spring_dst_change_count_real_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # Sunday 29 March 2026 02:00 → 03:00: a 24/7 Berlin day has 23 hours.
    night = BusinessCalendar("night", "Europe/Berlin", frozenset(range(7)), ((0, 360),))
    start = datetime(2026, 3, 29, 0, 0, tzinfo=berlin)
    assert night.open_time_between(start, start + timedelta(days=1)) == timedelta(hours=5)
    assert night.add(start, timedelta(hours=5)) == datetime(2026, 3, 29, 6, 0, tzinfo=berlin)
