"""Policy files (TOML): tiers, champions, products, calendars, languages, emergency.

A policy is data a support manager edits; :func:`load_policy` validates it whole
(pydantic, unknown keys refused, every calendar reference checked) and raises
:class:`PolicyError` with one sentence naming the file and the key, so a typo
stops ``serve`` instead of silently changing who gets which promise.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import ConfigError
from rules.calendar import BusinessCalendar, Interval

__all__ = ["DEFAULT_POLICY", "Policy", "PolicyError", "Terms", "load_policy", "parse_duration"]

DEFAULT_POLICY = Path(__file__).parent / "policy" / "default.toml"

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ConfigError):
    """A policy file is missing, not TOML, or holds an unknown key or a bad value."""


@lru_cache(maxsize=256)
def parse_duration(value: str) -> timedelta:
    """``"4h"``, ``"90m"``, ``"1h30m"``, ``"2d"`` → timedelta (positive).

    Cached: the engine parses the policy's few targets again for every request (a
    timedelta is immutable; a bad value raises each time, nothing of it is kept)."""
    match = _DURATION.match(value)
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like 1h, 90m or 1h30m")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes)
    if result <= timedelta(0):
        raise ValueError("a target must be longer than zero")
    return result


def _clock(value: str) -> int:
    match = _CLOCK.match(value.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00-24:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _range(value: str) -> str:
    start, sep, end = value.partition("-")
    if not sep or _clock(start) >= _clock(end):
        raise ValueError(f"{value!r} is not an opening range like 09:00-17:00 (same day)")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone like Europe/Berlin") from None
    return value


def _country(value: str) -> str:
    if value:
        country, _, subdivision = value.partition("-")
        try:
            holidays_lib.country_holidays(country, subdiv=subdivision or None, years=2026)
        except NotImplementedError:
            raise ValueError(f"{value!r} is not a country (and subdivision) the holidays "
                             "package knows, like JP or DE-BE") from None
    return value


Duration = Annotated[str, AfterValidator(lambda v: parse_duration(v) and v)]
Clock = Annotated[str, AfterValidator(lambda v: _clock(v) is not None and v)]
OpenRange = Annotated[str, AfterValidator(_range)]
Zone = Annotated[str, AfterValidator(_zone)]
Country = Annotated[str, AfterValidator(_country)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class CalendarSpec(_Strict):
    timezone: Zone
    days: list[Weekday] = Field(default_factory=lambda: list[Weekday](_ALL_DAYS), min_length=1)
    hours: list[OpenRange] = Field(default_factory=lambda: ["00:00-24:00"], min_length=1)
    holidays: Country = ""
    """Country code for the ``holidays`` package (``JP``, ``DE-BE``); empty = no holidays."""


class TermsSpec(_Strict):
    target: Duration
    calendar: str


class ProductSpec(_Strict):
    name: str = ""
    standard: TermsSpec | None = None
    """This product's standard terms (default: the policy's ``[standard]``)."""
    premium_calendar: str = ""
    """Calendar premium targets count on for this product (default: the tier's own)."""
    addresses: list[str] = Field(default_factory=list)
    """Support addresses (or local parts) that name this product."""
    keywords: list[str] = Field(default_factory=list)


class LanguageSpec(_Strict):
    queue: str
    target: Duration | None = None
    calendar: str = ""
    """With ``target``: the queue's own terms, applied while this calendar is open."""
    outside_hours: str = ""
    """Language whose queue and terms apply while ``calendar`` is closed."""


class WindowSpec(_Strict):
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")
    target: Duration


class EmergencySpec(_Strict):
    timezone: Zone
    calendar: str
    windows: list[WindowSpec] = Field(min_length=1)


class CategorySpec(_Strict):
    addresses: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)


class EscalationSpec(_Strict):
    warn_at: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.75])
    """Shares of the target after which agents are warned (one mail per level)."""
    address: str = ""
    """Where warnings go (default: the directory's agents serving the ticket's language)."""


class PolicySpec(_Strict):
    description: str = ""
    default_queue: str = "en"
    standard: TermsSpec
    tiers: dict[Literal["essentials", "enhanced"], TermsSpec]
    champions: dict[Literal["grand", "epic"], TermsSpec] = Field(default_factory=dict)
    calendars: dict[str, CalendarSpec] = Field(min_length=1)
    products: dict[str, ProductSpec] = Field(default_factory=dict)
    languages: dict[str, LanguageSpec] = Field(default_factory=dict)
    emergency: EmergencySpec | None = None
    default_category: str = "technical"
    categories: dict[str, CategorySpec] = Field(default_factory=dict)
    escalation: EscalationSpec = Field(default_factory=EscalationSpec)


@dataclass(frozen=True)
class Terms:
    """A first-response target counted on a calendar."""

    target: timedelta
    calendar: BusinessCalendar


