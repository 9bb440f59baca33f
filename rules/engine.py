"""The entitlement engine: one pure function from a request and a policy to a promise.

:func:`decide` takes plain values (who wrote, their team's add-ons, the product, the
language, the time) so that tests, ``gateway rules explain`` and the pipeline ask the
same question and get the same answer, with every rule that applied as a line of the
explanation.  The order of decisions is described at the top of
``rules/policy/default.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rules.calendar import BusinessCalendar
from rules.policy import Policy, Terms, parse_duration

__all__ = ["Addon", "Entitlement", "Request", "decide", "describe_duration", "describe_calendar"]

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_RANK = {"addon": 0, "champion": 1, "emergency": 2, "standard": 3}


@dataclass(frozen=True)
class Addon:
    """A team's premium add-on for one product, valid from ``starts`` until before ``ends``."""

    product: str
    tier: str
    starts: date | None = None
    ends: date | None = None

    def valid_on(self, day: date) -> bool:
        return ((self.starts is None or self.starts <= day)
                and (self.ends is None or day < self.ends))


@dataclass(frozen=True)
class Request:
    """What the engine needs to know about one new request, as plain values."""

    at: datetime
    sender: str = ""
    kind: str = "unknown"
    """person | agent | unknown (not in the directory)."""
    role: str = "member"
    champion: str = "none"
    team: str | None = None
    addons: tuple[Addon, ...] = ()
    product: str | None = None
    language: str = "en"
    emergency: bool = False
    """True when the mail was sent to the configured emergency address."""


@dataclass(frozen=True)
class Entitlement:
    tier: str
    target: timedelta
    calendar: str
    timezone: str
    """The zone due times are shown in: the language route's while it serves the request."""
    queue: str
    language: str
    product: str | None
    received_at: datetime
    due: datetime
    explanation: tuple[str, ...]

    @property
    def within(self) -> bool:
        """True when the calendar is open all along: the promise is "within <target>"."""
        return self.due == self.received_at + self.target

    @property
    def text(self) -> str:
        return "; ".join(self.explanation)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier, "target": describe_duration(self.target),
            "target_minutes": int(self.target.total_seconds() // 60),
            "calendar": self.calendar, "timezone": self.timezone, "queue": self.queue,
            "language": self.language, "product": self.product,
            "received_at": _iso(self.received_at), "first_response_due": _iso(self.due),
            "within_target": self.within, "explanation": list(self.explanation),
        }


@dataclass(frozen=True)
class _Candidate:
    kind: str
    tier: str
    terms: Terms
    due: datetime
    reason: str


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{minutes} min" if minutes
                                else "") if p) or "0 min"


def describe_calendar(calendar: BusinessCalendar) -> str:
    if calendar.always_open:
        return "around the clock"
    days = sorted(calendar.weekdays)
    if days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
        day_text = f"{_WEEKDAY_NAMES[days[0]]}-{_WEEKDAY_NAMES[days[-1]]}"
    else:
        day_text = ",".join(_WEEKDAY_NAMES[d] for d in days)
    if len(days) == 7:
        day_text = "every day"
    hours = ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"
                      for a, b in calendar.hours)
    holidays = f", closed on {calendar.holiday_country} holidays" if calendar.holiday_country \
        else ""
    return f"{day_text} {hours} {calendar.timezone}{holidays}"


def _terms_text(terms: Terms) -> str:
    return f"{describe_duration(terms.target)} ({describe_calendar(terms.calendar)})"


def _local(at: datetime, calendar: BusinessCalendar) -> str:
    local = at.astimezone(calendar.zone)
    return f"{_WEEKDAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def _candidate(kind: str, tier: str, terms: Terms, at: datetime, reason: str) -> _Candidate:
    return _Candidate(kind, tier, terms, terms.calendar.add(at, terms.target), reason)


def _who(request: Request, lines: list[str]) -> None:
    if request.kind == "agent":
        lines.append(f"{request.sender} is a support agent: standard terms")
    elif request.kind != "person":
        lines.append(f"{request.sender or 'the sender'} is not in the directory: "
                     "standard support")
    elif request.team is None:
        lines.append(f"{request.sender} belongs to no team: no team plan")
    else:
        lines.append(f"{request.sender} is a team {request.role} of {request.team} "
                     f"({'admins' if request.role == 'admin' else 'members'} get the "
                     "team's plan)")


