"""``gateway.tickets.insert_row`` / ``insert_persistent``: a row written with one prebuilt
``INSERT`` is the row the unit of work's flush would have written (defaults, None for a
column with a default, JSON ``null``), the object returned is as if loaded, and rows
waiting in the session are written first, in their order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, make_transient_to_detached

from gateway.models import (
    AttachmentRecord,
    MessageRecord,
    MessageRef,
    Participant,
    Ticket,
    TicketStatus,
)
from gateway.runtime.app import Gateway
from gateway.tickets import (
    as_loaded,
    insert_persistent,
    insert_row,
    insert_rows,
    participant_for,
    record_message_ref,
    writes_waiting,
)

WHEN = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def _columns(session: Session, model: type[Any], key: Any, *, skip: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    """Every column of a row as read back from the database (not the identity map)."""
    table = model.__table__
    [primary_key] = table.primary_key.columns
    row = session.execute(select(table).where(primary_key == key)).mappings().one()
    return {name: value for name, value in row.items()
            if name != primary_key.key and name not in skip}


def _ticket_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "subject": "Sync fails", "requester": "anna@acme.example",
        "requester_name": "Anna", "team_id": None, "language": None, "queue": "en",
        "tier": "standard", "entitlement": "", "product": None, "category": "technical",
        "first_response_due": WHEN, "sla_calendar": None, "issue_type": None,
        "created_at": WHEN, "updated_at": WHEN, "origin_message_id": "a@b", "follows": None,
    }
    return {**values, **changes}


@pytest.mark.parametrize("changes", [
    {},  # language None: the flush leaves it out, the column's default "en" fills it
    {"status": TicketStatus.CLOSED, "duplicate_of": 7, "resolved_at": WHEN, "language": "de"},
    {"subject": None, "requester_name": None, "created_at": None},  # defaults again
])
def test_a_ticket_row_is_the_flushed_row(gw: Gateway, changes: dict[str, Any]) -> None:
    with gw.db.transaction() as session:
        flushed = Ticket(**_ticket_values(**changes))
        session.add(flushed)
        session.flush()
        inserted = insert_persistent(session, Ticket, **_ticket_values(**changes))
        assert inserted.number == flushed.number + 1
        skip = ("created_at",) if changes.get("created_at", WHEN) is None else ()
        assert (_columns(session, Ticket, inserted.number, skip=skip)
                == _columns(session, Ticket, flushed.number, skip=skip))
        # the object holds what was written, as the flushed one does
        for column in Ticket.__table__.columns:
            if column.key not in ("number", *skip):
                assert getattr(inserted, column.key) == getattr(flushed, column.key), column.key


def test_a_message_row_with_attachments_is_the_flushed_row(gw: Gateway) -> None:
    values: dict[str, Any] = {
        "spool_id": None, "message_id": None, "from_address": "anna@acme.example",
        "from_name": "", "team_id": "acme", "role": "requester", "kind": "public",
        "subject": "Hi", "text": "words", "full_text": "words\n-- \nAnna", "html": None,
        "received_at": WHEN, "threaded_by": "new_ticket", "explanation": "",
    }
    attachment = {"filename": "a.txt", "content_type": "text/plain", "size": 2,
                  "sha256": "0" * 64, "inline": None, "data": b"hi"}
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        flushed = MessageRecord(ticket_number=ticket.number, **values)
        flushed.attachments = [AttachmentRecord(**attachment)]
        session.add(flushed)
        session.flush()
        # flags left out: the flush gives [], and so does the insert
        message_pk, row = insert_row(session, MessageRecord,
                                     {"ticket_number": ticket.number, **values})
        assert row["flags"] == [] and row["received_at"] == WHEN
        insert_rows(session, AttachmentRecord, [{"message_pk": message_pk, **attachment},
                                                {"message_pk": message_pk, **attachment}])
        assert (_columns(session, MessageRecord, message_pk)
                == _columns(session, MessageRecord, flushed.id))
        written = list(session.scalars(select(AttachmentRecord.id).where(
            AttachmentRecord.message_pk == message_pk).order_by(AttachmentRecord.id)))
        assert len(written) == 2
        for attachment_pk in written:
            assert (_columns(session, AttachmentRecord, attachment_pk, skip=("message_pk",))
                    == _columns(session, AttachmentRecord, flushed.attachments[0].id,
                                skip=("message_pk",)))
            assert _columns(session, AttachmentRecord, attachment_pk)["inline"] is False


def test_json_none_given_is_stored_as_json_null_as_the_flush_does(gw: Gateway) -> None:
    values: dict[str, Any] = {"from_address": "a@b.example", "role": "requester",
                              "threaded_by": "new_ticket", "flags": None}
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        flushed = MessageRecord(ticket_number=ticket.number, **values)
        session.add(flushed)
        session.flush()
        message_pk, _ = insert_row(session, MessageRecord,
                                   {"ticket_number": ticket.number, **values})
        assert (_columns(session, MessageRecord, message_pk, skip=("received_at",))
                == _columns(session, MessageRecord, flushed.id, skip=("received_at",)))


def test_an_unknown_column_is_refused(gw: Gateway) -> None:
    with gw.db.transaction() as session, pytest.raises(TypeError, match="no_such"):
        insert_row(session, Participant, {"ticket_number": 1, "email": "x", "role": "cc",
                                          "no_such": 1})


def test_the_object_is_persistent_and_reads_without_sql(gw: Gateway) -> None:
    statements: list[str] = []
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        event.listen(session.connection(), "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
        assert not writes_waiting(session, Ticket)
        assert (ticket.subject, ticket.status, ticket.language, ticket.owner) == (
            "Sync fails", TicketStatus.NEW, "en", None)
        assert statements == []
        ticket.owner = "kenji@support.example"  # a change is written like any other
        session.flush()
        assert len(statements) == 1 and statements[0].startswith("UPDATE tickets")
    with gw.db.reading() as session:
        stored = session.get(Ticket, ticket.number)
        assert stored is not None and stored.owner == "kenji@support.example"


def test_rows_waiting_in_the_session_are_written_first_in_their_order(gw: Gateway) -> None:
    with gw.db.transaction() as session:
        pending = Ticket(**_ticket_values(subject="first"))
        session.add(pending)  # its number comes first, as the flush would give it
        assert writes_waiting(session, Ticket)
        made = insert_persistent(session, Ticket, **_ticket_values(subject="second"))
        assert pending.number is not None and pending.number < made.number
        assert not writes_waiting(session, Ticket)


def test_a_changed_row_of_the_model_is_written_before_the_insert(gw: Gateway) -> None:
    """The unit of work updates a table's rows before it inserts into it: a changed
    participant (a unique key freed) is written first."""
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        old = participant_for(session, ticket, "old@acme.example", "cc")
        old.email = "moved@acme.example"
        assert writes_waiting(session, Participant) and not writes_waiting(session, Ticket)
        new = insert_persistent(session, Participant, ticket_number=ticket.number,
                                email="old@acme.example", role="cc")
        assert new.id > old.id
    with gw.db.reading() as session:
        assert sorted(session.scalars(select(Participant.email).where(
            Participant.ticket_number == ticket.number))) == [
            "moved@acme.example", "old@acme.example"]


def test_participant_for_writes_a_new_row_with_its_id_or_adds_it_behind_waiting_rows(
        gw: Gateway) -> None:
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        first = participant_for(session, ticket, "Anna@Acme.example", "requester",
                                new_ticket=True, flush=False)
        assert first.id is not None and first.email == "anna@acme.example"
        assert participant_for(session, ticket, "anna@acme.example", "requester") is first
        waiting = Ticket(**_ticket_values(subject="waiting"))
        session.add(waiting)
        later = participant_for(session, ticket, "max@acme.example", "cc", new_ticket=True,
                                flush=False)
        assert later.id is None  # only added: written with the next flush, in its turn
        asked = participant_for(session, ticket, "max@acme.example", "cc")
        assert asked is later and later.id is not None and later.id > first.id
        assert waiting.number is not None


def test_record_message_ref_writes_once_now_or_with_waiting_rows(gw: Gateway) -> None:
    with gw.db.transaction() as session:
        ticket = insert_persistent(session, Ticket, **_ticket_values())
        record_message_ref(session, "a@acme.example", ticket.number, "in", known_new=True)
        record_message_ref(session, "a@acme.example", ticket.number, "in")  # seen: no row
        session.add(Ticket(**_ticket_values(subject="waiting")))
        record_message_ref(session, "b@acme.example", ticket.number, "out", known_new=True)
        assert any(isinstance(row, MessageRef) for row in session.new)
    with gw.db.reading() as session:
        assert list(session.execute(select(MessageRef.message_id, MessageRef.direction)
                                    .order_by(MessageRef.id))) == [
            ("a@acme.example", "in"), ("b@acme.example", "out")]


def test_as_loaded_is_the_constructed_object_marked_loaded(gw: Gateway) -> None:
    """``as_loaded`` skips the constructor: the object holds the same values, has no
    pending change and no expired column, like one built and marked detached."""
    row = {"number": 999, **_ticket_values()}
    for key in (column.key for column in Ticket.__table__.columns):
        row.setdefault(key, None)
    built = Ticket(**row)
    make_transient_to_detached(built)
    with gw.db.transaction() as session:
        made = as_loaded(session, Ticket, row)
        state, expected = inspect(made), inspect(built)
        assert made.__dict__.keys() - {"_sa_instance_state"} == row.keys()
        assert {k: getattr(made, k) for k in row} == {k: getattr(built, k) for k in row}
        assert (state.persistent, state.key, state.expired_attributes,
                state.committed_state) == (True, expected.key, set(), {})
        assert made in session and not session.dirty and not session.new
        session.expunge(made)  # never written: the row does not exist