@dataclass(frozen=True)
class Policy:
    """A validated policy, with calendars built and durations parsed."""

    source: str
    spec: PolicySpec
    calendars: dict[str, BusinessCalendar]

    def terms(self, spec: TermsSpec, calendar: str = "") -> Terms:
        return Terms(parse_duration(spec.target), self.calendars[calendar or spec.calendar])

    def calendar(self, name: str) -> BusinessCalendar:
        return self.calendars[name]


def _minutes(spec: str) -> Interval:
    start, _, end = spec.partition("-")
    return _clock(start), _clock(end)


def _build_calendar(name: str, spec: CalendarSpec) -> BusinessCalendar:
    country, _, subdivision = spec.holidays.partition("-")
    return BusinessCalendar(
        name=name, timezone=spec.timezone,
        weekdays=frozenset(_WEEKDAYS.index(d) for d in spec.days),
        hours=tuple(sorted(_minutes(h) for h in spec.hours)),
        holiday_country=country, holiday_subdivision=subdivision)


def _references(spec: PolicySpec) -> list[tuple[str, str]]:
    """Every (key, calendar name) the policy refers to."""
    refs = [("standard.calendar", spec.standard.calendar)]
    refs += [(f"tiers.{k}.calendar", t.calendar) for k, t in spec.tiers.items()]
    refs += [(f"champions.{k}.calendar", t.calendar) for k, t in spec.champions.items()]
    for key, product in spec.products.items():
        if product.standard is not None:
            refs.append((f"products.{key}.standard.calendar", product.standard.calendar))
        if product.premium_calendar:
            refs.append((f"products.{key}.premium_calendar", product.premium_calendar))
    for key, language in spec.languages.items():
        if language.calendar:
            refs.append((f"languages.{key}.calendar", language.calendar))
    if spec.emergency is not None:
        refs.append(("emergency.calendar", spec.emergency.calendar))
    return refs


_Problem = tuple[str, str]
"""A policy mistake: the key it is at, and what is wrong."""


def _check(spec: PolicySpec) -> _Problem | None:
    """Cross-references pydantic cannot see: the first (key, problem), or None."""
    for check in (_check_calendar_names, _check_languages, _check_hours, _check_emergency):
        problem = check(spec)
        if problem is not None:
            return problem
    return None


def _check_calendar_names(spec: PolicySpec) -> _Problem | None:
    for key, name in _references(spec):
        if name not in spec.calendars:
            return key, f"unknown calendar {name!r} (known: {', '.join(sorted(spec.calendars))})"
    return None


def _check_languages(spec: PolicySpec) -> _Problem | None:
    for key, language in spec.languages.items():
        if language.target is not None and not language.calendar:
            return f"languages.{key}.calendar", "a language with its own target needs a calendar"
        if language.outside_hours and language.outside_hours not in spec.languages:
            return (f"languages.{key}.outside_hours",
                    f"unknown language {language.outside_hours!r}")
    return None


def _check_hours(spec: PolicySpec) -> _Problem | None:
    for name, calendar in spec.calendars.items():
        spans = sorted(_minutes(h) for h in calendar.hours)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:
                return f"calendars.{name}.hours", "opening ranges overlap"
    return None


def _check_emergency(spec: PolicySpec) -> _Problem | None:
    if spec.emergency is None:
        return None
    covered = [0] * 1440
    for window in spec.emergency.windows:
        a, b = _clock(window.start), _clock(window.end)
        for minute in (range(a, b) if a < b else [*range(a, 1440), *range(0, b)]):
            covered[minute] += 1
    if any(c != 1 for c in covered):
        return "emergency.windows", "the windows must cover every minute of the day once"
    return None


def _describe(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"] if p != "[key]") or "(top level)"
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    message = message.removeprefix("Value error, ")
    if error.error_count() > 1:
        message += f" (and {error.error_count() - 1} more problems)"
    return key, message


def parse_policy(data: dict[str, Any], source: str) -> Policy:
    """Validate already-parsed TOML data; ``source`` names it in errors."""
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as error:
        key, message = _describe(error)
        raise PolicyError(f"policy file {source}: key {key!r}: {message}") from None
    problem = _check(spec)
    if problem is not None:
        raise PolicyError(f"policy file {source}: key {problem[0]!r}: {problem[1]}")
    calendars = {name: _build_calendar(name, c) for name, c in spec.calendars.items()}
    return Policy(source=source, spec=spec, calendars=calendars)


def load_policy(path: Path | str | None = None) -> Policy:
    """Read and validate a policy file (default: the shipped ``rules/policy/default.toml``)."""
    path = Path(path) if path else DEFAULT_POLICY
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except IsADirectoryError:
        raise PolicyError(f"policy file {path} is a directory") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {path} is not valid TOML: {error}") from None
    return parse_policy(data, str(path))
