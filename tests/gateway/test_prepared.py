"""The writer lane's hot statements on the driver's own cursor (``gateway/prepared.py``,
issue 18; SQLite's, or psycopg's in scale-out): each read answers exactly what SQLAlchemy's
execution of the same statement answers, each write stores exactly what it stores (types
converted both ways: datetimes, booleans, enums, JSON, a JSON ``null``), in the session's
transaction, and a database error is still SQLAlchemy's (an outage the job retries, not a
quarantine), a lost PostgreSQL connection replaced as SQLAlchemy replaces it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, func, literal, select, text
from sqlalchemy.exc import DBAPIError

from gateway import db
from gateway.db import Database
from gateway.directory import _SUPPORT_ROW
from gateway.models import Article, BouncingAddress, OutboxStatus, Ticket, utcnow
from gateway.pipeline.answer_gate import _GATE
from gateway.pipeline.steps.duplicates import _NEWEST
from gateway.pipeline.steps.identify_sender import _KNOWN
from gateway.prepared import Prepared
from gateway.recommendations import _ALL_ARTICLES
from gateway.runtime.app import Gateway
from outbound.outbox import _INSERT as INSERT_OUTBOX
from tests.conftest import PG_URL
from tests.mail import make_mail
from tests.pipeline.build import processed


def _as_sqlalchemy_answers(gateway: Gateway, read: Prepared,
                           params: dict[str, Any] | None = None) -> None:
    with gateway.db.transaction() as session:
        fast = read.rows(session, params)
        usual = [tuple(row) for row in session.execute(read.statement, params or {})]
    assert fast == usual


def test_each_hot_read_answers_what_sqlalchemy_answers(gateway: Gateway) -> None:
    # Given tickets (datetimes, an enum in a list of literals), a bounce mark (a boolean),
    # articles (JSON columns) and directory people
    numbers = [processed(gateway, make_mail(sender="max@acme.example", subject=f"VPN {i}",
                                            body=f"Request {i}.")) for i in range(3)]
    now = utcnow()
    with gateway.db.transaction() as session:
        session.add(Article(id="vpn", title={"en": "VPN set-up", "ja": "VPN の設定"},
                            url="https://kb.example/vpn", issue_types=["network", "vpn"],
                            popularity=7))
        session.add(BouncingAddress(address="gone@acme.example", bounces=2, hard=True,
                                    first_at=now - timedelta(days=2), last_at=now))
    # Then every statement the lane runs this way answers as SQLAlchemy's execution does
    _as_sqlalchemy_answers(gateway, _NEWEST, {"requester": "max@acme.example",
                                             "since": now - timedelta(days=1),
                                             "candidates": 2})
    _as_sqlalchemy_answers(gateway, _ALL_ARTICLES)
    _as_sqlalchemy_answers(gateway, _SUPPORT_ROW)
    for address in ("gone@acme.example", "max@acme.example"):
        for every_answer in (True, False):  # a verified sender counts only verified mail's
            _as_sqlalchemy_answers(gateway, _GATE, {
                "rcpt_mailbox": address, "every_answer": every_answer,
                "rcpt_domain": "acme.example", "since": now - timedelta(hours=1),
                "address": address, "marked_since": now - timedelta(days=30)})
    for email in ("max@acme.example", "nobody@nowhere.example"):
        _as_sqlalchemy_answers(gateway, _KNOWN, {"email": email})  # one name bound twice
    with gateway.db.transaction() as session:
        newest = _NEWEST.rows(session, {"requester": "max@acme.example",
                                        "since": now - timedelta(days=1), "candidates": 2})
        gate = _GATE.first(session, {
            "rcpt_mailbox": "gone@acme.example", "every_answer": True, "rcpt_domain": None,
            "since": now - timedelta(hours=1), "address": "gone@acme.example",
            "marked_since": now - timedelta(days=30)})
        articles = _ALL_ARTICLES.rows(session)
    assert [number for number, _ in newest] == sorted(numbers, reverse=True)[:2]
    assert gate == (0, 0, True)  # a Python bool, as SQLAlchemy converts it
    assert articles == [("vpn", {"en": "VPN set-up", "ja": "VPN の設定"},
                         "https://kb.example/vpn", ["network", "vpn"], 7)]


def test_a_read_sees_what_its_own_transaction_wrote(gateway: Gateway) -> None:
    read = Prepared(select(Ticket.__table__.c.subject)
                        .where(Ticket.__table__.c.number == bindparam("number")))
    number = processed(gateway, make_mail(sender="max@acme.example", subject="Printer"))
    with gateway.db.transaction() as session:
        session.execute(text("UPDATE tickets SET subject = 'Printer (renamed)' "
                             "WHERE number = :n"), {"n": number})
        assert read.scalar(session, {"number": number}) == "Printer (renamed)"
        assert read.scalar(session, {"number": number + 1000}) is None
    with gateway.db.transaction() as session:
        assert read.scalars(session, {"number": number}) == ["Printer (renamed)"]


def test_a_database_error_is_sqlalchemys_and_an_expanding_list_is_refused(
        gateway: Gateway) -> None:
    missing = Prepared(select(literal(1).label("one")).select_from(
        text("no_such_table")))
    with pytest.raises(DBAPIError), gateway.db.transaction() as session:
        missing.rows(session)
    expanding = Prepared(select(Ticket.__table__.c.number).where(
        Ticket.__table__.c.number.in_(bindparam("numbers", expanding=True))))
    with gateway.db.transaction() as session:
        if gateway.db.is_sqlite:
            with pytest.raises(TypeError, match="expanding IN"):
                expanding.rows(session, {"numbers": [1, 2]})
        else:  # PostgreSQL runs it through SQLAlchemy, which expands it
            assert expanding.rows(session, {"numbers": [1, 2]}) == []


@pytest.mark.parametrize("recipe", [None, {"kind": "acknowledgement", "view": {"n": [1, "ü"]}}])
def test_a_prepared_insert_stores_what_sqlalchemy_stores(
        gateway: Gateway, recipe: dict[str, Any] | None) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "kind": "acknowledgement", "ticket_number": None, "spool_id": None,
        "mail_from": "support@support.example", "rcpt_to": "Max@Acme.example",
        "message_id": "abc@support.example", "subject": "[#1] Grüße", "raw": b"\x00\xffraw",
        "sealed": None, "recipe": recipe, "rcpt_mailbox": "max@acme.example",
        "rcpt_domain": "acme.example", "for_verified": True,
        "status": OutboxStatus.PENDING, "attempts": 0,
        "last_error": "", "created_at": now, "updated_at": now,
        "next_attempt_at": now + timedelta(seconds=1), "sent_at": None, "bounced_at": None}
    with gateway.db.transaction() as session:
        fast = INSERT_OUTBOX.scalar(session, values)
        usual = session.execute(INSERT_OUTBOX.statement, values).scalar_one()
    with gateway.db.reading() as session:  # the stored values themselves, as text
        stored = {row[0]: row[1:] for row in session.execute(text(
            "SELECT id, kind, mail_from, rcpt_to, message_id, subject, raw, sealed, "
            "CAST(recipe AS TEXT), status, attempts, CAST(created_at AS TEXT), "
            "CAST(next_attempt_at AS TEXT), sent_at FROM outbox"))}
    assert fast != usual and stored[fast] == stored[usual]


@pytest.fixture
def postgres() -> Iterator[Database]:
    """A PostgreSQL pool in both modes (this machine kind runs the server; no schema)."""
    database = Database(PG_URL or "postgresql://postgres@127.0.0.1:5432/test")
    try:
        yield database
    finally:
        database.dispose()


def test_a_connection_postgresql_dropped_fails_once_and_is_replaced(
        postgres: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a prepared read that has run on a pooled connection
    backend = Prepared(select(func.pg_backend_pid()))
    with postgres.engine.connect() as other:  # a second connection ends the first
        with postgres.transaction() as session:
            [(pid,)] = backend.rows(session)
        # When the server drops that connection (a restart) while it sits in the pool
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)  # no ping: it meets the statement
    # Then the read fails as SQLAlchemy fails it, the connection marked as gone (the error
    # the read itself raises, before a rollback's could stand in for it),
    session = postgres.sessions()
    try:
        with pytest.raises(DBAPIError) as failure:
            backend.rows(session)
        assert failure.value.connection_invalidated
    finally:
        session.close()
    # and the next transaction runs on a fresh connection.
    with postgres.transaction() as session:
        [(fresh,)] = backend.rows(session)
    assert fresh != pid
