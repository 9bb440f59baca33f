"""The durable spool: raw bytes and envelope committed before anyone says "accepted".

One row per distinct message.  The de-duplication key is the Message-ID and the
From address (a retried delivery, or the same mail by SMTP and IMAP, is stored
once); a message without Message-ID falls back to its content hash.  Writes go
through ``INSERT … ON CONFLICT DO NOTHING`` so concurrent duplicates cannot race.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import Database
from gateway.errors import StorageError
from gateway.models import SpoolEntry, SpoolState, utcnow
from inbound.parse import normalize_message_id

__all__ = ["StoredMessage", "dedupe_key", "header_identity", "store_message"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredMessage:
    spool_id: int
    duplicate: bool
    message_id: str | None


def header_identity(raw: bytes) -> tuple[str | None, str]:
    """The Message-ID and lower-cased From address, read from the header block only."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:262144])
        message_id = normalize_message_id(str(headers.get("Message-ID") or ""))
        addresses = getaddresses([str(v) for v in headers.get_all("From") or []])
        sender = next((addr.lower() for _name, addr in addresses if addr), "")
    except Exception:  # noqa: BLE001 - any junk header simply gives no identity
        return None, ""
    return message_id, sender


def dedupe_key(raw: bytes, message_id: str | None, sender: str, sha256: str) -> str:
    if message_id:
        return hashlib.sha256(f"mid\0{message_id}\0{sender}".encode()).hexdigest()
    return hashlib.sha256(f"raw\0{sha256}".encode()).hexdigest()


def store_message(
    database: Database,
    raw: bytes,
    *,
    source: str,
    mail_from: str = "",
    rcpt_tos: Sequence[str] = (),
    peer: str = "",
    options: dict[str, Any] | None = None,
) -> StoredMessage:
    """Commit one message to the spool and return its id; raise StorageError if we cannot."""
    sha256 = hashlib.sha256(raw).hexdigest()
    message_id, sender = header_identity(raw)
    key = dedupe_key(raw, message_id, sender, sha256)
    values = {
        "dedupe_key": key, "source": source[:16], "mail_from": mail_from[:512],
        "rcpt_tos": list(rcpt_tos), "peer": peer[:128],
        "message_id": message_id[:998] if message_id else None, "sha256": sha256,
        "size": len(raw), "raw": raw, "received_at": utcnow(), "state": SpoolState.RECEIVED,
        "reason": "", "attempts": 0, "trace": [], "options": options or {},
    }
    try:
        with database.transaction() as session:
            dialect = session.get_bind().dialect.name
            builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (builder(SpoolEntry).values(**values)
                         .on_conflict_do_nothing(index_elements=["dedupe_key"])
                         .returning(SpoolEntry.id)) if dialect in {"postgresql", "sqlite"} \
                else insert(SpoolEntry).values(**values).returning(SpoolEntry.id)
            new_id = session.execute(statement).scalar_one_or_none()
            if new_id is not None:
                return StoredMessage(int(new_id), False, message_id)
            existing = session.scalar(select(SpoolEntry.id).where(SpoolEntry.dedupe_key == key))
    except SQLAlchemyError as error:
        log.error("spool write failed (%s): %s", type(error).__name__, error)
        raise StorageError("the spool could not commit the message") from error
    if existing is None:  # pragma: no cover - conflict row vanished: treat as outage
        raise StorageError("duplicate spool row disappeared")
    log.info("duplicate delivery of message-id %s stored once as spool %s", message_id, existing)
    return StoredMessage(int(existing), True, message_id)
