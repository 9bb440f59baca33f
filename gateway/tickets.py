"""Ticket numbers, keyed reply tokens and the Message-ID index used for threading.

A reply token names a ticket and the participant the mail was sent to, and
carries an HMAC so that nobody can invent one for another ticket (DESIGN §8).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Insert, Table, bindparam, insert, inspect, select
from sqlalchemy.orm import Session, class_mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from gateway.db import flush_if_pending
from gateway.models import MessageRef, Participant, Ticket
from gateway.prepared import Prepared

__all__ = [
    "REPLY_PREFIX",
    "TICKET_TAG",
    "normalise_subject",
    "NOTE_SUFFIX",
    "ReplyToken",
    "as_loaded",
    "indexed_tickets",
    "insert_persistent",
    "insert_row",
    "insert_rows",
    "make_reply_token",
    "message_id_hash",
    "parse_address_detail",
    "parse_reply_token",
    "participant_for",
    "record_message_ref",
    "subject_tag",
    "writes_waiting",
]

_TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([a-z2-7]{16})$")
#: Our ``[#N]`` subject tag as clients give it back: some put blanks inside the brackets, and
#: Japanese input methods and phones make it full-width ("［＃４２］": ``\d`` and ``int``
#: read full-width digits).
TICKET_TAG = re.compile(
    r"[\[［][ \t\u3000]*[#＃][ \t\u3000]*(\d{1,12})[ \t\u3000]*[\]］]")
#: Reply and forward prefixes as clients write them: en Re/Fw/Fwd, de AW/WG/Antwort/
#: Weiterleitung, nl Antw/Doorst, it R/RIF/I, nordic SV/VS/VB, fr TR, es RV, pt ENC, pl Odp/PD,
#: ja 返信/転送, zh 回复/转发/答复, ko 회신/전달, with a count ("Re[2]:", "Re^2:") and a
#: full-width colon (Japanese clients).
REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|vb|rif|r|i|antw|antwort|weiterleitung|doorst|tr|rv|enc|odp"
    r"|pd|返信|転送|回复|转发|答复|회신|전달)\s*(?:\[\d+\]|\^\d+)?\s*[:：]\s*)+",
    re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    ticket_number: int
    participant_id: int


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, f"reply-token:{body}".encode(), hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def make_reply_token(secret: bytes, ticket_number: int, participant_id: int) -> str:
    body = f"{ticket_number}-{participant_id}"
    return f"{body}-{_mac(secret, body)}"


def parse_reply_token(secret: bytes, token: str) -> ReplyToken | None:
    """The ticket and participant a token names, or None if it is malformed or forged."""
    match = _TOKEN.match(token.strip().lower())
    if not match:
        return None
    body = f"{match[1]}-{match[2]}"
    if not hmac.compare_digest(_mac(secret, body), match[3]):
        return None
    return ReplyToken(int(match[1]), int(match[2]))


NOTE_SUFFIX = "+note"


def parse_address_detail(secret: bytes, detail: str) -> tuple[ReplyToken | None, bool]:
    """The token in ``support+DETAIL@…`` and whether it is the internal-note address.

    ``support+TOKEN+note@domain`` is the same ticket's address for notes that are
    never sent to the customer."""
    detail = detail.strip().lower()
    note = detail.endswith(NOTE_SUFFIX)
    if note:
        detail = detail[: -len(NOTE_SUFFIX)]
    return parse_reply_token(secret, detail), note


def subject_tag(subject: str) -> int | None:
    """The ticket number of the first ``[#N]`` tag in a subject (the outermost, newest one)."""
    found = TICKET_TAG.findall(subject or "")
    return int(found[0]) if found else None


def _folded(subject: str) -> str:
    """Full-width forms as ASCII ("［＃４２］" → "[#42]"); ASCII-only subjects as they are."""
    return subject if subject.isascii() else unicodedata.normalize("NFKC", subject)


def normalise_subject(subject: str) -> str:
    """What a subject is about: case, width, whitespace, reply/forward prefixes (also
    after a tag: "[#4] AW: x") and ticket tags do not count."""
    text = TICKET_TAG.sub(" ", _folded(subject or "")).casefold()
    previous = None
    while previous != text:
        previous, text = text, REPLY_PREFIX.sub("", text)
    return " ".join(text.split())


def message_id_hash(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().lower().encode()).hexdigest()


_Row = TypeVar("_Row")

_INSERT_MESSAGE_REF = Prepared(insert(cast(Table, MessageRef.__table__)), columns=[
    column.key for column in MessageRef.__table__.columns if not column.primary_key])
# Built once (building a statement and its cache key cost more than running it):
_INDEXED_FOR_TICKET = Prepared(select(MessageRef.__table__.c.id).where(
    MessageRef.__table__.c.message_id_hash == bindparam("message_id_hash"),
    MessageRef.__table__.c.ticket_number == bindparam("ticket_number")))
_PARTICIPANT = select(Participant).where(
    Participant.ticket_number == bindparam("ticket_number"),
    Participant.email == bindparam("email"))


@dataclass(frozen=True)
class _InsertPlan:
    """A model's prebuilt ``INSERT … RETURNING <primary key>`` and its columns' defaults."""

    statement: Prepared
    """``INSERT … RETURNING <primary key>`` of every other column."""
    statement_without_returning: Insert
    primary_key: str
    columns: tuple[str, ...]
    column_set: frozenset[str]
    defaults: dict[str, Callable[[], Any]]
    none_is_a_value: frozenset[str]


_INSERT_PLANS: dict[type[Any], _InsertPlan] = {}


def _default_of(model: type[Any], column: Column[Any]) -> Callable[[], Any]:
    """The value a Python-side column default gives a new row (the flush's, via Core)."""
    default = column.default
    if isinstance(default, CallableColumnDefault):
        # Core wraps a function of no arguments (utcnow, list) to take a context
        function: Callable[[], Any] | None = getattr(default.arg, "__wrapped__", None)
        if function is not None:
            return function
    elif isinstance(default, ScalarElementColumnDefault):
        return functools.partial(_constant, default.arg)
    raise TypeError(f"{model.__name__}.{column.key}: unsupported default {default!r}")


def _constant(value: Any) -> Any:
    return value


def _insert_plan(model: type[Any]) -> _InsertPlan:
    plan = _INSERT_PLANS.get(model)
    if plan is not None:
        return plan
    table = cast(Table, model.__table__)
    [primary_key] = table.primary_key.columns
    columns = [column for column in table.columns if column is not primary_key]
    keys = tuple(column.key for column in columns)
    if any(prop.key != prop.columns[0].key for prop in inspect(model).column_attrs):
        raise TypeError(f"{model.__name__}: attribute and column names differ")
    defaults = {column.key: _default_of(model, column) for column in columns
                if column.default is not None}
    plan = _INSERT_PLANS[model] = _InsertPlan(
        statement=Prepared(insert(table).returning(primary_key), columns=keys),
        statement_without_returning=insert(table),
        primary_key=primary_key.key,
        columns=keys,
        column_set=frozenset(keys),
        defaults=defaults,
        none_is_a_value=frozenset(column.key for column in columns
                                  if column.type.should_evaluate_none))
    return plan


def writes_waiting(session: Session, model: type[Any]) -> bool:
    """Would the unit of work write something before a new ``model`` row: a new or deleted
    row of any table (an id to take first, a referenced row, a unique key to free), or a
    changed ``model`` row (its updates go before its inserts)?"""
    return bool(session.new or session.deleted) or any(
        isinstance(row, model) for row in session.dirty)


def insert_row(session: Session, model: type[Any], values: Mapping[str, Any]
               ) -> tuple[Any, dict[str, Any]]:
    """Write a new row of ``model`` now with one prebuilt ``INSERT … RETURNING`` on the
    session's connection; its primary key and every column's value as written.

    Why: the unit of work's flush costs several times the SQL it runs (a fifth of the
    CPU of processing a new request went into three flushes).  The row holds what the
    flush would have written, column by column: a missing value, or None for a column
    with a default (the flush leaves those out; a JSON column stores None as ``null``),
    takes the column's default.  Rows still waiting in the session are flushed first
    (:func:`writes_waiting`), so ids keep the order of ``add`` and the statements the
    order of the unit of work."""
    plan = _insert_plan(model)
    row = _as_flushed(model, plan, values)
    if writes_waiting(session, model):
        session.flush()
    return plan.statement.scalar(session, row), row


def insert_rows(session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]]
                ) -> None:
    """:func:`insert_row` for several rows at once (one ``executemany``), without their
    primary keys: a message's attachments."""
    if not rows:
        return
    plan = _insert_plan(model)
    complete = [_as_flushed(model, plan, values) for values in rows]
    if writes_waiting(session, model):
        session.flush()
    session.connection().execute(plan.statement_without_returning, complete)


