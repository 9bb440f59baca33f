"""``gateway db``: the database schema (DESIGN 4)."""

from __future__ import annotations

import click

from gateway.cli.common import open_gateway

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the schema to the newest revision."""
    open_gateway(ctx, upgrade=True)
    click.echo("database schema is up to date")
