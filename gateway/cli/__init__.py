"""The ``gateway`` command line (DESIGN section 4), built with click.

Every command has ``--help``; ``--json`` output is stable (see :mod:`gateway.views`);
errors are one sentence on stderr with a non-zero exit status.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from gateway.bulk.catalogue import missing_translations
from gateway.cli.bulk import BULK_COMMANDS
from gateway.cli.common import add_config_option, config_option
from gateway.cli.common import open_gateway as _gateway
from gateway.cli.common import print_json as _print_json
from gateway.cli.common import settings_of as _settings
from gateway.cli.grants import grants
from gateway.cli.mailboxes import mailboxes
from gateway.directory import load_directory_file
from gateway.errors import ConfigError, DirectoryError, GatewayError
from gateway.models import MessageRecord, OutboxItem, SpoolEntry, SpoolState, Ticket
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from gateway.views import outbox_view, spool_view, ticket_view
from outbound.delivery import deliver_outbox_item

__all__ = ["main"]

log = logging.getLogger("gateway")

EX_CONFIG = 78
F = TypeVar("F", bound=Callable[..., Any])


LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
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
    level = level.upper()
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # mail-parser warns about every part it does not render (images, reports).
        logging.getLogger("mailparser").setLevel(logging.ERROR)
        # aiosmtpd logs a dozen INFO lines per SMTP session: noise, and CPU at volume.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    # The settings are read on first use (settings_of): --config may follow the subcommand.


# -- serve / worker -----------------------------------------------------------
@cli.command()
@click.option("--no-worker", is_flag=True, help="Do not run jobs here (scale-out front end).")
@click.pass_context
def serve(ctx: click.Context, no_worker: bool) -> None:
    """Run SMTP intake, web, the sweep and (unless --no-worker) the job worker."""
    from gateway.runtime.server import GatewayServer, run_until_signalled

    server = GatewayServer(Gateway(_settings(ctx)), run_worker=not no_worker)
    run_until_signalled(server.start, server.stop)


@cli.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default: settings).")
@click.pass_context
def worker(ctx: click.Context, threads: int | None) -> None:
    """Run the job worker for scale-out (needs GATEWAY_BROKER_URL)."""
    from gateway.active_policy import current_issue_types, current_policy
    from gateway.runtime.server import run_until_signalled

    settings = _settings(ctx)
    if settings.embedded:
        raise ConfigError("gateway worker needs GATEWAY_BROKER_URL (redis:// or amqp://); "
                          "in embedded mode gateway serve runs the worker itself")
    gateway = Gateway(settings)

    def start() -> None:
        gateway.services  # noqa: B018 - fail early on a missing secret
        current_policy(settings), current_issue_types(settings)  # fail early on a bad policy
        gateway.start_worker(threads)
        log.info("worker started with %s threads", threads or settings.worker_threads)

    run_until_signalled(start, gateway.close)


# -- ingest ---------------------------------------------------------------------
def _process_inline(gateway: Gateway, spool_id: int) -> None:
    """Embedded mode has no worker outside ``serve``: process and deliver right here."""
    outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
    for outbox_id in outcome.outbox_ids:
        try:
            deliver_outbox_item(gateway.db, gateway.transport, gateway.settings, outbox_id)
        except GatewayError as error:
            log.warning("outbox %s not delivered yet (%s); serve will retry", outbox_id, error)


@cli.command()
@click.option("-f", "--sender", "sender", default=None, metavar="SENDER",
              help="Envelope sender as the MTA got it ('' or '<>': the null sender).")
@click.option("-r", "--recipient", "recipients", multiple=True, metavar="RECIPIENT",
              help="Envelope recipient, once per recipient; each is checked as SMTP's RCPT.")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.pass_context
def ingest(ctx: click.Context, sender: str | None, recipients: tuple[str, ...],
           source: str) -> None:
    """Store one raw message (FILE or - for stdin) with its envelope.

    Exit 0 stored, 65 unusable input, 67 recipient refused, 75 retry. A refusal
    starts with its enhanced status code (e.g. 5.1.1), which Postfix puts in the DSN.
    An MTA pipe bounces the mail on any other status, so every failure that is not the
    input's fault (configuration, database, file, bug) answers 75 and the MTA retries.
    """
    from inbound.ingest import EX_TEMPFAIL, Refused

    try:
        _ingest(ctx, source, sender, recipients)
        ctx.close()  # here, not after the callback: a failure to close must be a 75 too
    except Refused as refusal:
        click.echo(str(refusal), err=True)
        status = refusal.exit_code
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the MTA must retry
        log.debug("ingest failed", exc_info=True)
        click.echo(f"error: the message was not stored, try again later: {describe(error)}",
                   err=True)
        status = EX_TEMPFAIL
    else:
        return
    ctx.exit(status)


def _ingest(ctx: click.Context, source: str, sender: str | None,
            recipients: tuple[str, ...]) -> None:
    """Read, check the envelope and the bytes, store, then process (embedded) or enqueue."""
    from inbound.ingest import check_raw, check_recipients, envelope_of, read_limited
    from inbound.recipients import intake_identity
    from inbound.spool import store_message

    deferred = ctx.ensure_object(dict).pop("deferred_error", None)
    if deferred is not None:
        raise deferred
    settings = _settings(ctx)
    limit = settings.max_message_size
    if source == "-":
        data = read_limited(sys.stdin.buffer, limit)
    else:
        with open(source, "rb") as handle:
            data = read_limited(handle, limit)
    gateway = _gateway(ctx) if recipients else None
    if gateway is not None:  # as SMTP: RCPT is answered before the message is looked at
        check_recipients(recipients, intake_identity(gateway.db, settings),
                         settings.max_recipients)
    raw = check_raw(data, limit)
    envelope = envelope_of(raw, sender, recipients)
    gateway = gateway or _gateway(ctx)
    stored = store_message(gateway.db, raw, source="pipe", mail_from=envelope.mail_from,
                           rcpt_tos=list(envelope.rcpt_tos))
    click.echo(f"stored as spool {stored.spool_id}" + (" (duplicate)" if stored.duplicate else ""))
    if stored.duplicate:
        return
    try:
        if settings.embedded:
            _process_inline(gateway, stored.spool_id)
        else:
            gateway.enqueue_processing(stored.spool_id)
    except Exception as error:  # noqa: BLE001 - stored is stored: the sweep finishes the job
        log.debug("processing of spool %s failed", stored.spool_id, exc_info=True)
        log.warning("spool %s stored; processing deferred to the sweep: %s",
                    stored.spool_id, describe(error))


# -- db / directory ---------------------------------------------------------------
@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the schema to the newest revision."""
    _gateway(ctx, upgrade=True)
    click.echo("database schema is up to date")


