"""Phone call-backs: a directory person books one, the agents are told, an agent marks it done.

The source pages offer "a phone call-back with a topic and a time window, one booked slot per
customer" (MISSION §3; DESIGN §14).  What an agent can act on is a day and an hour range in
the person's own time zone ("Tue 2026-12-08, 14:00–16:00 Europe/Berlin"), stored as the two
UTC instants it means, so the agents' mail and ``gateway callbacks list`` say both.

Rules of a booking (each refusal is one sentence and a :class:`Refusal` code, so the hub can
word it in the person's language):

- only people of the directory book, at most one **open** booking each (a second names the
  first; a partial unique index holds it even for two requests at once);
- the phone number has 6–20 digits and only digits, spaces, ``+ - ( )``;
- the topic is not empty and at most :data:`TOPIC_MAX` characters (kept on one line: it is
  the person's text, shown in a mail body, never in a header);
- the window lies on a business day (Monday–Friday in the person's zone), starts in the
  future, at most :data:`DAYS_AHEAD` days ahead, and lasts 1 to :data:`WINDOW_MAX_HOURS`
  hours.

The agents' mail goes through the one mail path (``outbound/mail.py``) as kind
``callback_requested`` to ``agents_address``, or to every agent of the directory without it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.errors import GatewayError
from gateway.models import Agent, Callback, CallbackStatus, OutboxItem, Person
from gateway.services import Services
from gateway.views import iso
from outbound.mail import Mail, MailKind, queue_mail

__all__ = [
    "DAYS_AHEAD",
    "TOPIC_MAX",
    "WINDOW_MAX_HOURS",
    "CallbackNotFound",
    "CallbackRefused",
    "Refusal",
    "Window",
    "book_callback",
    "callback_view",
    "callbacks",
    "local_window",
    "mark_done",
    "open_callback",
    "window_text",
]

log = logging.getLogger(__name__)

TOPIC_MAX = 300
DAYS_AHEAD = 30
WINDOW_MAX_HOURS = 8
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()\-]+$")
_DIGITS_MIN, _DIGITS_MAX = 6, 20


class Refusal(StrEnum):
    """Why a booking was refused (the hub words each one in the person's language)."""

    NOT_IN_DIRECTORY = "not_in_directory"
    ALREADY_BOOKED = "already_booked"
    PHONE = "phone"
    TOPIC = "topic"
    TIMEZONE = "timezone"
    HOURS = "hours"
    PAST = "past"
    TOO_FAR = "too_far"
    WEEKEND = "weekend"


class CallbackRefused(GatewayError):
    """A booking that cannot be made; nothing was stored or sent."""

    def __init__(self, reason: Refusal, sentence: str, open_booking: int | None = None) -> None:
        super().__init__(sentence)
        self.reason = reason
        self.open_booking = open_booking


class CallbackNotFound(GatewayError):
    """No booking has this id."""


@dataclass(frozen=True)
class Window:
    """A day and an hour range (``start_hour`` to ``end_hour``, 0–24) in ``timezone``."""

    day: date
    start_hour: int
    end_hour: int
    timezone: str

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CallbackRefused(Refusal.TIMEZONE,
                                  f"{self.timezone!r} is not a known time zone "
                                  "(use a name such as Europe/Berlin)") from None

    def instants(self) -> tuple[datetime, datetime]:
        """The window's start and end as UTC instants."""
        zone = self.zone()
        midnight = datetime.combine(self.day, time(0), tzinfo=zone)
        start = (midnight + timedelta(hours=self.start_hour)).astimezone(UTC)
        end = (midnight + timedelta(hours=self.end_hour)).astimezone(UTC)
        return start, end


def _clean_phone(phone: str) -> str:
    phone = " ".join(phone.split())
    digits = sum(c.isdigit() for c in phone)
    if not _PHONE_CHARS.match(phone) or not _DIGITS_MIN <= digits <= _DIGITS_MAX:
        raise CallbackRefused(Refusal.PHONE,
                              "the phone number must have 6 to 20 digits and only digits, "
                              "spaces, +, -, ( and )")
    return phone


def _clean_topic(topic: str) -> str:
    topic = " ".join(topic.split())
    if not topic or len(topic) > TOPIC_MAX:
        raise CallbackRefused(Refusal.TOPIC,
                              f"the topic must say what the call is about, in at most "
                              f"{TOPIC_MAX} characters")
    return topic


def _check_window(window: Window, now: datetime) -> tuple[datetime, datetime]:
    if not (0 <= window.start_hour < window.end_hour <= 24
            and window.end_hour - window.start_hour <= WINDOW_MAX_HOURS):
        raise CallbackRefused(Refusal.HOURS,
                              f"the window must end after it starts and last at most "
                              f"{WINDOW_MAX_HOURS} hours")
    start, end = window.instants()
    if window.day.weekday() >= 5:
        raise CallbackRefused(Refusal.WEEKEND, "call-backs are made Monday to Friday: "
                              "choose a business day")
    if start <= now:
        raise CallbackRefused(Refusal.PAST, "the window must start in the future")
    if start > now + timedelta(days=DAYS_AHEAD):
        raise CallbackRefused(Refusal.TOO_FAR,
                              f"the window must start within the next {DAYS_AHEAD} days")
    return start, end


def open_callback(session: Session, email: str) -> Callback | None:
    """The person's open booking, if any."""
    return session.scalars(select(Callback).where(
        Callback.person_email == email.lower(),
        Callback.status == CallbackStatus.OPEN)).first()


def _already_booked(booking: Callback) -> CallbackRefused:
    return CallbackRefused(Refusal.ALREADY_BOOKED,
                           f"you already have an open call-back (#{booking.id}, "
                           f"{window_text(booking)}); one booking at a time",
                           open_booking=booking.id)


def local_window(booking: Callback) -> str:
    """``2026-12-08 14:00–16:00 Europe/Berlin``: the window as the person chose it."""
    zone = ZoneInfo(booking.timezone)
    start, end = booking.starts_at.astimezone(zone), booking.ends_at.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} {booking.timezone}"


