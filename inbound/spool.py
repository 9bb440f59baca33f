"""The durable spool: raw bytes and envelope committed before anyone says "accepted".

One row per distinct message.  The de-duplication key is the Message-ID and the
From address (a retried delivery, or the same mail by SMTP and IMAP, is stored
once); a message without Message-ID falls back to its content hash.  Writes go
through ``INSERT … ON CONFLICT DO NOTHING`` so concurrent duplicates cannot race.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.errors import StorageError
from gateway.models import SpoolEntry, SpoolState, utcnow
from inbound.addresses import EnvelopeRole, address_key, copy_carries_a_role, is_storable
from inbound.intake_priority import LanedDatabase
from inbound.parsing.message_ids import normalize_message_id

__all__ = [
    "COPY_ROLES", "HUB_SOURCE", "LATER_COPIES", "SpoolWriter", "StoredMessage", "dedupe_key",
    "header_identity",
    "store_hub_message", "store_message",
]

log = logging.getLogger(__name__)

HUB_SOURCE = "web"
"""The ``source`` of messages written in the support hub.  Only :func:`store_hub_message`
may store it, or the ``hub`` option naming the signed-in person: the sender authority
trusts exactly that pair (``gateway/trust/sender_auth.py``), so no intake edge can."""


@dataclass(frozen=True)
class StoredMessage:
    spool_id: int
    duplicate: bool
    message_id: str | None
    added: tuple[str, ...] = ()
    """A duplicate's envelope recipients that were not on the stored row, added to it
    (the row was not processed yet): one processing sees them all."""
    copy_of: int | None = None
    """This row is a later copy of the message of that row (see :func:`store_message`)."""


def _header_block(raw: bytes) -> bytes:
    """The bytes up to and including the first blank line (at most 256 KB).

    The header parser would otherwise decode and split the whole body as well: on
    the event loop's critical path that was 5 ms of a 100 KB message.  Cutting
    after any blank line is safe: the real end of the header block is at or before it.
    """
    crlf = raw.find(b"\r\n\r\n", 0, 262144)
    # a bare-LF blank line can only end the block if it comes before the CRLF one
    lf = raw.find(b"\n\n", 0, crlf if crlf >= 0 else 262144)
    ends = [i for i in (crlf, lf) if i >= 0]
    return raw[:min(ends) + 4] if ends else raw[:262144]


_PLAIN_FIELDS = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n)*")
"""ASCII header fields (name, colon, value, folded lines) up to the blank line."""
_IDENTITY_FIELD = re.compile(rb"^(message-id|from):([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
                             re.IGNORECASE | re.MULTILINE)


def _plain_identity_fields(block: bytes) -> tuple[str | None, list[str]] | None:
    """The first Message-ID value and every From value of a well-formed ASCII block,
    exactly as the compat32 header parser gives them; None for anything unusual."""
    fields = _PLAIN_FIELDS.match(block)
    end = fields.end() if fields else 0
    if not block.isascii() or not (end == len(block) or block.startswith((b"\r\n", b"\n"), end)):
        return None
    message_id: str | None = None
    senders: list[str] = []
    for field in _IDENTITY_FIELD.finditer(block, 0, end):
        value = field.group(2).decode("ascii").lstrip(" \t")
        if field.group(1).lower() == b"from":
            senders.append(value)
        elif message_id is None:
            message_id = value
    return message_id, senders


def _parsed_identity_fields(block: bytes) -> tuple[str | None, list[str]]:
    headers = BytesHeaderParser(policy=compat32).parsebytes(block)
    return (str(headers.get("Message-ID") or "") or None,
            [str(v) for v in headers.get_all("From") or []])


def header_identity(raw: bytes, *, fast: bool = True) -> tuple[str | None, str]:
    """The Message-ID and lower-cased From address, read from the header block only.

    A well-formed ASCII block (nearly all mail) is read with two regular expressions;
    anything else goes through the standard library's header parser, which the fast
    path matches value for value (a tenth of intake's CPU on the event loop).
    ``fast=False`` always uses the parser (the tests compare the two).
    """
    block = _header_block(raw)
    try:
        fields = _plain_identity_fields(block) if fast else None
        raw_id, senders = fields if fields is not None else _parsed_identity_fields(block)
        message_id = normalize_message_id(raw_id or "")
        addresses = getaddresses(senders)
        sender = next((addr.lower() for _name, addr in addresses if addr), "")
    except Exception:  # noqa: BLE001 - any junk header simply gives no identity
        return None, ""
    return message_id, sender


_DELIVERY_FIELDS = re.compile(
    rb"(?:(?:delivered-to|x-original-to|return-path):[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+",
    re.IGNORECASE)
"""The fields an MTA puts on top of each copy it delivers (Postfix's pipe flags ``D``,
``O``, ``R``; local delivery agents alike)."""
_DELIVERY_SCAN = 65536


def dedupe_key(raw: bytes, message_id: str | None, sender: str, sha256: str) -> str:
    """Message-ID and From; without a Message-ID the bytes, less the delivery fields on top.

    An MTA that pipes one recipient at a time (``gateway_destination_recipient_limit = 1``)
    writes each copy its own ``Delivered-To``: the copies are one message, as SMTP's one
    transaction for all recipients was.
    """
    if message_id:
        return hashlib.sha256(f"mid\0{message_id}\0{sender}".encode()).hexdigest()
    # Looked for in the first 64 KB only: a message of nothing but such fields cost the
    # event loop seconds (they are a few lines; a longer run is no MTA's).
    delivery = _DELIVERY_FIELDS.match(raw, 0, _DELIVERY_SCAN)
    if delivery is not None and delivery.end() < len(raw):
        sha256 = hashlib.sha256(memoryview(raw)[delivery.end():]).hexdigest()
    return hashlib.sha256(f"raw\0{sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class _Pending:
    values: dict[str, Any]
    message_id: str | None


def _prepare(raw: bytes, *, source: str, mail_from: str = "", rcpt_tos: Sequence[str] = (),
             peer: str = "", options: dict[str, Any] | None = None,
             _hub: bool = False) -> _Pending:
    if not _hub and (source.strip().lower() == HUB_SOURCE or "hub" in (options or {})):
        raise ValueError("only the support hub may spool source 'web' or the 'hub' option")
    if not all(map(is_storable, (source, mail_from, peer, *rcpt_tos))):
        # Refused here, alone: in the spool writer's batch it failed everyone's commit.
        raise ValueError("an envelope that is not UTF-8 or holds a control character "
                         "cannot be spooled")
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, sender = header_identity(raw)
    values = {
        "dedupe_key": dedupe_key(raw, message_id, sender, sha256), "source": source[:255],
        "mail_from": mail_from[:512], "rcpt_tos": list(rcpt_tos), "peer": peer[:128],
        "message_id": message_id[:998] if message_id else None, "sha256": sha256,
        "size": len(raw), "raw": raw, "received_at": utcnow(), "state": SpoolState.RECEIVED,
        "reason": "", "attempts": 0, "trace": [], "options": options or {},
    }
    return _Pending(values, message_id)


_COLUMNS = ("dedupe_key", "source", "mail_from", "rcpt_tos", "peer", "message_id", "sha256",
            "size", "raw", "received_at", "state", "reason", "attempts", "trace", "options")
# One statement text for SQLite and PostgreSQL, compiled once (the dialect-specific
# insert() constructs are not cacheable and were recompiled for every message).
_INSERT = text(
    f"INSERT INTO spool ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=SpoolEntry.__table__.c[c].type) for c in _COLUMNS))


def _insert(session: Session, pending: _Pending) -> StoredMessage:
    """Insert unless the de-dup key exists (also within this transaction)."""
    new_id = session.execute(_INSERT, pending.values).scalar_one_or_none()
    if new_id is not None:
        return StoredMessage(int(new_id), False, pending.message_id)
    existing = session.scalar(select(SpoolEntry.id).where(
        SpoolEntry.dedupe_key == pending.values["dedupe_key"]))
    if existing is None:  # pragma: no cover - the conflicting row vanished: an outage
        raise StorageError("duplicate spool row disappeared")
    log.info("duplicate delivery of message-id %s stored once as spool %s",
             pending.message_id, existing)
    return StoredMessage(int(existing), True, pending.message_id)


def store_message(database: Database, raw: bytes, *,
                  role_of: Callable[[str], EnvelopeRole] | None = None,
                  max_recipients: int | None = None, **envelope: Any) -> StoredMessage:
    """Commit one message to the spool (fsynced) and return its id; StorageError if we cannot.

    ``envelope``: ``source`` (required), ``mail_from``, ``rcpt_tos``, ``peer``, ``options``.

    ``role_of`` (the pipe, whose MTA delivers one copy per recipient): a copy of a stored
    message keeps what its envelope recipient asks (:func:`_later_copy`) instead of being
    only a duplicate; ``max_recipients``: all the copies of one message together get no
    more recipients than one SMTP transaction takes (a copy beyond is a duplicate).
    """
    pending = _prepare(raw, **envelope)
    try:
        with database.transaction(durable=True) as session:
            stored = _insert(session, pending)
            if stored.duplicate and role_of is not None:
                stored = _later_copy(session, pending, stored, role_of, max_recipients)
            return stored
    except SQLAlchemyError as error:
        # The caller (gateway ingest) reports the one-line reason; the details are for debugging.
        log.debug("spool write failed (%s): %s", type(error).__name__, error)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"the spool could not commit the message ({reason})") from error


#: The first copy's ``options`` key listing its later copies' rows (``id``, ``rcpt_tos``).
LATER_COPIES = "later_copies"
#: A later copy's ``options`` key: the :class:`EnvelopeRole` values it is processed for.
COPY_ROLES = "copy_roles"

_FIRST_COPY = (select(SpoolEntry.state, SpoolEntry.rcpt_tos, SpoolEntry.options)
               .where(SpoolEntry.id == bindparam("spool_id")).with_for_update())


def _later_copy(session: Session, pending: _Pending, stored: StoredMessage,
                role_of: Callable[[str], EnvelopeRole],
                max_recipients: int | None = None) -> StoredMessage:
    """A copy of the message of row ``stored`` with envelope recipients that row lacks.

    Postfix's pipe hands one recipient per delivery: one message to ``support@`` and
    ``support+access@`` (or ``unsubscribe+TOKEN@``) arrives as two copies, and the second
    was a duplicate whose recipient was lost, where only the envelope says what to do.
    Now, with the same effect as one SMTP transaction with both RCPTs:

    - the first copy is not processed yet: its row gets the new recipients (one
      processing sees them all, exactly as SMTP's one row);
    - it is processed (or ignored, quarantined): a row of its own, ``options.copy_of``,
      only when the new recipients ask something the first copy's processing did not do
      (:func:`inbound.addresses.copy_carries_a_role`); processing does only that
      (``gateway.pipeline.processing``), so nothing is done twice.  Its de-dup key is the
      first copy's with those recipients: the MTA's retry of this copy is its duplicate.

    Anything else stays a duplicate, stored once, as before.  The first row is read
    ``FOR UPDATE``: on PostgreSQL a processing in progress is waited for; on SQLite this
    transaction holds the one write lock.

    The first row keeps the list of its later copies (``options.later_copies``: id and
    recipients of each): a copy is compared with every row of the message so far, so the
    message itself is processed by one row only (after an unsubscribe-only first copy, the
    first later copy to carry it; never a third one), and the access request is made once.
    The copy's roles (``options.copy_roles``) are decided here, under the first row's lock,
    and are all its processing does.
    """
    first = session.execute(_FIRST_COPY, {"spool_id": stored.spool_id}).one()
    later_copies = list((first.options or {}).get(LATER_COPIES, []))
    earlier = [first.rcpt_tos, *(copy["rcpt_tos"] for copy in later_copies)]
    known = {address_key(address) for addresses in earlier for address in addresses}
    new = [address for address in pending.values["rcpt_tos"] if address_key(address) not in known]
    if max_recipients is not None and len(known) + len(new) > max_recipients:
        # As SMTP's 452 beyond max_recipients: one message to a thousand unsubscribe+X@
        # addresses, piped as a thousand copies, is not a thousand rows (or recipients).
        log.warning("spool %s: a later copy's recipients %s beyond max_recipients dropped",
                    stored.spool_id, new[max(0, max_recipients - len(known)):])
        new = new[:max(0, max_recipients - len(known))]
    if not new:
        return stored
    if first.state == SpoolState.RECEIVED:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id)
                        .values(rcpt_tos=[*first.rcpt_tos, *new]))
        log.info("spool %s: a later copy adds the recipients %s", stored.spool_id, new)
        return replace(stored, added=tuple(new))
    roles = copy_carries_a_role(earlier, new, role_of)
    if not roles:
        return stored
    key = hashlib.sha256("\0".join(
        ["copy", pending.values["dedupe_key"], *sorted(map(address_key, new))]).encode()
    ).hexdigest()
    values = dict(pending.values, dedupe_key=key, rcpt_tos=new,
                  options={**pending.values["options"], "copy_of": stored.spool_id,
                           COPY_ROLES: sorted(role.value for role in roles)})
    copy = _insert(session, _Pending(values, pending.message_id))
    if not copy.duplicate:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id).values(
            options={**(first.options or {}), LATER_COPIES: [
                *later_copies, {"id": copy.spool_id, "rcpt_tos": new}]}))
        log.info("spool %s: a later copy of spool %s for %s", copy.spool_id, stored.spool_id,
                 new)
    return replace(copy, copy_of=stored.spool_id)


def store_hub_message(database: Database, raw: bytes, *, person: str,
                      rcpt_tos: Sequence[str]) -> StoredMessage:
    """Commit a message the support hub wrote for the signed-in ``person`` (the server
    decided who that is); see :data:`HUB_SOURCE`."""
    pending = _prepare(raw, source=HUB_SOURCE, mail_from=person, rcpt_tos=rcpt_tos,
                       peer="hub", options={"hub": {"person": person}}, _hub=True)
    try:
        with database.transaction(durable=True) as session:
            return _insert(session, pending)
    except SQLAlchemyError as error:
        raise StorageError("the spool could not commit the hub's message") from error


class SpoolWriter:
    """Group commit for SMTP intake: messages arriving together share one durable commit.

    Each SMTP session hands its message to one writer thread and waits for the
    future; the writer takes everything queued at that moment (up to ``max_batch``)
    into one transaction, so one fsync answers many 250s.  If the commit fails,
    every message of the batch gets StorageError (451) and its client retries.
    """

    def __init__(self, database: Database, max_batch: int = 64) -> None:
        self.database = database
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[_Pending, Future[StoredMessage]] | None] = queue.Queue()
        self._sqlite = _SqliteBatchInsert(database)
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    def submit(self, raw: bytes, **envelope: Any) -> Future[StoredMessage]:
        future: Future[StoredMessage] = Future()
        self._queue.put((_prepare(raw, **envelope), future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._sqlite.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[tuple[_Pending, Future[StoredMessage]]]) -> None:
        # A session that ended first (its client left) cancelled its future: that message
        # was never answered, so it is not stored.  The others can no longer be cancelled,
        # which would have made set_result raise and this thread die.
        batch = [(pending, future) for pending, future in batch
                 if future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            if self.database.is_sqlite:
                with _writer_lane(self.database):
                    results = self._sqlite.insert([pending for pending, _future in batch])
                self._sqlite.sync()  # outside the lane: processing writes meanwhile
            else:
                with self.database.transaction(durable=True) as session:
                    results = [_insert(session, pending) for pending, _future in batch]
        except Exception as error:  # noqa: BLE001 - every waiter must get an answer
            log.error("spool batch of %s failed (%s): %s", len(batch), type(error).__name__,
                      error)
            for _pending, future in batch:
                future.set_exception(StorageError("the spool could not commit the message"))
            return
        for (_pending, future), result in zip(batch, results, strict=True):
            future.set_result(result)


def _wal_file(database: Database) -> Path | None:
    """The WAL file of a SQLite database on disk (None: a URI or memory database)."""
    return None if database.sqlite_file is None else Path(f"{database.sqlite_file}-wal")


def _writer_lane(database: Database) -> AbstractContextManager[None]:
    """The writer lane of a laned database (intake goes before processing children),
    else nothing: the raw connection below bypasses ``Database.transaction``."""
    if isinstance(database, LanedDatabase) and database.lane is not None:
        return database.lane.held()
    return nullcontext()


class _SqliteBatchInsert:
    """The spool insert of one batch on one raw sqlite3 connection of the writer thread.

    The same statement and the same column conversions as :data:`_INSERT` (each
    column type's own bind processor), without a Session and statement execution
    per message: the ORM layer cost more CPU than the insert and its share of the
    fsync.

    **Commit in the lane, fsync outside it.**  With ``synchronous=FULL`` SQLite fsyncs
    the WAL inside the commit, while it holds the one write lock (and our writer lane):
    about 4 ms on this machine kind, and under a steady stream of mail the spool writer
    commits back to back, so intake held the lane most of the time and processing
    waited.  So the batch commits with ``synchronous=NORMAL`` (the frames are written
    to the WAL, no fsync) and :meth:`sync` then fsyncs the WAL file after the lane is
    released, before any 250 is sent.  That is the same guarantee: the commit's frames
    are in the WAL, and the WAL is only rewritten from its start after a complete
    checkpoint, which (at NORMAL) fsyncs the database file first, so when :meth:`sync`
    returns the commit is on disk in the WAL or in the database.  SQLite never locks
    the WAL file itself (its locks are on the database and ``-shm`` files), so opening
    and closing it here drops none of SQLite's POSIX locks.  A database whose WAL file
    we cannot name (a URI, memory) commits with ``synchronous=FULL`` as before.
    """

    def __init__(self, database: Database) -> None:
        self.wal = _wal_file(database)
        self.engine = database.engine if self.wal is not None else database.durable_engine
        dialect = self.engine.dialect
        table = SpoolEntry.__table__
        self._processors = [(c, table.c[c].type.bind_processor(dialect)) for c in _COLUMNS]
        self._sql = str(_INSERT)
        self._connection: Any = None

    def sync(self) -> None:
        """Put the committed batch on disk (see the class docstring); OSError if we
        cannot, and then nobody is told the batch was stored."""
        if self.wal is None:
            return  # committed with synchronous=FULL
        descriptor = os.open(self.wal, os.O_RDONLY)  # exists: our connection is open
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _convert(self, values: dict[str, Any]) -> dict[str, Any]:
        return {c: (process(values[c]) if process is not None else values[c])
                for c, process in self._processors}

    def insert(self, batch: list[_Pending]) -> list[StoredMessage]:
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        connection = self._connection
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            results = []
            for pending in batch:
                row = cursor.execute(self._sql, self._convert(pending.values)).fetchone()
                if row is not None:
                    results.append(StoredMessage(int(row[0]), False, pending.message_id))
                    continue
                existing = cursor.execute("SELECT id FROM spool WHERE dedupe_key = ?",
                                          (pending.values["dedupe_key"],)).fetchone()
                if existing is None:  # pragma: no cover - the conflicting row vanished
                    raise StorageError("duplicate spool row disappeared")
                log.info("duplicate delivery of message-id %s stored once as spool %s",
                         pending.message_id, existing[0])
                results.append(StoredMessage(int(existing[0]), True, pending.message_id))
            cursor.execute("COMMIT")
            cursor.close()
        except BaseException:
            # Whatever failed (a read-only file, a full disk), start the next batch on a
            # fresh connection; closing an invalidated one rolls the transaction back.
            self._connection = None
            connection.invalidate()
            raise
        return results

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
