"""The entitlement engine: one pure function from a request and a policy to a promise.

:func:`decide` takes plain values (who wrote, their team's add-ons, the product, the
language, the time) so that tests, ``gateway rules explain`` and the pipeline ask the
same question and get the same answer, with every rule that applied as a line of the
explanation.  The order of decisions is described at the top of
``rules/policy/default.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
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
    outside_hours_of: str = ""
    """The requested language when its hours could not serve the request (then ``language``
    is the one that answers, and the acknowledgement in the requester's language says so)."""

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
            "within_target": self.within, "outside_hours_of": self.outside_hours_of or None,
            "explanation": list(self.explanation),
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


@lru_cache(maxsize=64)
def describe_calendar(calendar: BusinessCalendar) -> str:
    """The calendar in words; cached, as every request describes the same few calendars
    (equal calendars, compared on every field the text uses, read the same)."""
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
    return _local_in(at, calendar.timezone)


def _local_in(at: datetime, timezone: str) -> str:
    local = at.astimezone(ZoneInfo(timezone))
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
    standard_terms = policy.terms(standard)
    found = [_candidate("standard", "standard", standard_terms, at,
                        f"standard support{f' for {request.product}' if request.product else ''}"
                        f": {_terms_text(standard_terms)}")]
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


@dataclass(frozen=True)
class _Route:
    """Where a request's language sends it: the queue, the answer's language and the due."""

    tier: str
    terms: Terms
    due: datetime
    queue: str = ""
    language: str = ""
    shown_in: str = ""
    outside_hours_of: str = ""


def _route_language(requested: str, policy: Policy, at: datetime, best: _Route,
                    lines: list[str]) -> _Route:
    """Decide queue, answer language and due time together, so they can never disagree.

    A language with its own hours (Japanese: 1 h of Mon-Fri 09:00-17:00 JST) keeps a
    request only when its queue can answer it inside those hours: the calendar is open
    on arrival and stays open for the queue's whole target (arrival at 16:00 JST at the
    latest).  Then the due time is the earlier of the queue's and the entitlement's, and
    it lies inside those hours.  Otherwise the request is served by ``outside_hours``
    (English) with the entitlement's own due time: a premium "1 hour, 24/7" is still kept,
    where a Japanese queue would have to wait for Monday morning or miss it.
    """
    spec = policy.spec
    language = requested
    route = spec.languages.get(language)
    if route is None:
        lines.append(f"language {language} is not a support language: served in "
                     f"{spec.default_queue}")
        language, route = spec.default_queue, spec.languages.get(spec.default_queue)
    queue = route.queue if route else spec.default_queue
    if route is None or route.target is None:
        lines.append(f"language {language}: {queue} queue")
        return replace(best, queue=queue, language=language)
    calendar = policy.calendar(route.calendar)
    target = parse_duration(route.target)
    hours = f"{route.calendar} hours ({describe_calendar(calendar)}) at {_local(at, calendar)}"
    if calendar.is_open(at) and calendar.add(at, target) == at + target:
        lines.append(f"{language} request inside {hours}: {queue} queue, "
                     f"{describe_duration(target)} of those hours")
        route_due = at + target
        if route_due < best.due:
            lines.append(f"the {language} queue's target is due earlier than {best.tier}: "
                         "the queue's target applies")
            return replace(best, terms=Terms(target, calendar), due=route_due, queue=queue,
                           language=language, shown_in=calendar.timezone)
        lines.append(f"{best.tier} is due no later than the {language} queue's target: "
                     f"{best.tier} applies")
        return replace(best, queue=queue, language=language, shown_in=calendar.timezone)
    served = route.outside_hours or spec.default_queue
    other = spec.languages.get(served)
    served_queue = other.queue if other else spec.default_queue
    if calendar.is_open(at):
        lines.append(f"{language} request at {_local(at, calendar)}: {route.calendar} hours "
                     f"({describe_calendar(calendar)}) close before the {queue} queue's "
                     f"{describe_duration(target)} could pass, and it answers only inside "
                     f"them: served as outside {route.calendar} hours")
    else:
        lines.append(f"{language} request outside {hours}")
    lines.append(f"served in {served} from the {served_queue} queue with its target (the "
                 f"acknowledgement, in {language}, says so)")
    return replace(best, queue=served_queue, language=served, shown_in=calendar.timezone,
                   outside_hours_of=language)


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

    route = _route_language(request.language, policy, at, _Route(tier, terms, due), lines)
    terms, due = route.terms, route.due
    shown_in = route.shown_in or terms.calendar.timezone
    lines.append(f"first response due {_local_in(due, shown_in)} "
                 f"({describe_duration(terms.target)} {describe_calendar(terms.calendar)}), "
                 f"answered in {route.language} from the {route.queue} queue")
    return Entitlement(tier=tier, target=terms.target, calendar=terms.calendar.name,
                       timezone=shown_in, queue=route.queue,
                       language=route.language, product=request.product, received_at=at,
                       due=due, explanation=tuple(lines),
                       outside_hours_of=route.outside_hours_of)
