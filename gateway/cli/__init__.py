"""The ``gateway`` command line (DESIGN section 4), built with click.

This module holds the root group (``--config``, ``--log-level``, logging), the table of
commands and ``main``, which turns every error into one sentence and an exit status.
Each command or group lives in a module of its own beside it; adding one is a module
and a line in ``COMMANDS``. Every command has ``--help``; ``--json`` output is stable
(see :mod:`gateway.views`); errors are one sentence on stderr with a non-zero exit status.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from gateway.cli.common import add_config_option, config_option
from gateway.cli.failures import describe
from gateway.errors import ConfigError, DirectoryError, GatewayError
from gateway.logs import configure_logging

__all__ = ["COMMANDS", "cli", "main"]

log = logging.getLogger("gateway")

EX_CONFIG = 78


LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


class CommandTable(click.Group):
    """The root group: its commands are :data:`COMMANDS`, each imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]


@click.group(cls=CommandTable, context_settings={"help_option_names": ["-h", "--help"]},
             params=[config_option(envvar="GATEWAY_CONFIG")])
@click.option("--log-level", default=None, envvar="GATEWAY_LOG_LEVEL", metavar="LEVEL",
              help="DEBUG, INFO, WARNING or ERROR. Default: INFO for serve and worker, "
                   "WARNING for the other commands; DEBUG also logs tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """Email-driven support ticketing gateway."""
    state = ctx.ensure_object(dict)
    long_running = ctx.invoked_subcommand in {"serve", "worker"}
    level = "INFO" if long_running else "WARNING"
    if log_level is not None:
        try:
            level = LOG_LEVELS.convert(log_level, None, ctx)
        except click.BadParameter as error:
            if ctx.invoked_subcommand != "ingest":
                error.param_hint = "'--log-level' / GATEWAY_LOG_LEVEL"
                raise
            # An MTA bounces on a usage error: ingest answers 75 for it (see _ingest).
            state["deferred_error"] = ConfigError(f"--log-level / GATEWAY_LOG_LEVEL: "
                                                  f"{error.format_message()}")
    configure_logging(level)  # the processing children log the same way (gateway.logs)
    # The settings are read on first use (settings_of): --config may follow the subcommand.


# The one registration table, in the order ``gateway --help`` lists it: a command's name
# and where it is defined. A module is imported when its command runs, not before, so
# ``gateway ingest`` (one process per message from an MTA pipe) loads what storing needs and
# not the pipeline, the web hub or the bulk mailers.
COMMANDS: dict[str, str] = {
    "announce": "gateway.cli.bulk:announce",
    "announcements": "gateway.cli.bulk:announcements",
    "callbacks": "gateway.cli.callbacks:callbacks_group",
    "catalogue": "gateway.cli.catalogue:catalogue",
    "db": "gateway.cli.db:db",
    "directory": "gateway.cli.directory:directory",
    "grants": "gateway.cli.grants:grants",
    "inbox": "gateway.cli.inbox:inbox",
    "ingest": "gateway.cli.ingest:ingest",
    "insights": "gateway.cli.queue:insights",
    "jobs": "gateway.cli.jobs:jobs",
    "mailboxes": "gateway.cli.mailboxes:mailboxes",
    "outbox": "gateway.cli.outbox:outbox",
    "quarterly": "gateway.cli.bulk:quarterly",
    "queue": "gateway.cli.queue:queue",
    "rules": "gateway.cli.rules:rules",
    "serve": "gateway.cli.serve:serve",
    "tickets": "gateway.cli.tickets:tickets",
    "usage": "gateway.cli.bulk:usage",
    "worker": "gateway.cli.serve:worker",
}


def load_command(name: str) -> click.Command:
    """The command ``name`` of :data:`COMMANDS`, imported now, with ``--config`` after its
    name too (DESIGN 5)."""
    module_name, _, attribute = COMMANDS[name].partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command) or command.name != name:
        raise TypeError(f"{COMMANDS[name]} is not the command {name!r}")
    add_config_option(command)
    return command


def _database_failure(error: SQLAlchemyError) -> tuple[str, int]:
    """The sentence and exit status for a database error that reached the top."""
    reason = describe(error)
    if isinstance(error, ProgrammingError) or "no such table" in reason:
        return (f"the database has no gateway schema or an outdated one ({reason}); "
                "run `gateway db upgrade`"), 1
    if isinstance(error, OperationalError):
        return f"the database is unavailable ({reason})", 75
    return f"the database refused the command ({reason})", 1


def main() -> None:
    """Run the command line; every error ends as one sentence on stderr, never a traceback."""
    try:
        # Without standalone mode click returns ctx.exit()'s status instead of exiting.
        status = cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        sys.exit(_click_failure(error))
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - the last resort: a sentence, not a traceback
        sys.exit(_failure(error))
    sys.exit(status if isinstance(status, int) else 0)


def _click_failure(error: click.ClickException) -> int:
    """Show a usage or command error as click does; its exit status."""
    if isinstance(error, click.UsageError) and _for_ingest(error.ctx):
        # A mistyped pipe command must not bounce the mail: the MTA retries after the fix.
        click.echo(f"error: the message was not stored, try again later: "
                   f"{error.format_message()}", err=True)
        return 75
    error.show()
    return error.exit_code


def _for_ingest(ctx: click.Context | None) -> bool:
    """Whether a usage error belongs to an ``ingest`` command line: its own options, or
    the root's before it (``gateway --bogus ingest``), which fail before the subcommand is
    known, so the command line says it (an MTA pipe's ``argv`` always names ``ingest``)."""
    if ctx is None:
        return False
    if ctx.command.name == "ingest" and ctx.parent is not None and ctx.parent.command is cli:
        return True
    return ctx.parent is None and "ingest" in sys.argv[1:]


def _failure(error: Exception) -> int:
    """Say in one sentence on stderr what stopped the command; its exit status."""
    if isinstance(error, ConfigError):
        sentence, status = str(error), EX_CONFIG
    elif isinstance(error, DirectoryError):
        sentence, status = str(error), 65
    elif isinstance(error, GatewayError):
        sentence, status = str(error), 1
    elif isinstance(error, SQLAlchemyError):
        log.debug("database error", exc_info=error)
        sentence, status = _database_failure(error)
    elif isinstance(error, OSError):
        sentence, status = describe(error), 74
    else:
        log.debug("unexpected error", exc_info=error)
        sentence, status = (f"unexpected {type(error).__name__}: {describe(error)} "
                            "(GATEWAY_LOG_LEVEL=DEBUG shows the traceback)"), 1
    click.echo(f"error: {sentence}", err=True)
    return status
