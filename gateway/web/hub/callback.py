"""``GET /hub/callback``: the call-back form (topic, phone number, day, hours, time zone) and
the visitor's open booking; ``POST /hub/callback`` (CSRF checked by the site) books through
:func:`gateway.callbacks.book_callback`, which tells the agents by mail.  A refusal shows
the form again with the reason in the visitor's words (400; 409 for a second booking)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gateway.callbacks import (
    DAYS_AHEAD,
    TOPIC_MAX,
    CallbackRefused,
    Refusal,
    Window,
    book_callback,
    local_window,
    open_callback,
)
from gateway.hub.visitor import HubVisitor
from gateway.web.hub.site import HubRequest, HubSite

__all__ = ["ZONES", "routes"]

#: The time zones the form offers, and the one it proposes for each language.
ZONES = ("Europe/London", "Europe/Berlin", "Europe/Rome", "Europe/Amsterdam", "Asia/Tokyo",
         "America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")
_PROPOSED = {"de": "Europe/Berlin", "it": "Europe/Rome", "nl": "Europe/Amsterdam",
             "ja": "Asia/Tokyo", "en": "Europe/London"}
_FIELDS = ("topic", "phone", "day", "start", "end", "timezone")


def routes(site: HubSite) -> list[Route]:
    pages = CallbackPages(site)
    # Live support (a phone call) is a benefit of team admins: members email support and
    # have no live support (MISSION §1), so only admins may book (checked on the server).
    return [Route("/hub/callback", site.endpoint(pages.form, admin=True), methods=["GET"]),
            Route("/hub/callback", site.endpoint(pages.book, admin=True), methods=["POST"])]


def _window(values: dict[str, str]) -> Window | None:
    """The window the form describes; None when a field is missing or unreadable."""
    try:
        return Window(date.fromisoformat(values["day"]), int(values["start"]),
                      int(values["end"]), values["timezone"])
    except ValueError:
        return None


class CallbackPages:
    def __init__(self, site: HubSite) -> None:
        self._site = site

    def _defaults(self, visitor: HubVisitor) -> dict[str, str]:
        tomorrow = self._site.services.now().date() + timedelta(days=1)
        while tomorrow.weekday() >= 5:
            tomorrow += timedelta(days=1)
        return {"topic": "", "phone": "", "day": tomorrow.isoformat(), "start": "9",
                "end": "11", "timezone": _PROPOSED.get(visitor.language, "UTC")}

    def form(self, request: HubRequest, *, problem: str = "", status: int = 200,
             values: dict[str, str] | None = None, notice: str = "") -> Response:
        site, visitor = self._site, request.visitor
        with site.db.reading() as session:
            booking = open_callback(session, visitor.email)
            booked = None if booking is None else {
                "id": booking.id, "window": local_window(booking), "phone": booking.phone,
                "topic": booking.topic}
        today = site.services.now().date()
        context: dict[str, Any] = {
            "booked": booked, "problem": problem, "action": site.url("/callback"),
            "values": {**self._defaults(visitor), **(values or {})},
            "zones": ZONES, "hours": range(25), "topic_max": TOPIC_MAX,
            "first_day": today.isoformat(),
            "last_day": (today + timedelta(days=DAYS_AHEAD)).isoformat()}
        return site.render(visitor, "callback", context, status=status, nav="callback",
                           notice=notice or site.notice_of(request))

    def book(self, request: HubRequest) -> Response:
        site = self._site
        values = {k: request.form.get(k, "").strip() for k in _FIELDS}
        window = _window(values)
        if window is None:
            return self.form(request, problem="callback_refused_hours", status=400,
                             values=values)
        try:
            with site.db.transaction() as session:
                _, outbox_ids = book_callback(session, site.services, email=request.visitor.email,
                                              topic=values["topic"], phone=values["phone"],
                                              window=window)
        except CallbackRefused as refused:
            status = 409 if refused.reason is Refusal.ALREADY_BOOKED else 400
            return self.form(request, problem=f"callback_refused_{refused.reason.value}",
                             status=status, values=values)
        for outbox_id in outbox_ids:
            site.gateway.enqueue_delivery(outbox_id)
        return site.redirect("/callback", notice="callback_booked")