def _candidates(request: Request, policy: Policy, at: datetime,
                lines: list[str]) -> list[_Candidate]:
    spec = policy.spec
    product_spec = spec.products.get(request.product or "")
    standard = product_spec.standard if product_spec and product_spec.standard else spec.standard
    found = [_candidate("standard", "standard", policy.terms(standard), at,
                        f"standard support{f' for {request.product}' if request.product else ''}"
                        f": {_terms_text(policy.terms(standard))}")]
    if request.kind != "person":
        return found
    day = at.date()
    for addon in request.addons if request.team else ():
        if addon.tier not in spec.tiers:
            lines.append(f"add-on tier {addon.tier!r} is not in the policy: ignored")
            continue
        if request.product is None:
            lines.append(f"team {request.team} has the {addon.tier} add-on for {addon.product}, "
                         "but the request names no product")
        elif addon.product != request.product:
            lines.append(f"team {request.team}'s {addon.tier} add-on covers {addon.product}, "
                         f"not {request.product}")
        elif not addon.valid_on(day):
            window = f"{addon.starts or '…'} to {addon.ends or '…'}"
            lines.append(f"team {request.team}'s {addon.tier} add-on for {addon.product} is "
                         f"not valid on {day.isoformat()} (valid {window})")
        else:
            premium = product_spec.premium_calendar if product_spec else ""
            terms = policy.terms(spec.tiers[addon.tier], premium)
            where = f", counted in {premium} hours" if premium else ""
            found.append(_candidate(
                "addon", addon.tier, terms, at,
                f"team {request.team} has the {addon.tier} add-on for {addon.product} "
                f"(valid on {day.isoformat()}): {_terms_text(terms)}{where}"))
    if request.champion in spec.champions:
        terms = policy.terms(spec.champions[request.champion])
        found.append(_candidate(
            "champion", f"champion-{request.champion}", terms, at,
            f"{request.sender} is a {request.champion} champion (for them alone, never their "
            f"team): {_terms_text(terms)}"))
    return found


def _emergency(request: Request, policy: Policy, at: datetime) -> _Candidate | None:
    spec = policy.spec.emergency
    if not request.emergency or spec is None:
        return None
    calendar = policy.calendar(spec.calendar)
    local = at.astimezone(ZoneInfo(spec.timezone))
    minute = local.hour * 60 + local.minute
    for window in spec.windows:
        a, b = (int(x[:2]) * 60 + int(x[3:]) for x in (window.start, window.end))
        if (a <= minute < b) if a < b else (minute >= a or minute < b):
            terms = Terms(parse_duration(window.target), calendar)
            return _candidate(
                "emergency", "emergency", terms, at,
                f"sent to the emergency address at {local:%H:%M} {spec.timezone}: window "
                f"{window.start}-{window.end} → {_terms_text(terms)}")
    return None  # pragma: no cover - the policy check makes the windows cover the day


def decide(request: Request, policy: Policy) -> Entitlement:
    """The entitlement of one new request: tier, target, calendar, queue, language, due."""
    if request.at.tzinfo is None:
        raise ValueError("the request time must be timezone-aware")
    at = request.at.astimezone(UTC)
    lines: list[str] = []
    _who(request, lines)
    candidates = _candidates(request, policy, at, lines)
    emergency = _emergency(request, policy, at)
    if emergency is not None:
        candidates.append(emergency)
    for candidate in candidates:
        lines.append(candidate.reason)
    best = min(candidates, key=lambda c: (c.due, _RANK[c.kind]))
    if len(candidates) > 1:
        lines.append(f"{best.tier} gives the earliest due time of the {len(candidates)} rules "
                     "that apply")
    tier, terms, due = best.tier, best.terms, best.due

    spec = policy.spec
    language = request.language
    route = spec.languages.get(language)
    if route is None:
        fallback = spec.default_queue
        lines.append(f"language {language} is not a support language: served in {fallback}")
        language, route = fallback, spec.languages.get(fallback)
    queue = route.queue if route else spec.default_queue
    shown_in = ""
    if route is not None and route.target is not None:
        calendar = policy.calendar(route.calendar)
        if calendar.is_open(at):
            route_terms = Terms(parse_duration(route.target), calendar)
            route_due = calendar.add(at, route_terms.target)
            shown_in = calendar.timezone
            lines.append(f"{language} request inside {route.calendar} hours "
                         f"({describe_calendar(calendar)}) at {_local(at, calendar)}: "
                         f"{queue} queue, {describe_duration(route_terms.target)} of those "
                         "hours")
            # The queue's own target may only bring the answer forward, never delay it.
            if route_due < due:
                terms, due = route_terms, route_due
                lines.append(f"the {language} queue's target is due earlier than {tier}: "
                             "the queue's target applies")
            else:
                lines.append(f"{tier} is due no later than the {language} queue's target: "
                             f"{tier} applies")
        else:
            other = spec.languages.get(route.outside_hours) if route.outside_hours else None
            fallback_queue = other.queue if other else spec.default_queue
            lines.append(f"{language} request outside {route.calendar} hours "
                         f"({describe_calendar(calendar)}) at {_local(at, calendar)}: served in "
                         f"{route.outside_hours or spec.default_queue} from the "
                         f"{fallback_queue} queue with its target")
            language = route.outside_hours or spec.default_queue
            queue = fallback_queue
    else:
        lines.append(f"language {language}: {queue} queue")
    lines.append(f"first response due {_local(due, terms.calendar)} "
                 f"({describe_duration(terms.target)} {describe_calendar(terms.calendar)})")
    return Entitlement(tier=tier, target=terms.target, calendar=terms.calendar.name,
                       timezone=shown_in or terms.calendar.timezone, queue=queue, language=language,
                       product=request.product, received_at=at, due=due,
                       explanation=tuple(lines))
