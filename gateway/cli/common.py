"""What every ``gateway`` command module needs: the settings, an open gateway, JSON output.

A module of its own so that the command groups in ``cli_*.py`` and the root group in
``cli.py`` share one definition without importing each other.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from gateway.config import Settings, load_settings

if TYPE_CHECKING:  # imported when a command opens the gateway: ``ingest`` mostly need not
    from gateway.runtime.app import Gateway

__all__ = ["add_config_option", "config_option", "open_gateway", "print_json", "settings_of"]

_CONFIG_HELP = "TOML configuration file (default: GATEWAY_CONFIG, else built-in defaults)."


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Record ``--config`` wherever it was given; the last one on the line wins."""
    if value is not None:
        state = ctx.ensure_object(dict)
        state["config_file"] = value
        state.pop("settings", None)


def config_option(*, envvar: str | None = None) -> click.Option:
    """The one ``--config`` option, accepted by the root group and by every subcommand.

    Only the root reads ``GATEWAY_CONFIG``, so a subcommand's absent ``--config`` never
    overrides ``gateway --config FILE`` given earlier on the line.
    """
    return click.Option(["--config", "config_file"], type=click.Path(dir_okay=False),
                        envvar=envvar, expose_value=False, is_eager=True,
                        callback=_remember_config, help=_CONFIG_HELP)


def add_config_option(command: click.Command) -> None:
    """Give ``command`` and, for a group, every command below it the ``--config`` option."""
    if not any(param.name == "config_file" for param in command.params):
        command.params.append(config_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_config_option(sub)


def settings_of(ctx: click.Context) -> Settings:
    """The settings from ``--config``/``GATEWAY_CONFIG`` and the environment, read once.

    Read on first use rather than in the root group, so that ``--config`` after the
    subcommand counts and so that ``ingest`` can turn a configuration error into 75.
    """
    state = ctx.ensure_object(dict)
    if "settings" not in state:
        state["settings"] = load_settings(state.get("config_file"))
    return state["settings"]  # type: ignore[no-any-return]


def open_gateway(ctx: click.Context, *, upgrade: bool | None = None) -> Gateway:
    """Open the gateway; an embedded SQLite database is created or migrated on the way."""
    from gateway.runtime.app import Gateway

    settings = settings_of(ctx)
    gateway = Gateway(settings)
    if upgrade if upgrade is not None else settings.is_sqlite:
        gateway.db.upgrade()
    ctx.call_on_close(gateway.close)
    return gateway


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