@cli.group()
def directory() -> None:
    """Teams, people, agents and catalogue."""


@directory.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def directory_load(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Upsert one or more directory TOML files (idempotent; all or nothing)."""
    gateway = _gateway(ctx)
    with gateway.db.transaction() as session:
        reports = [(path, load_directory_file(session, path)) for path in files]
    for path, report in reports:
        click.echo(f"{path}: loaded {report}")
    with gateway.db.reading() as session:
        missing = {lang: names for lang, names in missing_translations(session).items() if names}
    if missing:
        counts = ", ".join(f"{lang} {len(names)}" for lang, names in missing.items())
        click.echo(f"catalogue: entries without a translation (shown in English): {counts}; "
                   "`gateway catalogue check` lists them")


# -- tickets ------------------------------------------------------------------------
@cli.group()
def tickets() -> None:
    """Tickets and their messages."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", default=None, help="Only tickets with this status.")
@click.pass_context
def tickets_list(ctx: click.Context, as_json: bool, status: str | None) -> None:
    """List tickets, oldest first."""
    gateway = _gateway(ctx)
    with gateway.db.reading() as session:
        query = select(Ticket).order_by(Ticket.number)
        if status:
            query = query.where(Ticket.status == status)
        views = [ticket_view(t, with_messages=False) for t in session.scalars(query)]
    if as_json:
        _print_json(views)
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
    gateway = _gateway(ctx)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number).options(
            selectinload(Ticket.messages).selectinload(MessageRecord.attachments))).one_or_none()
        if ticket is None:
            raise click.ClickException(f"there is no ticket #{number}")
        view = ticket_view(ticket, with_messages=True, sent=_sent_about(session, ticket))
    if as_json:
        _print_json(view)
        return
    click.echo(f"#{view['number']} {view['subject']}\nstatus {view['status']}, requester "
               f"{view['requester']}, team {view['team']}, tier {view['tier']}, queue "
               f"{view['queue']}\nentitlement: {view['entitlement']}")
    for message in view["messages"]:
        click.echo(f"\n--- {message['received_at']} {message['role']} {message['from']} "
                   f"({message['kind']}, threaded by {message['threaded_by']})\n{message['text']}")