def _as_flushed(model: type[Any], plan: _InsertPlan, values: Mapping[str, Any]
                ) -> dict[str, Any]:
    """Every column's value as the flush would write ``values`` (see :func:`insert_row`)."""
    if not values.keys() <= plan.column_set:
        raise TypeError(f"{model.__name__}: no such columns: "
                        f"{sorted(values.keys() - plan.column_set)}")
    row: dict[str, Any] = {}
    for key in plan.columns:
        value = values.get(key)
        if value is None and (key not in values or key not in plan.none_is_a_value):
            default = plan.defaults.get(key)
            if default is not None:
                value = default()
        row[key] = value
    return row


def insert_persistent(session: Session, model: type[_Row], **values: Any) -> _Row:
    """:func:`insert_row`, returned as that row persistent in the session, as if it had
    been loaded (no flush writes it again; its attributes read without a statement)."""
    row_id, row = insert_row(session, model, values)
    row[_insert_plan(model).primary_key] = row_id
    made: _Row = as_loaded(session, model, row)
    return made


def as_loaded(session: Session, model: type[_Row], row: Mapping[str, Any]) -> _Row:
    """The object of a row just written by a Core ``INSERT`` (``row``: every column's
    value, the primary key included), persistent in ``session`` as if it had been loaded.

    Made as loading makes objects (instance without ``__init__``, values put in its
    ``__dict__``), not with the constructor, whose attribute events cost several times
    more for a row of 20 or 30 columns; then marked as loaded and unchanged
    (``make_transient_to_detached``) and added, so no flush writes it again."""
    made = class_mapper(model).class_manager.new_instance()
    instance_state(made).dict.update(row)
    make_transient_to_detached(made)
    session.add(made)
    return made


