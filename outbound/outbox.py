"""Insert outbox rows in the caller's transaction; delivery happens after commit.

The row holds the final bytes, so a retry sends exactly what was composed, and
the Message-ID is indexed so that answers to it thread back to the ticket.  Given
the gateway key, a mail with secret links is stored redacted in ``raw`` and sealed
live in ``sealed`` until delivery (``outbound/sealing.py``); callers that put such
links in mail must pass ``secret``.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from gateway.models import OutboxItem, OutboxStatus, utcnow
from gateway.prepared import Prepared
from gateway.tickets import as_loaded, record_message_ref
from outbound.compose import message_bytes
from outbound.recipe import Recipe
from outbound.sealing import redact, seal

__all__ = ["add_recipe_to_outbox", "add_to_outbox", "add_unwritable_to_outbox", "answering",
           "mailbox_of"]

_OUTBOX = cast(Table, OutboxItem.__table__)
_INSERT = Prepared(insert(_OUTBOX).returning(_OUTBOX.c.id),
                   columns=[column.key for column in _OUTBOX.c if column.key != "id"])


_FOR_VERIFIED = "outbox.for_verified"


def answering(session: Session, *, verified: bool) -> None:
    """Every row this session's transaction adds from now on answers mail whose sender the
    sender authority did (or did not) vouch for: ``for_verified``, what the answer gate
    counts for a verified sender.  The pipeline says it once per message (the
    ``authenticate`` step); rows queued anywhere else answer no verified mail."""
    session.info[_FOR_VERIFIED] = verified


def mailbox_of(address: str) -> tuple[str, str]:
    """``(mailbox, domain)``: ``Victim+1@Example.COM`` → ``victim@example.com``, ``example.com``.

    One person's mailbox whatever the case or ``+detail`` a sender writes it with."""
    local, _, domain = address.strip().casefold().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}", domain


def add_to_outbox(session: Session, message: EmailMessage, *, kind: str, mail_from: str,
                  rcpt_to: str, ticket_number: int | None = None,
                  spool_id: int | None = None, secret: bytes | None = None,
                  minted_id: bool = False, bodies: Sequence[str] | None = None
                  ) -> OutboxItem:
    """Add the row (see the module docstring).  ``minted_id``: the message's Message-ID was
    just made by ``make_message_id``, so nothing can have indexed it before.  ``bodies``:
    the texts of its text parts as composed, for :func:`outbound.sealing.redact`.

    The row is written with one ``INSERT … RETURNING id`` on the session's connection, not
    by the unit of work (``add`` + ``flush``, a third of the cost of queueing a mail, and a
    flush of whatever else was pending); the returned object is the same row, persistent
    in the session as if it had been loaded, so callers read ``item.id``, ``item.raw`` …
    without another statement.  The outbox has no foreign keys, so nothing pending has to
    reach the database before it."""
    message_id = str(message["Message-ID"]).strip().strip("<>")
    live = message_bytes(message)
    redacted = redact(message, bodies=bodies) if secret is not None else None
    return _insert(session, {
        "kind": kind, "ticket_number": ticket_number, "spool_id": spool_id,
        "mail_from": mail_from, "rcpt_to": rcpt_to, "message_id": message_id,
        "subject": str(message["Subject"] or ""),
        "raw": live if redacted is None else message_bytes(redacted),
        "sealed": None if redacted is None or secret is None else seal(secret, live),
        "recipe": None}, minted_id=minted_id)


def add_recipe_to_outbox(session: Session, recipe: Recipe, *, subject: str, kind: str,
                         ticket_number: int | None = None, spool_id: int | None = None
                         ) -> OutboxItem:
    """Add a row to be composed at delivery (``outbound/recipe.py``): ``raw`` stays empty
    until then.  Its Message-ID was just made by ``make_message_id``."""
    return _insert(session, {
        "kind": kind, "ticket_number": ticket_number, "spool_id": spool_id,
        "mail_from": recipe.envelope.from_address, "rcpt_to": recipe.envelope.to_address,
        "message_id": recipe.envelope.message_id.strip().strip("<>"), "subject": subject,
        "raw": b"", "sealed": None, "recipe": recipe.to_json()}, minted_id=True)


def add_unwritable_to_outbox(session: Session, *, kind: str, mail_from: str, rcpt_to: str,
                             message_id: str, subject: str, reason: str,
                             ticket_number: int | None = None, spool_id: int | None = None
                             ) -> OutboxItem:
    """A mail that cannot be written at all (its recipient is no address a mail header can
    carry): a ``dead`` row with the reason, for operators, instead of an error that would
    fail the whole message that queued it (an agent's reply, a job's run)."""
    return _insert(session, {
        "kind": kind, "ticket_number": ticket_number, "spool_id": spool_id,
        "mail_from": mail_from, "rcpt_to": rcpt_to, "message_id": message_id.strip("<>"),
        "subject": subject, "raw": b"", "sealed": None, "recipe": None},
        minted_id=True, dead=reason)


def _insert(session: Session, values: dict[str, Any], *, minted_id: bool,
            dead: str | None = None) -> OutboxItem:
    now = utcnow()
    values["rcpt_mailbox"], values["rcpt_domain"] = mailbox_of(values["rcpt_to"])
    values["for_verified"] = session.info.get(_FOR_VERIFIED, False)
    values.update({
        "status": OutboxStatus.PENDING if dead is None else OutboxStatus.DEAD,
        "attempts": 0, "last_error": dead or "",
        "created_at": now, "updated_at": now, "next_attempt_at": now if dead is None else None,
        "sent_at": None, "bounced_at": None})
    values["id"] = _INSERT.scalar(session, values)
    item = as_loaded(session, OutboxItem, values)  # nothing for a flush to write
    if values["ticket_number"] is not None and dead is None:
        record_message_ref(session, values["message_id"], values["ticket_number"], "out",
                           known_new=minted_id)
    return item
