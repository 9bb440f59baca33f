"""``gateway queue`` and ``gateway insights``: the work in order, and a team's picture.

The queue has **no priorities**: open tickets in the order they arrived
(``created_at``, then number).  Nothing a customer adds later (details, reminders)
changes a ticket's place; tiers change how soon a ticket is *due*, shown beside it.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from gateway.cli.common import open_gateway, print_json
from gateway.insights import TeamInsights, team_insights
from gateway.models import Team, Ticket, TicketStatus, utcnow
from gateway.views import iso

__all__ = ["insights", "queue"]

_DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)


@click.command()
@click.option("--queue", "queue_name", default=None, help="Only this queue (en, ja, …).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def queue(ctx: click.Context, queue_name: str | None, as_json: bool) -> None:
    """Open tickets, oldest first (no priorities; later details do not move a ticket)."""
    gateway = open_gateway(ctx)
    now = utcnow()
    with gateway.db.reading() as session:
        query = select(Ticket).where(Ticket.status.not_in(_DONE)).order_by(
            Ticket.created_at, Ticket.number)
        if queue_name:
            query = query.where(Ticket.queue == queue_name)
        rows = [{
            "position": position, "number": t.number, "subject": t.subject,
            "requester": t.requester, "team": t.team_id, "queue": t.queue, "tier": t.tier,
            "status": t.status.value, "product": t.product, "created_at": iso(t.created_at),
            "first_response_due": iso(t.first_response_due),
            "first_response_at": iso(t.first_response_at),
            "overdue": bool(t.first_response_due and t.first_response_at is None
                            and t.first_response_due <= now),
        } for position, t in enumerate(session.scalars(query), start=1)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("the queue is empty")
    for row in rows:
        due = row["first_response_due"] or "-"
        flag = " OVERDUE" if row["overdue"] else ""
        click.echo(f"{row['position']:>4}. #{row['number']:<6} {row['queue']:<3} "
                   f"{row['created_at']}  due {due:<20} {row['tier']:<14} {row['requester']:<30} "
                   f"{row['subject']}{flag}")


@click.command()
@click.option("--team", "team_id", required=True, help="Team id from the directory.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def insights(ctx: click.Context, team_id: str, as_json: bool) -> None:
    """A team's tickets: open, total, most frequent issue types and categories, per product
    and type, the satisfaction rate (good answers of those rated) and the median time to
    first response (``gateway/insights.py``, as on the hub's insights page).

    A duplicate (a repeated request, stored closed with ``duplicate_of``) is not a request
    of its own: it counts in ``duplicates`` only, never in the totals or issue types.
    """
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        if session.get(Team, team_id) is None:
            raise click.ClickException(f"there is no team {team_id!r} in the directory")
        found = team_insights(session, team_id)
    view = _insights_view(found)
    if as_json:
        print_json(view)
        return
    click.echo(f"team {team_id}: {view['open_tickets']} open, {view['total_submitted']} "
               f"submitted in all, not counting {view['duplicates']} duplicates")
    click.echo("tickets per product: " + (", ".join(
        f"{p} {n}" for p, n in view["tickets_per_product"].items()) or "-"))
    click.echo("most frequent issue types: " + (", ".join(
        f"{i['issue_type']} ({i['tickets']})" for i in view["top_issue_types"][:5]) or "-"))
    for product, counts in view["per_product"].items():
        click.echo(f"  {product}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    click.echo(_satisfaction_line(view["satisfaction"]))
    click.echo("median time to first response: "
               + _duration(view["median_first_response_seconds"]))


def _insights_view(found: TeamInsights) -> dict[str, Any]:
    """The stable JSON of ``gateway insights --json`` (fields may be added, never renamed)."""
    return {
        "team": found.team,
        "open_tickets": found.open_tickets,
        "total_submitted": found.total_submitted,
        "duplicates": found.duplicates,
        "tickets_per_product": {c.key: c.tickets for c in found.tickets_per_product},
        "top_issue_types": [{"issue_type": c.key, "tickets": c.tickets}
                            for c in found.top_issue_types],
        "categories": {c.key: c.tickets for c in found.categories},
        "per_product": {product: {c.key: c.tickets for c in counts}
                        for product, counts in found.per_product.items()},
        "satisfaction": {"good": found.satisfaction.good, "rated": found.satisfaction.rated,
                         "rate": found.satisfaction.rate},
        "median_first_response_seconds": found.median_first_response_seconds,
    }


def _satisfaction_line(satisfaction: dict[str, Any]) -> str:
    if not satisfaction["rated"]:
        return "satisfaction: no ticket rated yet"
    return (f"satisfaction: {satisfaction['rate']:.0%} good ({satisfaction['good']} of "
            f"{satisfaction['rated']} rated)")


def _duration(seconds: float | None) -> str:
    """``2 d 3 h 5 min``, ``40 min``; ``-`` for none."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes or not (days or hours) else ""]
    return " ".join(p for p in parts if p)