def record_message_ref(session: Session, message_id: str | None, ticket_number: int,
                       direction: str, *, known_new: bool = False) -> None:
    """Index ``message_id`` as one of the ticket's, once.  ``known_new``: the caller knows
    it is not indexed for this ticket yet (an id we just made with ``make_message_id``,
    or the first message of a ticket made in this transaction): no look-up."""
    if not message_id:
        return
    key = message_id_hash(message_id)
    if not known_new:
        flush_if_pending(session, MessageRef)  # a ref added by an earlier call (Core read)
        if _INDEXED_FOR_TICKET.scalar(
                session, {"message_id_hash": key, "ticket_number": ticket_number}) is not None:
            return
    values = {"message_id": message_id[:998], "message_id_hash": key,
              "ticket_number": ticket_number, "direction": direction}
    if writes_waiting(session, MessageRef):
        session.add(MessageRef(**values))  # written in its turn by the next flush
    else:  # nothing to write before it: no unit of work (nobody needs the object)
        _INSERT_MESSAGE_REF.rows(session, values)


def indexed_tickets(session: Session, ids: Iterable[str]) -> list[tuple[str, int]]:
    """Each id (in the order given) that we stored or sent, with the ticket number of its
    oldest index row: one query for all the ids (a reply names up to 30), deciding as a
    query per id ordered by row id would."""
    hashed = [(message_id, message_id_hash(message_id)) for message_id in ids]
    if not hashed:
        return []
    oldest: dict[str, int] = {}
    for key, number in session.execute(
            select(MessageRef.message_id_hash, MessageRef.ticket_number)
            .where(MessageRef.message_id_hash.in_(sorted({key for _, key in hashed})))
            .order_by(MessageRef.id)):
        oldest.setdefault(key, number)
    return [(message_id, oldest[key]) for message_id, key in hashed if key in oldest]


def participant_for(session: Session, ticket: Ticket, email: str, role: str, *,
                    new_ticket: bool = False, flush: bool = True) -> Participant:
    """The ticket's participant row for an address, created on first contact.

    ``new_ticket``: the ticket was made in this transaction, so only rows made in it too
    can exist (no look-up in the database).  A new row is written at once with its own
    ``INSERT`` (:func:`insert_persistent`), no flush of the unit of work, unless other
    rows wait to be written and the caller does not need its id (``flush=False``): then
    it is only added, written with the next flush; whoever asks for it again here gets
    it flushed, with its id."""
    email = email.lower()
    known = _participants_seen(session)
    found = known.get((ticket.number, email))
    if found is not None and not _still(found, ticket.number, email):
        found = None
    if found is None and not new_ticket:
        found = session.scalars(
            _PARTICIPANT, {"ticket_number": ticket.number, "email": email}).one_or_none()
    if found is None:
        if flush or not writes_waiting(session, Participant):
            found = insert_persistent(session, Participant, ticket_number=ticket.number,
                                      email=email, role=role)
        else:
            found = Participant(ticket_number=ticket.number, email=email, role=role)
            session.add(found)
    if flush and found.id is None:
        session.flush()
    known[(ticket.number, email)] = found
    return found


def _participants_seen(session: Session) -> dict[tuple[int, str], Participant]:
    """Participant rows this transaction already found or made (the record step makes the
    requester's, the acknowledgement's Reply-To asks for it again: no second query)."""
    transaction = session.get_transaction()
    seen = session.info.get("participants_seen")
    if seen is None or seen[0] is not transaction:
        seen = session.info["participants_seen"] = (transaction, {})
    rows: dict[tuple[int, str], Participant] = seen[1]
    return rows


def _still(row: Participant, ticket_number: int, email: str) -> bool:
    """Is the remembered row still in the session (added or loaded), and the same ticket's
    and address's?"""
    state = inspect(row)
    return ((state.persistent or state.pending) and not state.expired_attributes
            and row.ticket_number == ticket_number and row.email == email)
