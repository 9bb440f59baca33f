"""Hand one outbox row to the transport and record what happened.

The row is claimed (``pending`` → ``sending``) in its own transaction before the
network call and settled afterwards, so two workers never send the same row at
once.  Temporary failures go back to ``pending`` and are raised for the job's
retry policy; permanent ones (any 5xx), and temporary ones past the attempt limit, end
``dead`` with the server's answer.  The same transaction records the failure on the
ticket and queues a notice to the agents (:mod:`outbound.refusals`); that notice is
delivered right after, once, and otherwise left to the sweep like any pending row.
A sealed live copy (``outbound/sealing.py``) is opened for each attempt and dropped once
the row is ``sent`` or ``dead``: from then on only the redacted ``raw`` remains.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import jinja2
from sqlalchemy import Connection, Table, Update, and_, bindparam, select, update

from gateway.config import Settings
from gateway.db import Database
from gateway.errors import PermanentFailure, TemporaryFailure
from gateway.models import OutboxItem, OutboxStatus, utcnow
from gateway.secrets import load_secret
from outbound.dkim import dkim_sign
from outbound.recipe import Composed, Recipe, compose_recipe
from outbound.refusals import record_refusal
from outbound.render import UnknownKindError, renderer_for
from outbound.sealing import SealError, unseal
from outbound.transports import Transport
from outbound.transports.maildir import MaildirTransport, Staged

__all__ = ["STALE_SENDING", "StagedDelivery", "deliver_outbox_item", "stage_maildir_delivery"]

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=10)

# The claim and the settlement are one Core statement each, built once, on a bare
# connection (``Database.writing``): the ORM's update machinery, a Session, and building
# the statement for every row cost more CPU than the statement itself.
_OUTBOX = cast(Table, OutboxItem.__table__)
_CLAIMABLE = (
    _OUTBOX.c.id == bindparam("outbox_id"),
    # sent, dead and bounced (sent, then reported failed) are done
    _OUTBOX.c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
    # another worker is sending it right now unless its claim is stale
    ~and_(_OUTBOX.c.status == OutboxStatus.SENDING,
          _OUTBOX.c.updated_at > bindparam("stale_before", type_=_OUTBOX.c.updated_at.type)))
_CLAIM = (
    update(_OUTBOX)
    .where(*_CLAIMABLE)
    .values(status=OutboxStatus.SENDING, attempts=_OUTBOX.c.attempts + 1,
            updated_at=bindparam("now", type_=_OUTBOX.c.updated_at.type))
    .returning(_OUTBOX.c.mail_from, _OUTBOX.c.rcpt_to, _OUTBOX.c.raw, _OUTBOX.c.sealed,
               _OUTBOX.c.attempts, _OUTBOX.c.recipe))
_PEEK = (  # the maildir path: read the row (no lock), write the file, then claim + settle
    select(_OUTBOX.c.mail_from, _OUTBOX.c.rcpt_to, _OUTBOX.c.raw, _OUTBOX.c.sealed,
           _OUTBOX.c.recipe)
    .where(*_CLAIMABLE))
_SENT_NOW = (  # the claim and the settlement of a sent row in one statement
    update(_OUTBOX)
    .where(*_CLAIMABLE)
    .values(status=OutboxStatus.SENT, attempts=_OUTBOX.c.attempts + 1,
            updated_at=bindparam("now", type_=_OUTBOX.c.updated_at.type),
            sent_at=bindparam("sent", type_=_OUTBOX.c.sent_at.type),
            next_attempt_at=None, sealed=None))
_SENT_NOW_COMPOSED = _SENT_NOW.values(  # … of a row composed from its recipe just now
    raw=bindparam("raw", type_=_OUTBOX.c.raw.type),
    subject=bindparam("subject", type_=_OUTBOX.c.subject.type), recipe=None)
_STORE_COMPOSED = (  # the general path keeps what it composed before the first attempt
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("outbox_id"), _OUTBOX.c.recipe.is_not(None))
    .values(raw=bindparam("raw", type_=_OUTBOX.c.raw.type),
            sealed=bindparam("sealed", type_=_OUTBOX.c.sealed.type),
            subject=bindparam("subject", type_=_OUTBOX.c.subject.type), recipe=None))
_SETTLE_SENT = (  # the usual end: what _settle(…, SENT, …) writes
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("outbox_id"))
    .values(status=OutboxStatus.SENT,
            updated_at=bindparam("now", type_=_OUTBOX.c.updated_at.type),
            sent_at=bindparam("sent", type_=_OUTBOX.c.sent_at.type),
            next_attempt_at=None,
            sealed=None))  # no live secret stays in the database once the mail is gone


def _claim(database: Database, outbox_id: int
           ) -> tuple[str, str, bytes, bytes | None, int, dict[str, Any] | None] | None:
    """``pending`` (or a ``sending`` left stale) → ``sending``, one more attempt, in one
    ``UPDATE … RETURNING``; None when the row is gone, done, or being sent right now."""
    now = utcnow()
    with database.writing() as connection:
        claimed = connection.execute(
            _CLAIM, {"outbox_id": outbox_id, "stale_before": now - STALE_SENDING,
                     "now": now}).one_or_none()
    if claimed is None:
        return None
    mail_from, rcpt_to, raw, sealed, attempts, recipe = claimed
    return (str(mail_from), str(rcpt_to), bytes(raw), None if sealed is None else bytes(sealed),
            int(attempts), recipe)


def _composed(settings: Settings, recipe: dict[str, Any]) -> Composed:
    """The mail of a row queued as a recipe (``outbound/recipe.py``); CompositionFailed."""
    try:
        return compose_recipe(renderer_for(settings.templates_dir), Recipe.from_json(recipe),
                              load_secret(settings))
    except (jinja2.TemplateError, UnknownKindError, ValueError, TypeError) as error:
        raise CompositionFailed(f"could not compose the mail: {type(error).__name__}: "
                                f"{error}") from error


class CompositionFailed(Exception):
    """A recipe's templates failed (a template changed since it was queued): the row ends
    ``dead`` with the reason, for an operator; nothing is sent."""


def _store_composed(database: Database, outbox_id: int, composed: Composed) -> None:
    with database.writing() as connection:
        connection.execute(_STORE_COMPOSED, {"outbox_id": outbox_id, "raw": composed.raw,
                                             "sealed": composed.sealed,
                                             "subject": composed.subject})


def _settle(database: Database, outbox_id: int, status: OutboxStatus, note: str,
            retry_in: timedelta | None = None) -> None:
    """Record the attempt's end in one ``UPDATE``."""
    now = utcnow()
    if status == OutboxStatus.SENT:
        statement = _SETTLE_SENT
        parameters: dict[str, object] = {"outbox_id": outbox_id, "now": now, "sent": now}
    else:
        values: dict[str, object] = {
            "status": status, "updated_at": now, "last_error": note[:2000],
            "next_attempt_at": now + retry_in if retry_in is not None else None}
        if status == OutboxStatus.DEAD:
            values["sealed"] = None  # no live secret stays once the row is given up
        statement = update(_OUTBOX).where(_OUTBOX.c.id == outbox_id).values(values)
        parameters = {}
    with database.writing() as connection:
        settled = connection.execute(statement, parameters)
        assert settled.rowcount == 1