def window_text(booking: Callback) -> str:
    """``Tue 2026-12-08 14:00–16:00 Europe/Berlin (13:00–15:00 UTC)``."""
    zone = ZoneInfo(booking.timezone)
    start, end = booking.starts_at.astimezone(zone), booking.ends_at.astimezone(zone)
    utc_start, utc_end = booking.starts_at.astimezone(UTC), booking.ends_at.astimezone(UTC)
    return (f"{start:%a %Y-%m-%d %H:%M}–{end:%H:%M} {booking.timezone} "
            f"({utc_start:%H:%M}–{utc_end:%H:%M} UTC)")


def book_callback(session: Session, services: Services, *, email: str, topic: str,
                  phone: str, window: Window) -> tuple[Callback, list[int]]:
    """Book a call-back for the directory person ``email`` and tell the agents (caller's
    transaction).  Returns the booking and the outbox ids to deliver after the commit;
    raises :class:`CallbackRefused` with one sentence otherwise."""
    person = session.get(Person, email.lower())
    if person is None:
        raise CallbackRefused(Refusal.NOT_IN_DIRECTORY,
                              "only people of the directory can book a call-back")
    existing = open_callback(session, person.email)
    if existing is not None:
        raise _already_booked(existing)
    now = services.now()
    booking = Callback(person_email=person.email, team_id=person.team_id,
                       topic=_clean_topic(topic), phone=_clean_phone(phone),
                       timezone=window.timezone, created_at=now)
    booking.starts_at, booking.ends_at = _check_window(window, now)
    try:
        with session.begin_nested():
            session.add(booking)
            session.flush()
    except IntegrityError:  # another request of the same person won the race
        winner = open_callback(session, person.email)
        if winner is None:
            raise
        raise _already_booked(winner) from None
    items = [_tell(session, services, booking, person, to) for to in _agents(session, services)]
    if not items:
        log.warning("call-back #%s booked, but no agents_address is set and the directory "
                    "has no agents: nobody was mailed", booking.id)
    return booking, [item.id for item in items]


def _agents(session: Session, services: Services) -> list[str]:
    if services.settings.agents_address:
        return [services.settings.agents_address]
    return list(session.scalars(select(Agent.email).order_by(Agent.email)))


def _tell(session: Session, services: Services, booking: Callback, person: Person,
          to_address: str) -> OutboxItem:
    return queue_mail(session, services.renderer, Mail(
        MailKind.CALLBACK_REQUESTED, to_address, {
            "callback_id": booking.id, "person_name": person.name,
            "person_email": person.email, "team_id": person.team_id or "",
            "role": person.role, "language": person.language, "phone": booking.phone,
            "topic": booking.topic, "window": window_text(booking)}),
        secret=services.secret)


def callbacks(session: Session, *, include_done: bool = False) -> list[Callback]:
    """Open bookings, earliest window first (with ``include_done``: all, done ones last)."""
    done_last = case((Callback.status == CallbackStatus.OPEN, 0), else_=1)
    query = select(Callback).order_by(done_last, Callback.starts_at, Callback.id)
    if not include_done:
        query = query.where(Callback.status == CallbackStatus.OPEN)
    return list(session.scalars(query))


def mark_done(session: Session, callback_id: int, now: datetime, by: str = "") -> bool:
    """Mark a booking done; False when it was done already.  Frees the person to book again."""
    booking = session.get(Callback, callback_id, with_for_update=True)
    if booking is None:
        raise CallbackNotFound(f"there is no call-back {callback_id}")
    if booking.status is CallbackStatus.DONE:
        return False
    booking.status, booking.done_at, booking.done_by = CallbackStatus.DONE, now, by
    session.flush()
    return True


def callback_view(booking: Callback) -> dict[str, Any]:
    """The stable JSON shape of a booking (``gateway callbacks list --json``)."""
    return {"id": booking.id, "status": booking.status.value, "person": booking.person_email,
            "team": booking.team_id, "phone": booking.phone, "topic": booking.topic,
            "starts_at": iso(booking.starts_at), "ends_at": iso(booking.ends_at),
            "timezone": booking.timezone, "window": window_text(booking),
            "created_at": iso(booking.created_at), "done_at": iso(booking.done_at),
            "done_by": booking.done_by}
