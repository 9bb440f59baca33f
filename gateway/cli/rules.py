"""``gateway rules check FILE`` and ``gateway rules explain``: the policy, from the command line.

``explain`` asks the engine the question a new ticket would ask (same directory,
same policy, same code path as the ``apply-rules`` step), so a manager can see
"what would happen if" before changing anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from gateway.active_policy import current_policy
from gateway.cli.common import open_gateway, print_json, settings_of
from gateway.decisions import decide_for
from gateway.models import Product
from rules.engine import describe_duration
from rules.policy import load_policy

__all__ = ["rules"]


@click.group()
def rules() -> None:
    """Entitlement and SLA policy: check a file, explain a decision."""


@rules.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def rules_check(file: Path) -> None:
    """Validate a policy file; exit 78 with the file and key named when it is wrong."""
    policy = load_policy(file)
    spec = policy.spec
    click.echo(f"{file}: valid policy: {len(spec.tiers)} tiers, {len(spec.champions)} champion "
               f"levels, {len(policy.calendars)} calendars, {len(spec.products)} products, "
               f"{len(spec.languages)} languages, emergency "
               f"{'windows' if spec.emergency else 'none'}")


def _when(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--at") from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-20T16:30+09:00",
                                 param_hint="--at")
    return parsed


@rules.command("explain")
@click.option("--from", "sender", required=True, help="Requester's email address.")
@click.option("--to", "to", default=None, help="Address the mail is sent to (product, "
              "category, emergency).")
@click.option("--product", default=None, help="Product id (default: from --to or the team).")
@click.option("--language", default=None, help="Request language (default: the person's).")
@click.option("--at", "at", default=None, help="Arrival time, ISO 8601 with zone (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def rules_explain(ctx: click.Context, sender: str, to: str | None, product: str | None,
                  language: str | None, at: str | None, as_json: bool) -> None:
    """What a new request would get: tier, target, calendar, queue, language, due, why."""
    settings = settings_of(ctx)
    when = _when(at)
    policy = current_policy(settings)
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        if product is not None and session.get(Product, product) is None:
            raise click.BadParameter(f"there is no product {product!r} in the directory",
                                     param_hint="--product")
        decision = decide_for(
            session, policy, email=sender, at=when, recipients=[to] if to else [],
            language=language, product=product, default_language=settings.ack_language_default,
            emergency_address=settings.emergency_address)
    found = decision.entitlement
    view = {"from": sender.strip().lower(), **found.as_dict(), "category": decision.category,
            "policy": policy.source}
    if as_json:
        print_json(view)
        return
    local = found.due.astimezone(ZoneInfo(found.timezone))
    outside = (f" (a {found.outside_hours_of} request its hours cannot serve; acknowledged in "
               f"{found.outside_hours_of})" if found.outside_hours_of else "")
    click.echo(f"tier      {found.tier}\ntarget    {describe_duration(found.target)} on calendar "
               f"{found.calendar}\nqueue     {found.queue}\nlanguage  {found.language}{outside}\n"
               f"product   {found.product or '-'}\ncategory  {decision.category}\n"
               f"due       {view['first_response_due']} ({local:%a %Y-%m-%d %H:%M} "
               f"{local.tzname()})\nwhy:")
    for line in found.explanation:
        click.echo(f"  - {line}")
