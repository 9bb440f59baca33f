"""``gateway inbox``: the raw-mail spool, each message with its state, reason and trace.

``replay`` is how an operator releases a quarantined message after fixing its cause;
in embedded mode it runs the pipeline right here, as ``ingest`` does.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from gateway.cli.common import open_gateway, print_json
from gateway.cli.inline import process_inline
from gateway.models import SpoolEntry, SpoolState
from gateway.views import spool_view

__all__ = ["inbox"]


@click.group()
def inbox() -> None:
    """Spooled messages: state, reason, replay."""


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--state", type=click.Choice([s.value for s in SpoolState]), default=None)
@click.option("--limit", type=int, default=200, show_default=True)
@click.pass_context
def inbox_list(ctx: click.Context, as_json: bool, state: str | None, limit: int) -> None:
    """List spooled messages, newest first."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        query = select(SpoolEntry).order_by(SpoolEntry.id.desc()).limit(limit)
        if state:
            query = query.where(SpoolEntry.state == state)
        views = [spool_view(e, detail=False) for e in session.scalars(query)]
    if as_json:
        print_json(views)
        return
    for view in views:
        click.echo(f"{view['id']:<7} {view['state']:<11} {view['received_at']}  "
                   f"{view['message_id'] or '-'}  {view['reason']}")


@inbox.command("show")
@click.argument("spool_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--raw", is_flag=True, help="Print the raw message bytes.")
@click.pass_context
def inbox_show(ctx: click.Context, spool_id: int, as_json: bool, raw: bool) -> None:
    """Show one spooled message with the trace of every decision."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        if entry is None:
            raise click.ClickException(f"there is no spooled message {spool_id}")
        if raw:
            sys.stdout.buffer.write(entry.raw)
            return
        view = spool_view(entry, detail=True)
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        if key != "trace":
            click.echo(f"{key}: {value}")
    for item in view["trace"]:
        click.echo(f"  {item['step']:<17} {item['outcome']:<10} {item['explanation']}")


@inbox.command("replay")
@click.argument("spool_id", type=int)
@click.pass_context
def inbox_replay(ctx: click.Context, spool_id: int) -> None:
    """Run a quarantined (or ignored) message through the pipeline again."""
    gateway = open_gateway(ctx)
    with gateway.db.transaction() as session:
        entry = session.get(SpoolEntry, spool_id, with_for_update=True)
        if entry is None:
            raise click.ClickException(f"there is no spooled message {spool_id}")
        if entry.state not in {SpoolState.QUARANTINED, SpoolState.IGNORED}:
            raise click.ClickException(
                f"spooled message {spool_id} is {entry.state.value}; only quarantined or "
                "ignored messages can be replayed")
        entry.state, entry.reason, entry.attempts = SpoolState.RECEIVED, "replay requested", 0
    if gateway.settings.embedded:
        process_inline(gateway, spool_id)
    else:
        gateway.enqueue_processing(spool_id)
        click.echo(f"spooled message {spool_id} queued for processing")
        return
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        click.echo(f"spooled message {spool_id}: {entry.state.value}: {entry.reason}")
