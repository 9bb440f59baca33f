"""``GET /hub/new``: the new-request form (product only when the team has several,
category, subject, text, files); ``POST /hub/new``: spooled as the visitor's mail and
processed like mail (:mod:`gateway.hub.submit`), so it gets the same acknowledgement; then
303 to the visitor's tickets with a notice (the number shows once processed)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from gateway.hub.submit import (
    SUBJECT_LIMIT,
    TEXT_LIMIT,
    Attachment,
    RequestForm,
    categories,
    clean_subject,
    submit_request,
    team_products,
)
from gateway.web.hub.site import HubRequest, HubSite

__all__ = ["routes"]


def routes(site: HubSite) -> list[Route]:
    pages = NewRequestPages(site)
    return [Route("/hub/new", site.endpoint(pages.form), methods=["GET"]),
            Route("/hub/new", site.endpoint(pages.send, files=True), methods=["POST"])]


class NewRequestPages:
    def __init__(self, site: HubSite) -> None:
        self._site = site

    def _choices(self, request: HubRequest) -> tuple[list[tuple[str, str]], list[str]]:
        site = self._site
        with site.db.reading() as session:
            products = team_products(session, request.visitor.team_id)
        return (products if len(products) > 1 else []), categories(site.settings)

    def form(self, request: HubRequest, *, problem: str = "", status: int = 200,
             values: dict[str, str] | None = None) -> Response:
        site = self._site
        products, kinds = self._choices(request)
        context: dict[str, Any] = {
            "products": products, "categories": kinds, "problem": problem,
            "values": {"subject": "", "text": "", "product": "", "category": kinds[0],
                       **(values or {})},
            "action": site.url("/new"), "subject_limit": SUBJECT_LIMIT,
            "text_limit": TEXT_LIMIT,
            "attachment_limit_mb": max(1, site.settings.hub_attachment_limit // 1_000_000)}
        return site.render(request.visitor, "new_request", context, status=status, nav="new")

    def send(self, request: HubRequest) -> Response:
        site = self._site
        products, kinds = self._choices(request)
        values = {k: request.form.get(k, "") for k in ("subject", "text", "product",
                                                       "category")}
        problem = self._problem(values, products, kinds)
        if problem:
            return self.form(request, problem=problem, status=400, values=values)
        stored = submit_request(site.db, site.settings, request.visitor, RequestForm(
            subject=clean_subject(values["subject"]), text=values["text"].strip(),
            category=values["category"], product=values["product"] or None,
            attachments=[Attachment(f.filename, f.content_type, f.data)
                         for f in request.files]))
        site.gateway.enqueue_processing(stored.spool_id)
        return site.redirect("/tickets", notice="request_received")

    @staticmethod
    def _problem(values: dict[str, str], products: list[tuple[str, str]],
                 kinds: list[str]) -> str:
        """The catalog key of what is wrong with the form ("" when nothing)."""
        if not clean_subject(values["subject"]) or not values["text"].strip():
            return "problem_missing"
        if products and values["product"] not in {pid for pid, _ in products}:
            return "problem_product"
        if not products and values["product"]:
            values["product"] = ""
        if values["category"] not in kinds:
            return "problem_category"
        return ""
