"""Run one spool row through the pipeline with an exactly-once effect.

The spool row's state change commits in the same transaction as the ticket,
message and outbox rows it produces, and the row is locked while it is worked
on, so a job that runs twice (redelivery, sweep, two workers) changes nothing
the second time.  Interrupted attempts are counted: a message that keeps killing
the worker is quarantined after ``max_processing_attempts``.  In a worker thread a
separate, earlier commit counts every attempt (a crash takes the counter's process
with it); in a processing child the parent that saw the child die counts it
(:func:`record_interruption`), and the child only reads the row, which on SQLite
spares each message a turn of the one writer lane.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, defer

from gateway.config import Settings
from gateway.db import Database
from gateway.models import SpoolEntry, SpoolState, utcnow
from gateway.pipeline.analysis_pool import (
    AnalysisCrashed,
    BudgetExceeded,
    analyze_in_thread,
)
from gateway.pipeline.context import context_for
from gateway.pipeline.flow import StepFailed, run_pipeline
from gateway.pipeline.later_copy import run_later_copy
from gateway.prepared import Prepared
from gateway.services import Services
from gateway.trust.dkim_dns import key_lookup
from gateway.trust.sender_auth import SenderTrust, dkim_verdict
from inbound.parsing.analysis import Analysis

__all__ = ["ProcessOutcome", "dkim_evidence", "process_spool_entry", "quarantine",
           "record_interruption"]

# The raw bytes (up to the SIZE limit) are read once, for the analysis; the row
# loads that lock it need only its state.
_WITHOUT_RAW = [defer(SpoolEntry.raw)]

# The attempt counter's usual case, built once (see ``_count_attempt``).
_SPOOL = cast(Table, SpoolEntry.__table__)
_COUNT = (
    update(_SPOOL)
    .where(_SPOOL.c.id == bindparam("spool_id"), _SPOOL.c.state == SpoolState.RECEIVED,
           _SPOOL.c.attempts < bindparam("limit", type_=_SPOOL.c.attempts.type))
    .values(attempts=_SPOOL.c.attempts + 1)
    .returning(_SPOOL.c.raw, _SPOOL.c.mail_from))
# … and its read alone, where the parent counts interruptions (``count_attempt=False``).
_READ = (
    select(_SPOOL.c.raw, _SPOOL.c.mail_from)
    .where(_SPOOL.c.id == bindparam("spool_id"), _SPOOL.c.state == SpoolState.RECEIVED,
           _SPOOL.c.attempts < bindparam("limit", type_=_SPOOL.c.attempts.type)))
_INTERRUPTED = (
    update(_SPOOL)
    .where(_SPOOL.c.id == bindparam("spool_id"), _SPOOL.c.state == SpoolState.RECEIVED)
    .values(attempts=_SPOOL.c.attempts + 1)
    .returning(_SPOOL.c.attempts))

# The pipeline's frame, built once: the row locked and read as Core (FOR UPDATE on
# PostgreSQL; SQLite's write transaction is the lock), and where processing left it
# written back in one UPDATE (see ``_run_pipeline``).
_LOCKED = Prepared(
    select(*(column for column in _SPOOL.c if column.key != "raw"))
    .where(_SPOOL.c.id == bindparam("spool_id"))
    .with_for_update())
_SETTLED = Prepared(
    update(_SPOOL)
    .where(_SPOOL.c.id == bindparam("spool_id"))
    .values(state=bindparam("state", type_=_SPOOL.c.state.type),
            reason=bindparam("reason", type_=_SPOOL.c.reason.type),
            processed_at=bindparam("processed_at", type_=_SPOOL.c.processed_at.type),
            ticket_number=bindparam("ticket_number", type_=_SPOOL.c.ticket_number.type),
            trace=bindparam("trace", type_=_SPOOL.c.trace.type),
            attempts=_SPOOL.c.attempts + bindparam("uncounted", type_=_SPOOL.c.attempts.type)))
_NEW_SPOOL_ENTRY = SpoolEntry.__mapper__.class_manager.new_instance

log = logging.getLogger(__name__)


@dataclass
class ProcessOutcome:
    state: str
    reason: str = ""
    ticket_number: int | None = None
    outbox_ids: list[int] = field(default_factory=list)


def quarantine(database: Database, spool_id: int, reason: str, *,
               uncounted_attempt: bool = False) -> None:
    """Park the row with ``reason``; ``uncounted_attempt``: the attempt that ends here was
    not counted when it began (a processing child's), so count it now."""
    with database.transaction() as session:
        entry = session.get(SpoolEntry, spool_id, with_for_update=True, options=_WITHOUT_RAW)
        if entry is not None and entry.state == SpoolState.RECEIVED:
            if uncounted_attempt:
                entry.attempts += 1
            entry.state = SpoolState.QUARANTINED
            entry.reason = reason[:4000]
            entry.processed_at = utcnow()
    log.warning("spool %s quarantined: %s", spool_id, reason)


def _interrupted_reason(attempts: int) -> str:
    return (f"processing was interrupted {attempts} times (crash or time limit); kept for "
            "inspection and replay")


def record_interruption(database: Database, settings: Settings, spool_id: int,
                        failure: str = "") -> ProcessOutcome | None:
    """Count an attempt that a processing child did not finish (it died, was killed, or
    its transaction failed with ``failure``: an error of the database that is no outage,
    such as a value it refuses), as the parent saw it; the outcome when that was the last
    one allowed (the row is quarantined), else None (the job's retry processes it again).
    Without this a message whose every attempt fails so would be retried for ever."""
    with database.writing() as connection:
        attempts = connection.execute(_INTERRUPTED, {"spool_id": spool_id}).scalar()
    if attempts is None or attempts < settings.max_processing_attempts:
        return None
    reason = (f"processing failed {attempts} times (last: {failure}); kept for inspection "
              "and replay" if failure else _interrupted_reason(attempts))
    quarantine(database, spool_id, reason)
    return ProcessOutcome(SpoolState.QUARANTINED.value, reason)


def _count_attempt(database: Database, services: Services, spool_id: int, *,
                   count: bool = True) -> ProcessOutcome | tuple[bytes, str]:
    """Bump the attempt counter (unless ``count`` is False: then only read); return an
    outcome when there is nothing (more) to do, else the raw bytes and envelope sender
    to analyse.

    The usual case is one ``UPDATE … RETURNING`` (the count and the read of the raw
    bytes in one statement) on a bare connection, or a plain ``SELECT`` that takes no
    lock; the ORM transaction below decides every other case (a second look, under the
    row lock, whose rare race with a change in between it handles).
    """
    limit = services.settings.max_processing_attempts
    if count:
        with database.writing() as connection:
            counted = connection.execute(_COUNT, {"spool_id": spool_id, "limit": limit}
                                         ).one_or_none()
    else:
        with database.read_engine.connect() as connection:
            counted = connection.execute(_READ, {"spool_id": spool_id, "limit": limit}
                                         ).one_or_none()
    if counted is not None:
        return bytes(counted.raw), str(counted.mail_from)
    with database.transaction() as session:
        entry = session.get(SpoolEntry, spool_id, with_for_update=True, options=_WITHOUT_RAW)
        if entry is None:
            log.warning("spool %s does not exist", spool_id)
            return ProcessOutcome("missing", "no such spool row")
        if entry.state != SpoolState.RECEIVED:
            return ProcessOutcome(entry.state.value, entry.reason, entry.ticket_number)
        if entry.attempts >= limit:
            entry.state = SpoolState.QUARANTINED
            entry.reason = _interrupted_reason(entry.attempts)
            return ProcessOutcome(entry.state.value, entry.reason)
        if count:  # not reached unless the row changed between the two statements
            entry.attempts += 1
        return entry.raw, entry.mail_from


def process_spool_entry(database: Database, services: Services, spool_id: int, *,
                        count_attempt: bool = True) -> ProcessOutcome:
    """Process one spool row; database outages propagate so that the job is retried.

    ``count_attempt=False``: the caller counts interruptions itself (a processing child,
    whose parent calls :func:`record_interruption` when it dies), and the attempt is
    counted where it ends, in the transaction that settles the row; either way
    ``attempts`` is the number of attempts made."""
    counted = _count_attempt(database, services, spool_id, count=count_attempt)
    if isinstance(counted, ProcessOutcome):
        return counted
    raw, mail_from = counted
    uncounted = not count_attempt
    try:
        # in this thread: CPU under the GIL, so in the lane; in a child: outside it
        with services.turn() if services.analyzer is None else nullcontext():
            analysis = _analyse(services, raw, mail_from)  # outside the write lock
    except BudgetExceeded as over:
        quarantine(database, spool_id, str(over), uncounted_attempt=uncounted)
        return ProcessOutcome(SpoolState.QUARANTINED.value, str(over))
    except StepFailed as failure:
        log.exception("spool %s: %s", spool_id, failure)
        quarantine(database, spool_id, str(failure), uncounted_attempt=uncounted)
        return ProcessOutcome(SpoolState.QUARANTINED.value, str(failure))
    dkim = dkim_evidence(services.settings, raw, mail_from, analysis)  # waits on DNS
    with services.turn():
        return _run_pipeline(database, services, spool_id, raw, mail_from, analysis, dkim,
                             uncounted_attempt=uncounted)


def dkim_evidence(settings: Settings, raw: bytes, mail_from: str, analysis: Analysis
                  ) -> SenderTrust | None:
    """The DKIM verdict when ``sender_authentication = "dkim"``: asked outside the writer
    lane and every transaction, since its key lookups wait on name servers (at most
    ``dkim_dns_seconds`` in all), and a slow one must hold up this message alone."""
    if settings.sender_authentication != "dkim":
        return None
    return dkim_verdict(raw, analysis.parsed.from_address or mail_from,
                        key_lookup(settings.dns_nameservers, settings.dkim_dns_seconds))


def _analyse(services: Services, raw: bytes, mail_from: str) -> Analysis:
    """The analysis, in a child process when a worker runs one (else here); a bug in it
    is StepFailed("parse"), a crashed child propagates (the job is retried)."""
    try:
        if services.analyzer is not None:
            return services.analyzer(raw, mail_from)
        return analyze_in_thread(services.settings, raw, mail_from)
    except (BudgetExceeded, AnalysisCrashed):
        raise
    except Exception as error:  # AnalysisError, or a bug here: parse never raises
        raise StepFailed("parse", error) from error


def _locked_entry(session: Session, spool_id: int, raw: bytes) -> SpoolEntry | None:
    """The spool row, locked, as a SpoolEntry the session does not track (None: gone).

    Why not ``session.get``: the ORM's load and the unit of work's two UPDATEs of the row
    (one in a mid-pipeline flush, the trace at the commit) cost more CPU than the SQL, and
    it all runs in the writer lane; the steps only read the row's columns and set its
    outcome (state, reason, processed_at, ticket_number), which ``_settle`` writes."""
    row = _LOCKED.first(session, {"spool_id": spool_id})
    if row is None:
        return None
    entry: SpoolEntry = _NEW_SPOOL_ENTRY()
    # as the ORM's loader fills an instance
    entry.__dict__.update(zip(_LOCKED.keys, row, strict=True), raw=raw)
    return entry


def _settle(session: Session, entry: SpoolEntry, trace: list[dict[str, object]], *,
            uncounted_attempt: bool) -> None:
    """Write where processing left the row, in the pipeline's transaction (one UPDATE);
    the attempt too when it was not counted as it began (a processing child's)."""
    _SETTLED.rows(session, {
        "spool_id": entry.id, "state": entry.state, "reason": entry.reason,
        "processed_at": entry.processed_at, "ticket_number": entry.ticket_number,
        "trace": trace, "uncounted": int(uncounted_attempt)})


def _run_pipeline(database: Database, services: Services, spool_id: int, raw: bytes,
                  mail_from: str, analysis: Analysis, dkim: SenderTrust | None, *,
                  uncounted_attempt: bool) -> ProcessOutcome:
    try:
        with database.transaction() as session:
            entry = _locked_entry(session, spool_id, raw)
            assert entry is not None
            if entry.state != SpoolState.RECEIVED:
                return ProcessOutcome(entry.state.value, entry.reason, entry.ticket_number)
            ctx = context_for(entry, session, services, analysis, dkim=dkim)
            first_copy = (entry.options or {}).get("copy_of")
            if first_copy is None:
                run_pipeline(ctx)
            else:  # a later copy of a processed message (an MTA's one-recipient pipe)
                run_later_copy(ctx, int(first_copy))
            if ctx.disposition is not None:
                entry.state = SpoolState(ctx.disposition.value)
                entry.reason = ctx.reason[:4000]
                entry.processed_at = services.now()
            entry.trace = ctx.trace
            _settle(session, entry, ctx.trace, uncounted_attempt=uncounted_attempt)
            if services.ride_along is not None:
                services.ride_along(session)
            outcome = ProcessOutcome(entry.state.value, entry.reason, entry.ticket_number,
                                     list(ctx.outbox_ids))
    except StepFailed as failure:
        log.exception("spool %s: %s", spool_id, failure)
        quarantine(database, spool_id, str(failure), uncounted_attempt=uncounted_attempt)
        return ProcessOutcome(SpoolState.QUARANTINED.value, str(failure))
    log.info("spool %s %s: %s", spool_id, outcome.state, outcome.reason)
    return outcome