def _bury(database: Database, transport: Transport, settings: Settings, outbox_id: int,
          note: str, answer: str) -> str:
    """End the row ``dead``; in the same transaction, tell the ticket and the agents."""
    with database.transaction() as session:
        item = session.get(OutboxItem, outbox_id, with_for_update=True)
        assert item is not None
        item.status, item.updated_at = OutboxStatus.DEAD, utcnow()
        item.sealed = None  # no live secret stays in the database once the mail is gone
        item.last_error = note[:2000]
        item.next_attempt_at = None
        notice_id = record_refusal(session, settings, item, answer)
    if notice_id is not None:
        try:  # a notice about a notice is never made, so this recursion ends here
            deliver_outbox_item(database, transport, settings, notice_id)
        except TemporaryFailure as error:
            log.info("outbox %s (delivery failure notice) deferred: %s", notice_id, error)
    return OutboxStatus.DEAD.value


def deliver_outbox_item(database: Database, transport: Transport, settings: Settings,
                        outbox_id: int) -> str:
    """Deliver once; return the resulting status.  Raises TemporaryFailure to ask for a retry."""
    if isinstance(transport, MaildirTransport):
        delivered = _deliver_to_maildir(database, transport, settings, outbox_id)
        if delivered is not None:
            return delivered
    claimed = _claim(database, outbox_id)
    if claimed is None:
        return "skipped"
    mail_from, rcpt_to, raw, sealed, attempts, recipe = claimed
    if recipe is not None:
        try:
            composed = _composed(settings, recipe)
        except CompositionFailed as error:
            _settle(database, outbox_id, OutboxStatus.DEAD, str(error))
            log.error("outbox %s to %s dead: %s", outbox_id, rcpt_to, error)
            return OutboxStatus.DEAD.value
        _store_composed(database, outbox_id, composed)  # every retry sends these bytes
        raw, sealed = composed.live, None
    try:
        if sealed is not None:
            raw = unseal(load_secret(settings), sealed)
    except SealError as error:  # the key changed: an operator's matter, not a refusal
        _settle(database, outbox_id, OutboxStatus.DEAD, str(error))
        log.error("outbox %s to %s dead: %s", outbox_id, rcpt_to, error)
        return OutboxStatus.DEAD.value
    try:
        answer = transport.send(mail_from, rcpt_to, dkim_sign(settings, raw))
    except PermanentFailure as error:
        return _bury(database, transport, settings, outbox_id, f"refused: {error}", str(error))
    except TemporaryFailure as error:
        if attempts >= settings.delivery_max_attempts:
            return _bury(database, transport, settings, outbox_id,
                         f"gave up after {attempts} attempts; last answer: {error}",
                         f"{error} (temporary, {attempts} attempts)")
        backoff = min(settings.delivery_min_backoff * 2 ** (attempts - 1),
                      settings.delivery_max_backoff)
        _settle(database, outbox_id, OutboxStatus.PENDING, f"attempt {attempts}: {error}",
                retry_in=timedelta(seconds=backoff))
        log.info("outbox %s to %s deferred: %s", outbox_id, rcpt_to, error)
        raise
    _settle(database, outbox_id, OutboxStatus.SENT, answer)
    log.info("outbox %s delivered to %s: %s", outbox_id, rcpt_to, answer)
    return OutboxStatus.SENT.value


