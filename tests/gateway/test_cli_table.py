"""The command table in :mod:`gateway.cli` (issue 15): every command module's top-level
commands are registered there, in the order ``gateway --help`` lists them, and every
command and subcommand takes ``--config`` after its name too (DESIGN 5)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import click

import gateway.cli
from gateway.cli import COMMANDS, cli


def _walk(command: click.Command) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _walk(sub)


def _top_level_commands() -> set[str]:
    """Commands defined in ``gateway/cli/*.py`` that no group there holds as a subcommand."""
    defined: dict[int, click.Command] = {}
    for info in pkgutil.iter_modules(gateway.cli.__path__, "gateway.cli."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, click.Command) and value is not cli:
                defined[id(value)] = value
    nested = {id(sub) for command in defined.values() if isinstance(command, click.Group)
              for sub in command.commands.values()}
    return {command.name or "" for key, command in defined.items() if key not in nested}


def test_every_command_module_is_in_the_table_in_help_order() -> None:
    names = [command.name or "" for command in COMMANDS]
    assert names == sorted(names) == cli.list_commands(click.Context(cli))
    assert set(names) == _top_level_commands()


def test_every_command_takes_config_after_its_name() -> None:
    for top in COMMANDS:
        for command in _walk(top):
            assert any(param.name == "config_file" for param in command.params), command.name
