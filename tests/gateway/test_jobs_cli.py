"""`gateway jobs list` and `gateway jobs run NAME --at ISO8601` (DESIGN §12): a scheduled
job run by hand as of a given time does its work once, however often it is run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem, Ticket, TicketEscalation, TicketStatus
from gateway.runtime.app import Gateway
from tests.conftest import run_gateway
from tests.rules.tickets import ticket_at


def _escalations(gateway: Gateway) -> tuple[list[str], list[str]]:
    """(levels stored, subjects of the escalation mails queued)."""
    with gateway.db.reading() as session:
        levels = list(session.scalars(select(TicketEscalation.level)))
        subjects = list(session.scalars(select(OutboxItem.subject).where(
            OutboxItem.kind == "escalation")))
    return levels, subjects


def _jobs(settings: Settings) -> dict[str, dict[str, Any]]:
    result = run_gateway(settings, "jobs", "list", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_jobs_run_escalation_as_of_a_time_escalates_a_ticket_once(
        gateway: Gateway, settings: Settings) -> None:
    # A standard ticket on Tuesday 10:00 UTC is due at 09:00 the next morning; nobody
    # answered it.
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    assert ticket.first_response_due == datetime.fromisoformat("2026-11-18T09:00:00+00:00")
    listed = _jobs(settings)
    assert {"escalation", "quarterly", "announcements", "expiring-grants", "pending-reminders",
            "auto-close"} <= set(listed)
    assert listed["escalation"]["last_run"] is None
    assert listed["escalation"]["cadence"] == "every 1 s (sweep_interval)"
    # When an operator runs the escalation as if it were 09:01
    first = run_gateway(settings, "jobs", "run", "escalation", "--at", "2026-11-18T09:01:00Z")
    assert first.returncode == 0, first.stderr.decode()
    # Then the ticket is marked breached and the agents are told, once
    levels, subjects = _escalations(gateway)
    assert levels == ["breach"]
    assert subjects and set(subjects) == {f"[#{ticket.number}] SLA breached: Sync fails"}
    with gateway.db.reading() as session:
        stored = session.get(Ticket, ticket.number)
        assert stored is not None and stored.breached_at is not None
    # And a second run (later still) sends nothing more
    second = run_gateway(settings, "jobs", "run", "escalation", "--at", "2026-11-18T12:00:00Z")
    assert second.returncode == 0, second.stderr.decode()
    assert _escalations(gateway) == (levels, subjects)
    # And the list shows the last run, as of the time it was given
    run = _jobs(settings)["escalation"]
    assert run["last_run_as_of"] == "2026-11-18T12:00:00+00:00"
    assert run["last_outcome"] == "ok" and run["last_run"] is not None


def test_jobs_run_takes_the_schedulers_old_names_too(gateway: Gateway,
                                                     settings: Settings) -> None:
    result = run_gateway(settings, "jobs", "run", "announcements-resume")
    assert result.returncode == 0, result.stderr.decode()
    assert _jobs(settings)["announcements"]["last_outcome"] == "ok"


def test_an_unknown_job_or_time_is_a_clear_error(gateway: Gateway, settings: Settings) -> None:
    unknown = run_gateway(settings, "jobs", "run", "no-such-job")
    assert unknown.returncode != 0 and unknown.stdout == b""
    assert "no scheduled job 'no-such-job'" in unknown.stderr.decode()
    assert "escalation" in unknown.stderr.decode()  # it names the jobs there are
    bad_time = run_gateway(settings, "jobs", "run", "escalation", "--at", "yesterday")
    assert bad_time.returncode == 2
    assert "'yesterday' is not an ISO 8601 time" in bad_time.stderr.decode()
    assert _escalations(gateway) == ([], [])


def _waiting_ticket(gateway: Gateway, since: str) -> int:
    """A ticket set pending at ``since``, waiting on its requester."""
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    with gateway.db.transaction() as session:
        stored = session.get(Ticket, ticket.number)
        assert stored is not None
        stored.status = TicketStatus.PENDING
        stored.pending_since = datetime.fromisoformat(since)
    return ticket.number


def _sent(gateway: Gateway, number: int, kind: str) -> int:
    """Outbox rows of ``kind`` for the ticket."""
    with gateway.db.reading() as session:
        return len(list(session.scalars(select(OutboxItem.id).where(
            OutboxItem.ticket_number == number, OutboxItem.kind == kind))))


def test_jobs_run_pending_reminders_and_auto_close_act_once(
        gateway: Gateway, settings: Settings) -> None:
    # Given a ticket pending since Wednesday noon (defaults: remind after 3, close after 7 days)
    number = _waiting_ticket(gateway, "2026-11-18T12:00:00+00:00")
    assert _jobs(settings)["pending-reminders"]["cadence"] == "every 1 s (sweep_interval)"

    # When the reminders run as of Saturday 12:01, then again on Monday
    for at in ("2026-11-21T12:01:00Z", "2026-11-23T12:00:00Z"):
        result = run_gateway(settings, "jobs", "run", "pending-reminders", "--at", at)
        assert result.returncode == 0, result.stderr.decode()
    # Then one reminder was queued
    assert _sent(gateway, number, "pending_reminder") == 1

    # When auto-close runs as of the next Wednesday 12:01, and again a day later
    for at in ("2026-11-25T12:01:00Z", "2026-11-26T12:00:00Z"):
        result = run_gateway(settings, "jobs", "run", "auto-close", "--at", at)
        assert result.returncode == 0, result.stderr.decode()
    # Then the ticket was closed once, with one notice, and waits on nobody
    assert _sent(gateway, number, "auto_closed") == 1
    with gateway.db.reading() as session:
        closed = session.get(Ticket, number)
        assert closed is not None and closed.status == TicketStatus.CLOSED
        assert closed.resolved_at == datetime.fromisoformat("2026-11-25T12:01:00+00:00")
        assert (closed.pending_since, closed.pending_reminded_at) == (None, None)
    assert _jobs(settings)["auto-close"]["last_run_as_of"] == "2026-11-26T12:00:00+00:00"
