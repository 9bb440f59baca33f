"""``gateway outbox``: the mail we send, with its attempts and last error (DESIGN 4)."""

from __future__ import annotations

import click
from sqlalchemy import select

from gateway.cli.common import open_gateway, print_json
from gateway.models import OutboxItem
from gateway.views import outbox_view

__all__ = ["outbox"]


@click.group()
def outbox() -> None:
    """Mail we send: status, attempts, last error."""


@outbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", default=None, help="Only rows with this status.")
@click.pass_context
def outbox_list(ctx: click.Context, as_json: bool, status: str | None) -> None:
    """List outbox rows, newest first."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        query = select(OutboxItem).order_by(OutboxItem.id.desc())
        if status:
            query = query.where(OutboxItem.status == status)
        views = [outbox_view(item) for item in session.scalars(query)]
    if as_json:
        print_json(views)
        return
    for view in views:
        click.echo(f"{view['id']:<6} {view['status']:<8} {view['kind']:<16} {view['to']:<32} "
                   f"{view['attempts']} {view['last_error']}")