# -- inbox ---------------------------------------------------------------------------
@cli.group()
def inbox() -> None:
    """Spooled messages: state, reason, replay."""


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--state", type=click.Choice([s.value for s in SpoolState]), default=None)
@click.option("--limit", type=int, default=200, show_default=True)
@click.pass_context
def inbox_list(ctx: click.Context, as_json: bool, state: str | None, limit: int) -> None:
    """List spooled messages, newest first."""
    gateway = _gateway(ctx)
    with gateway.db.reading() as session:
        query = select(SpoolEntry).order_by(SpoolEntry.id.desc()).limit(limit)
        if state:
            query = query.where(SpoolEntry.state == state)
        views = [spool_view(e, detail=False) for e in session.scalars(query)]
    if as_json:
        _print_json(views)
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
    gateway = _gateway(ctx)
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        if entry is None:
            raise click.ClickException(f"there is no spooled message {spool_id}")
        if raw:
            sys.stdout.buffer.write(entry.raw)
            return
        view = spool_view(entry, detail=True)
    if as_json:
        _print_json(view)
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
    gateway = _gateway(ctx)
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
        _process_inline(gateway, spool_id)
    else:
        gateway.enqueue_processing(spool_id)
        click.echo(f"spooled message {spool_id} queued for processing")
        return
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        click.echo(f"spooled message {spool_id}: {entry.state.value}: {entry.reason}")


# -- outbox --------------------------------------------------------------------------
@cli.group()
def outbox() -> None:
    """Mail we send: status, attempts, last error."""


@outbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--status", default=None, help="Only rows with this status.")
@click.pass_context
def outbox_list(ctx: click.Context, as_json: bool, status: str | None) -> None:
    """List outbox rows, newest first."""
    gateway = _gateway(ctx)
    with gateway.db.reading() as session:
        query = select(OutboxItem).order_by(OutboxItem.id.desc())
        if status:
            query = query.where(OutboxItem.status == status)
        views = [outbox_view(item) for item in session.scalars(query)]
    if as_json:
        _print_json(views)
        return
    for view in views:
        click.echo(f"{view['id']:<6} {view['status']:<8} {view['kind']:<16} {view['to']:<32} "
                   f"{view['attempts']} {view['last_error']}")


cli.add_command(grants)
for _command in BULK_COMMANDS:  # quarterly, announce, announcements, usage (issue 7)
    cli.add_command(_command)
cli.add_command(mailboxes)

from gateway.cli.catalogue import catalogue  # noqa: E402
from gateway.cli.jobs import jobs  # noqa: E402
from gateway.cli.queue import insights, queue  # noqa: E402 - registered after the group
from gateway.cli.rules import rules  # noqa: E402

cli.add_command(rules)
cli.add_command(catalogue)
cli.add_command(queue)
cli.add_command(insights)
cli.add_command(jobs)
for _command in cli.commands.values():  # --config after the subcommand too (DESIGN 5)
    add_config_option(_command)


def describe(error: BaseException) -> str:
    """One line about ``error``: the driver's message for database errors, no SQL, no URL."""
    if isinstance(error, SQLAlchemyError):
        orig = getattr(error, "orig", None)
        text = str(orig) if orig is not None else str(error)
    elif isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = str(error)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line or type(error).__name__


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
    if (isinstance(error, click.UsageError) and error.ctx is not None
            and error.ctx.command is ingest):
        # A mistyped pipe command must not bounce the mail: the MTA retries after the fix.
        click.echo(f"error: the message was not stored, try again later: "
                   f"{error.format_message()}", err=True)
        return 75
    error.show()
    return error.exit_code


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
