"""What every ``gateway`` command module needs: the settings, an open gateway, JSON output.

A module of its own so that the command groups in ``cli_*.py`` and the root group in
``cli.py`` share one definition without importing each other.
"""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.app import Gateway
from gateway.config import Settings

__all__ = ["open_gateway", "print_json", "settings_of"]


def settings_of(ctx: click.Context) -> Settings:
    """The settings the root group read (``--config``, environment)."""
    return ctx.ensure_object(dict)["settings"]  # type: ignore[no-any-return]


def open_gateway(ctx: click.Context, *, upgrade: bool | None = None) -> Gateway:
    """Open the gateway; an embedded SQLite database is created or migrated on the way."""
    settings = settings_of(ctx)
    gateway = Gateway(settings)
    if upgrade if upgrade is not None else settings.is_sqlite:
        gateway.db.upgrade()
    ctx.call_on_close(gateway.close)
    return gateway


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
