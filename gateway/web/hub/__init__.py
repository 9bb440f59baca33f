"""The support hub's web pages under ``/hub`` (DESIGN §14), mounted by
:mod:`gateway.web.app` when it is given the gateway.

Each page module has ``routes(site: HubSite) -> list[Route]`` (full paths, ``/hub/…``) and
is one line of :data:`PAGE_MODULES`; what they share (visitor, CSRF, layout, headers) is
:class:`gateway.web.hub.site.HubSite`.  What the pages do without the web is
:mod:`gateway.hub`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.routing import Route

from gateway.web.hub import (
    announcements,
    callback,
    insights,
    new_request,
    recommendations,
    sign_in,
    ticket,
    tickets,
)
from gateway.web.hub.site import HubSite

if TYPE_CHECKING:
    from gateway.runtime.app import Gateway

__all__ = ["PAGE_MODULES", "hub_routes"]

#: One line per group of pages.  Adding pages: a module with ``routes(site)``, a line here.
PAGE_MODULES: tuple[Callable[[HubSite], list[Route]], ...] = (
    sign_in.routes,
    tickets.routes,
    ticket.routes,
    new_request.routes,
    insights.routes,
    recommendations.routes,
    announcements.routes,
    callback.routes,
)


def hub_routes(gateway: Gateway) -> list[Route]:
    site = HubSite(gateway)
    return [route for make in PAGE_MODULES for route in make(site)]
