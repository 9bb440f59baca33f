"""``gateway ingest``: the MTA pipe (DESIGN 4 and 10).

An MTA bounces the mail on any status but 0, 65, 67 and 75, so everything that is not
the input's fault answers 75 here (and in ``main`` for usage errors) and the MTA retries.
"""

from __future__ import annotations

import logging
import sys

import click

from gateway.cli.common import open_gateway, settings_of
from gateway.cli.failures import describe
from gateway.cli.inline import inline_slot, process_inline

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
    gateway = open_gateway(ctx) if recipients else None
    if gateway is not None:  # as SMTP: RCPT is answered before the message is looked at
        check_recipients(recipients, intake_identity(gateway.db, settings),
                         settings.max_recipients)
    raw = check_raw(data, limit)
    envelope = envelope_of(raw, sender, recipients)
    gateway = gateway or open_gateway(ctx)
    stored = store_message(gateway.db, raw, source="pipe", mail_from=envelope.mail_from,
                           rcpt_tos=list(envelope.rcpt_tos))
    click.echo(f"stored as spool {stored.spool_id}" + (" (duplicate)" if stored.duplicate else ""))
    if stored.duplicate:
        return
    try:
        if settings.embedded:
            with inline_slot(settings) as slot:
                if slot:
                    process_inline(gateway, stored.spool_id)
                else:
                    log.info("spool %s stored; every ingest slot is busy, serve's sweep "
                             "processes it", stored.spool_id)
        else:
            gateway.enqueue_processing(stored.spool_id)
    except Exception as error:  # noqa: BLE001 - stored is stored: the sweep finishes the job
        log.debug("processing of spool %s failed", stored.spool_id, exc_info=True)
        log.warning("spool %s stored; processing deferred to the sweep: %s",
                    stored.spool_id, describe(error))
