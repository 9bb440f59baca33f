"""Booking a call-back (gateway/callbacks.py): what is stored, what the agents are told, and
every refusal, over a real database (SQLite, or PostgreSQL in scale-out mode)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.callbacks import CallbackRefused, Refusal, mark_done
from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import Callback, CallbackStatus
from gateway.runtime.app import Gateway
from tests.callbacks.conftest import AGENTS, NOW, TUESDAY, book, outbox_mail, stored
from tests.conftest import DIRECTORY

TOPIC = "Sync conflicts\nSubject: injected\r\nBcc: evil@attacker.example"


def test_a_booking_is_stored_as_utc_and_the_agents_are_told_in_english(
        clocked: Gateway) -> None:
    # Given Anna (acme admin, German) books Tuesday 14-16 Berlin time with a multi-line topic
    callback_id, outbox_ids = book(clocked, topic=TOPIC)

    # Then the booking holds the window as UTC instants (Berlin is UTC+1 in December)
    [row] = stored(clocked)
    assert row.id == callback_id and row.status is CallbackStatus.OPEN
    assert (row.starts_at, row.ends_at) == (datetime(2026, 12, 8, 13, tzinfo=UTC),
                                            datetime(2026, 12, 8, 15, tzinfo=UTC))
    assert row.person_email == "anna@acme.example" and row.team_id == "acme"
    assert row.phone == "+49 (0)221 123-4567" and row.created_at == NOW
    # And the topic was kept on one line
    assert row.topic == "Sync conflicts Subject: injected Bcc: evil@attacker.example"

    # And one mail went to the agents' mailbox, in English, naming when and whom to call
    [outbox_id] = outbox_ids
    item, message = outbox_mail(clocked, outbox_id)
    assert item.kind == "callback_requested" and item.rcpt_to == AGENTS
    assert message["Content-Language"] == "en"
    assert message["Subject"] == (f"Call-back #{callback_id} requested: Tue 2026-12-08 "
                                  "14:00–16:00 Europe/Berlin (13:00–15:00 UTC)")
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Anna Admin <anna@acme.example>" in text and "+49 (0)221 123-4567" in text
    assert "> Sync conflicts Subject: injected Bcc: evil@attacker.example" in text
    assert f"gateway callbacks done {callback_id}" in text
    # And the person's words reach no header, and the agents' mail has no hub link
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    assert "injected" not in headers and "evil@" not in headers and "Bcc" not in headers
    assert "/hub/" not in text


def test_a_second_open_booking_is_refused_naming_the_first_until_it_is_done(
        clocked: Gateway) -> None:
    # Given Anna has an open call-back
    first, _ = book(clocked)

    # When she books another one
    with pytest.raises(CallbackRefused) as refused:
        book(clocked, topic="Another question", day=date(2026, 12, 9))

    # Then it is refused with a sentence naming the open one, and nothing more is stored
    assert refused.value.reason is Refusal.ALREADY_BOOKED
    assert refused.value.open_booking == first
    assert f"#{first}" in str(refused.value) and "Tue 2026-12-08 14:00–16:00" in str(
        refused.value)
    assert len(stored(clocked)) == 1

    # And another person may still book
    book(clocked, "max@acme.example")

    # And once an agent marked Anna's call done, she may book again
    with clocked.db.transaction() as session:
        assert mark_done(session, first, NOW, "kenji@support.example") is True
        assert mark_done(session, first, NOW) is False  # done already: no change
    again, _ = book(clocked, topic="Another question", day=date(2026, 12, 9))
    assert [(r.id, r.status) for r in stored(clocked) if r.person_email == "anna@acme.example"
            ] == [(first, CallbackStatus.DONE), (again, CallbackStatus.OPEN)]


def test_the_database_itself_holds_one_open_booking_per_person(clocked: Gateway) -> None:
    # Given an open booking of Anna
    book(clocked)
    # When a second open row for her is written past the check (two requests at once)
    with pytest.raises(IntegrityError), clocked.db.transaction() as session:
        session.add(Callback(person_email="anna@acme.example", team_id="acme", topic="x",
                             phone="123456", starts_at=NOW, ends_at=NOW,
                             timezone="UTC", created_at=NOW))
        session.flush()
    # Then the partial unique index refuses it; done rows do not count
    assert len(stored(clocked)) == 1


@pytest.mark.parametrize(("change", "reason"), [
    ({"phone": "call me maybe"}, Refusal.PHONE),
    ({"phone": "12345"}, Refusal.PHONE),  # 5 digits
    ({"phone": "+1 234 567 890 123 456 789 01"}, Refusal.PHONE),  # 21 digits
    ({"phone": "+49 221 1234; DROP"}, Refusal.PHONE),
    ({"topic": "   \n "}, Refusal.TOPIC),
    ({"topic": "x" * 301}, Refusal.TOPIC),
    ({"day": date(2026, 12, 12)}, Refusal.WEEKEND),  # a Saturday
    ({"day": date(2026, 12, 7), "hours": (9, 10)}, Refusal.PAST),  # 08:00 UTC: gone
    ({"day": date(2027, 1, 8)}, Refusal.TOO_FAR),  # 32 days ahead
    ({"hours": (16, 14)}, Refusal.HOURS),
    ({"hours": (8, 17)}, Refusal.HOURS),  # 9 hours
    ({"hours": (20, 25)}, Refusal.HOURS),
    ({"timezone": "Mars/Olympus_Mons"}, Refusal.TIMEZONE),
    ({"timezone": "../../etc/passwd"}, Refusal.TIMEZONE),
])
def test_a_booking_that_breaks_a_rule_is_refused_and_changes_nothing(
        clocked: Gateway, change: dict[str, object], reason: Refusal) -> None:
    with pytest.raises(CallbackRefused) as refused:
        book(clocked, **change)  # type: ignore[arg-type]  # each case sets one valid keyword
    assert refused.value.reason is reason
    assert str(refused.value)  # one sentence for the person
    assert stored(clocked) == []


def test_the_window_may_start_later_today_and_a_boundary_phone_is_accepted(
        clocked: Gateway) -> None:
    # Monday 10:00 UTC is 19:00 in Tokyo: a window from 20:00 Tokyo time starts in the future
    book(clocked, phone="123456", day=date(2026, 12, 7), hours=(20, 21), timezone="Asia/Tokyo")
    [row] = stored(clocked)
    assert row.starts_at == datetime(2026, 12, 7, 11, tzinfo=UTC)


def test_only_people_of_the_directory_book(clocked: Gateway) -> None:
    with pytest.raises(CallbackRefused) as refused:
        book(clocked, "stranger@elsewhere.example")
    assert refused.value.reason is Refusal.NOT_IN_DIRECTORY
    assert stored(clocked) == []


def test_without_an_agents_mailbox_every_agent_of_the_directory_is_told(
        settings_factory: Callable[..., Settings]) -> None:
    # Given a gateway without agents_address (the test directory has one agent, Kenji)
    gateway = Gateway(settings_factory())
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        gateway.services.now = lambda: NOW
        # When Max books
        _, outbox_ids = book(gateway, "max@acme.example", day=TUESDAY)
        # Then the agents of the directory get the mail
        assert [outbox_mail(gateway, i)[0].rcpt_to for i in outbox_ids] == [
            "kenji@support.example"]
    finally:
        gateway.close()
