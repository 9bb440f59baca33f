"""The hub's navigation: one row per page, in menu order.  A page that only admins may
open is shown to admins only (the route checks again on the server).  Labels are the
catalog's ``nav_<key>``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NAV", "NavEntry"]


@dataclass(frozen=True)
class NavEntry:
    key: str
    path: str
    """Below ``/hub``."""
    admin_only: bool = False


NAV: tuple[NavEntry, ...] = (
    NavEntry("tickets", "/tickets"),
    NavEntry("team", "/tickets?scope=team", admin_only=True),
    NavEntry("new", "/new"),
    NavEntry("insights", "/insights", admin_only=True),
    NavEntry("recommendations", "/recommendations"),
    NavEntry("announcements", "/announcements"),
    NavEntry("callback", "/callback", admin_only=True),
)
