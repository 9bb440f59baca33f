"""``gateway ingest``: the MTA pipe (DESIGN 4 and 10).

An MTA bounces the mail on any status but 0, 65, 67 and 75, so everything that is not
the input's fault answers 75 here (and in ``main`` for usage errors) and the MTA retries.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from gateway.cli.common import open_gateway, settings_of
from gateway.cli.failures import describe
from gateway.config import Settings

if TYPE_CHECKING:
    from inbound.intake_priority import LanedDatabase

__all__ = ["ingest"]

log = logging.getLogger("gateway")


@click.command()
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
    from inbound.addresses import EnvelopeRole, envelope_role
    from inbound.ingest import (
        check_complete,
        check_raw,
        check_recipients,
        check_sender,
        envelope_of,
        read_limited,
    )
    from inbound.recipients import intake_identity
    from inbound.spool import store_message

    deferred = ctx.ensure_object(dict).pop("deferred_error", None)
    if deferred is not None:
        raise deferred
    settings = settings_of(ctx)
    limit = settings.max_message_size
    if source == "-":
        data = read_limited(sys.stdin.buffer, limit)
    else:
        with open(source, "rb") as handle:
            data = read_limited(handle, limit)
    if source == "-" and (sender is not None or recipients):  # the MTA's pipe (DESIGN 10)
        check_complete(data)
    check_sender(sender)
    database = _open_database(ctx, settings) if recipients else None
    role_of = None
    if database is not None:  # as SMTP: RCPT is answered before the message is looked at
        support = intake_identity(database, settings)
        check_recipients(recipients, support, settings.max_recipients)
        # The MTA pipes one copy per recipient: a later copy keeps what its recipient asks.
        def role_of(address: str) -> EnvelopeRole:
            return envelope_role(address, support, settings.grant_address_tag)
    raw = check_raw(data, limit)
    envelope = envelope_of(raw, sender, recipients)
    database = database or _open_database(ctx, settings)
    stored = store_message(database, raw, source="pipe", mail_from=envelope.mail_from,
                           rcpt_tos=list(envelope.rcpt_tos), role_of=role_of,
                           max_recipients=settings.max_recipients)
    click.echo(f"stored as spool {stored.spool_id}" + (
        f" (duplicate; recipients added: {', '.join(stored.added)})" if stored.added
        else " (duplicate)" if stored.duplicate
        else f" (a later copy of spool {stored.copy_of})" if stored.copy_of is not None
        else ""))
    if stored.duplicate:
        return
    try:
        _process(ctx, settings, stored.spool_id)
    except Exception as error:  # noqa: BLE001 - stored is stored: the sweep finishes the job
        log.debug("processing of spool %s failed", stored.spool_id, exc_info=True)
        log.warning("spool %s stored; processing deferred to the sweep: %s",
                    stored.spool_id, describe(error))


def _open_database(ctx: click.Context, settings: Settings) -> LanedDatabase:
    """The database alone: storing needs neither the broker nor the pipeline (their
    imports are most of an ``ingest`` process's CPU)."""
    from inbound.intake_priority import LanedDatabase

    database = LanedDatabase(settings.database_url, first=True)
    ctx.call_on_close(database.dispose)
    if settings.is_sqlite:
        database.upgrade()
    return database


def _process(ctx: click.Context, settings: Settings, spool_id: int) -> None:
    """Have stored row ``spool_id`` processed: by ``serve`` if one runs (embedded), else
    here; in scale-out by a worker."""
    if not settings.embedded:
        from gateway.runtime.broker import make_broker, send_processing_job

        broker = make_broker(settings)
        try:
            send_processing_job(broker, spool_id)
        finally:
            broker.close()  # type: ignore[no-untyped-call]  # dramatiq's is untyped
        return
    from gateway.runtime.handoff import hand_to_serve

    if hand_to_serve(settings.var_dir, spool_id):
        log.info("spool %s handed to serve for processing", spool_id)
        return
    from gateway.cli.inline import inline_slot, process_inline

    with inline_slot(settings) as slot:
        if slot:
            process_inline(open_gateway(ctx, upgrade=False), spool_id)
        else:
            log.info("spool %s stored; every ingest slot is busy, serve's sweep "
                     "processes it", spool_id)
