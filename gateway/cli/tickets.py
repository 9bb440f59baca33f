"""``gateway tickets``: list and show tickets; ``--json`` is the ticket view of DESIGN 4."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.cli.common import open_gateway, print_json
from gateway.models import MessageRecord, OutboxItem, Ticket
from gateway.views import ticket_view
from outbound.render import renderer_for

__all__ = ["tickets"]


@click.group()
def tickets() -> None:
    """Tickets and their messages."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", default=None, help="Only tickets with this status.")
@click.pass_context
def tickets_list(ctx: click.Context, as_json: bool, status: str | None) -> None:
    """List tickets, oldest first."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        query = select(Ticket).order_by(Ticket.number).options(
            selectinload(Ticket.participants))
        if status:
            query = query.where(Ticket.status == status)
        views = [ticket_view(t, with_messages=False) for t in session.scalars(query)]
    if as_json:
        print_json(views)
        return
    for view in views:
        click.echo(f"#{view['number']:<6} {view['status']:<8} {view['tier']:<14} "
                   f"{view['requester']:<32} {view['subject']}")


def _sent_about(session: Session, ticket: Ticket) -> list[OutboxItem]:
    """The mail sent about the ticket and the tickets joined into it (a joined ticket's
    history, ours included, lives in the one it was joined into)."""
    if ticket.merged_into is not None:
        return []
    numbers = [ticket.number, *session.scalars(select(Ticket.number).where(
        Ticket.merged_into == ticket.number))]
    return list(session.scalars(select(OutboxItem).where(
        OutboxItem.ticket_number.in_(numbers)).order_by(OutboxItem.id)))


@tickets.command("show")
@click.argument("number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def tickets_show(ctx: click.Context, number: int, as_json: bool) -> None:
    """Show one ticket with its messages."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number).options(
            selectinload(Ticket.messages).selectinload(MessageRecord.attachments),
            selectinload(Ticket.participants))).one_or_none()
        if ticket is None:
            raise click.ClickException(f"there is no ticket #{number}")
        view = ticket_view(ticket, with_messages=True, sent=_sent_about(session, ticket),
                           renderer=renderer_for(gateway.settings.templates_dir))
    if as_json:
        print_json(view)
        return
    click.echo(f"#{view['number']} {view['subject']}\nstatus {view['status']}, requester "
               f"{view['requester']}, team {view['team']}, tier {view['tier']}, queue "
               f"{view['queue']}\nentitlement: {view['entitlement']}")
    for message in view["messages"]:
        click.echo(f"\n--- {message['received_at']} {message['role']} {message['from']} "
                   f"({message['kind']}, threaded by {message['threaded_by']})\n{message['text']}")
