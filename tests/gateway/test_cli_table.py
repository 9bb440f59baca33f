"""The command table in :mod:`gateway.cli` (issue 15): every command module's top-level
commands are registered there, in the order ``gateway --help`` lists them, and every
command and subcommand takes ``--config`` after its name too (DESIGN 5). Commands are
imported when they run, so an MTA's ``gateway ingest`` does not load the whole gateway."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator

import click

import gateway.cli
from gateway.cli import COMMANDS, cli, load_command


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
    names = list(COMMANDS)
    assert names == sorted(names) == cli.list_commands(click.Context(cli))
    assert set(names) == _top_level_commands()
    assert [load_command(name).name for name in names] == names


def test_every_command_takes_config_after_its_name() -> None:
    for name in COMMANDS:
        for command in _walk(load_command(name)):
            assert any(param.name == "config_file" for param in command.params), command.name


def test_the_pipe_command_loads_neither_the_pipeline_nor_the_web_nor_the_bulk_mailers() -> None:
    """One ``gateway ingest`` process per message (Postfix's pipe): importing every
    command took ~2 s of CPU per message, most of it for code storing does not run."""
    probe = ("import sys\n"
             "from gateway.cli import cli, load_command\n"
             "load_command('ingest')\n"
             "heavy = ('gateway.pipeline.processing', 'gateway.web.app', "
             "'gateway.bulk.announcements', 'gateway.runtime.app', 'outbound.render')\n"
             "print(sorted(name for name in heavy if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout
