"""``gateway callbacks …``: the phone call-backs people booked on the hub, and marking one done.

Agents learn of a booking by mail (``callback_requested``); this is their list to work
from, earliest window first, and the way to free the person to book again.
"""

from __future__ import annotations

import click

from gateway.callbacks import callback_view, callbacks, mark_done
from gateway.cli.common import open_gateway, print_json

__all__ = ["callbacks_group"]


@click.group("callbacks")
def callbacks_group() -> None:
    """Phone call-backs booked on the hub: list them, mark one done."""


@callbacks_group.command("list")
@click.option("--all", "include_done", is_flag=True, help="Also the ones done.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def list_cmd(ctx: click.Context, include_done: bool, as_json: bool) -> None:
    """Open call-backs, earliest window first (with --all: done ones after them)."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        views = [callback_view(c) for c in callbacks(session, include_done=include_done)]
    if as_json:
        print_json(views)
        return
    if not views:
        click.echo("no open call-backs" if not include_done else "no call-backs")
    for v in views:
        click.echo(f"{v['id']:<5} {v['status']:<5} {v['window']}  {v['phone']:<22} "
                   f"{v['person']} ({v['team'] or '-'})  {v['topic']}")


@callbacks_group.command("done")
@click.argument("callback_id", metavar="ID", type=int)
@click.option("--by", "done_by", default="", help="Who made the call (an agent's address).")
@click.pass_context
def done_cmd(ctx: click.Context, callback_id: int, done_by: str) -> None:
    """Mark call-back ID done: the person may book another one."""
    gateway = open_gateway(ctx)
    with gateway.db.transaction() as session:  # an unknown ID: CallbackNotFound, exit 1
        changed = mark_done(session, callback_id, gateway.services.now(), done_by)
    click.echo(f"call-back {callback_id} marked done" if changed
               else f"call-back {callback_id} was done already")