def _deliver_to_maildir(database: Database, transport: MaildirTransport, settings: Settings,
                        outbox_id: int) -> str | None:
    """A maildir delivery in one write transaction instead of two; None: take the general
    path (claim, send, settle), which records a failure, a retry or a burial.

    Why it may: a maildir write can be staged (written and synced under ``tmp/``)
    before the row is claimed, and made visible (linked into ``new/``) inside the
    transaction that marks the row sent; the row's lock (SQLite's one writer, the
    row lock of the ``UPDATE`` on PostgreSQL) makes a second worker wait, then find the
    row sent and drop its own staged copy.  A crash after the link and before the
    commit leaves the row ``pending`` and the mail in the maildir: it is sent again,
    once, as a crash between the write and the settlement does on the general path
    (where the row waits ``STALE_SENDING`` first).  Nothing is lost: the row is sent
    only once the file is in ``new/``."""
    staged = stage_maildir_delivery(database, transport, settings, outbox_id)
    if not isinstance(staged, StagedDelivery):
        return staged
    try:
        with database.writing() as connection:
            return staged.complete(connection)
    except TemporaryFailure:
        return None  # the link failed, the row rolled back: the general path records it
    finally:
        staged.discard()


@dataclass
class StagedDelivery:
    """A maildir delivery written under ``tmp/``, waiting for the transaction that marks
    its row sent and links the file into ``new/`` (:meth:`complete`).

    Why apart: a processing child (``gateway/runtime/processing_child.py``) completes the
    deliveries of one message in the writer-lane hold of its next message, so that on
    SQLite a message takes the lane once, not twice."""

    outbox_id: int
    rcpt_to: str
    staged: Staged
    statement: Update
    """``_SENT_NOW``, or ``_SENT_NOW_COMPOSED`` with the composed bytes in ``parameters``."""
    parameters: dict[str, Any]

    def complete(self, connection: Connection) -> str:
        """Mark the row sent and link the file, on ``connection`` (a write transaction the
        caller commits); "skipped" when another worker sent it meanwhile.  A failed link
        raises TemporaryFailure: the caller rolls back, the row stays ``pending``."""
        now = utcnow()
        sent = connection.execute(self.statement, {
            "outbox_id": self.outbox_id, "now": now, "sent": now,
            "stale_before": now - STALE_SENDING, **self.parameters})
        if sent.rowcount != 1:  # another worker sent it meanwhile, or is sending it
            return "skipped"
        answer = self.staged.link()
        log.info("outbox %s delivered to %s: %s", self.outbox_id, self.rcpt_to, answer)
        return OutboxStatus.SENT.value

    def discard(self) -> None:
        """Drop the ``tmp/`` name (after :meth:`complete`, or when it will not come)."""
        self.staged.discard()


def stage_maildir_delivery(database: Database, transport: MaildirTransport,
                           settings: Settings, outbox_id: int
                           ) -> StagedDelivery | str | None:
    """Read the row (no lock), compose a recipe, write the file under ``tmp/``: what
    :meth:`StagedDelivery.complete` then makes visible; "skipped" when the row is gone
    or done, None when the general path must take it (a failure it records)."""
    with database.read_engine.connect() as connection:
        row = connection.execute(_PEEK, {"outbox_id": outbox_id,
                                         "stale_before": utcnow() - STALE_SENDING}
                                 ).one_or_none()
    if row is None:
        return "skipped"
    mail_from, rcpt_to, raw, sealed, recipe = (str(row[0]), str(row[1]), bytes(row[2]), row[3],
                                               row[4])
    statement: Update = _SENT_NOW
    parameters: dict[str, Any] = {}
    try:
        if recipe is not None:  # composed here, outside any transaction, and kept when sent
            composed = _composed(settings, recipe)
            raw, sealed = composed.live, None
            statement = _SENT_NOW_COMPOSED
            parameters = {"raw": composed.raw, "subject": composed.subject}
        if sealed is not None:
            raw = unseal(load_secret(settings), bytes(sealed))
        staged = transport.stage(mail_from, rcpt_to, dkim_sign(settings, raw))
    except (SealError, TemporaryFailure, CompositionFailed):
        return None  # the general path records it
    return StagedDelivery(outbox_id, rcpt_to, staged, statement, parameters)
