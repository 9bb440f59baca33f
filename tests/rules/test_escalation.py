"""Escalation before breaches: one warning per level, a breach mark at the deadline, the
clock paused while a ticket waits on the customer, the agents who get the warnings, the
clock restarted when a customer reopens a ticket, and the scheduler of `serve` doing it
(on the lease holder only; not at all when the scheduler is switched off)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from gateway import escalation
from gateway.config import Settings
from gateway.db import Database
from gateway.directory import load_directory_file
from gateway.escalation import EscalationReport, escalate
from gateway.models import Agent, OutboxItem, Ticket, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.scheduler import GatewayScheduler
from gateway.runtime.server import GatewayServer
from gateway.services import Services
from rules.policy import DEFAULT_POLICY
from tests.conftest import DIRECTORY, Processes, run_gateway, serve_in_process, wait_for
from tests.mail import maildir_messages
from tests.rules.tickets import outbox_mail, plain_text, reply_at, ticket_at


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ticket(gateway: Gateway, number: int) -> Ticket:
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        return ticket


def _set_status(gateway: Gateway, number: int, status: TicketStatus) -> None:
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(status=status))


def test_one_warning_per_level_then_the_breach(gateway: Gateway) -> None:
    # An Enhanced ticket at 10:00 UTC: 1 h target, due 11:00; warn at 75 % (10:45).
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    assert ticket.first_response_due == _at("2026-11-17T11:00:00+00:00")
    assert escalate(gateway.db, gateway.services, _at("2026-11-17T10:30:00+00:00")).levels == []
    warned = escalate(gateway.db, gateway.services, _at("2026-11-17T10:46:00+00:00"))
    assert warned.levels == [(ticket.number, "warn-75")]
    for minute in ("10:50", "10:55", "10:59"):  # later sweeps send nothing more
        later = escalate(gateway.db, gateway.services, _at(f"2026-11-17T{minute}:00+00:00"))
        assert later.levels == []
    breached = escalate(gateway.db, gateway.services, _at("2026-11-17T11:01:00+00:00"))
    assert breached.levels == [(ticket.number, "breach")]
    assert escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00")).levels == []
    assert _ticket(gateway, ticket.number).breached_at == _at("2026-11-17T11:00:00+00:00")
    warning, breach = outbox_mail(gateway, ticket, "escalation")
    assert str(warning["Subject"]).startswith(f"[#{ticket.number}] SLA warning (75%)")
    assert str(breach["Subject"]).startswith(f"[#{ticket.number}] SLA breached")
    # No escalation address in the policy: the agent of the directory, not the support
    # address (which would drop its own looping notice).
    assert breach["To"] == warning["To"] == "kenji@support.example"
    assert breach["Auto-Submitted"] == "auto-generated"
    assert "Why this target: " in plain_text(breach) and "enhanced add-on" in plain_text(breach)


def test_a_late_first_sweep_sends_only_the_breach(gateway: Gateway) -> None:
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    report = escalate(gateway.db, gateway.services, _at("2026-11-17T13:00:00+00:00"))
    assert report.levels == [(ticket.number, "breach")]
    assert len(outbox_mail(gateway, ticket, "escalation")) == 1


def test_warning_share_counts_open_hours_of_the_calendar(gateway: Gateway) -> None:
    # Standard support Friday 17:00 Berlin: 8 h of office hours, due Monday 16:00.  75 % is
    # 6 hours of open time (1 h on Friday, 5 h on Monday): Monday 14:00, not at the weekend.
    ticket = ticket_at(gateway, "2026-11-20T17:00:00+01:00", sender="giulia@globex.example")
    assert ticket.first_response_due == _at("2026-11-23T16:00:00+01:00")
    assert escalate(gateway.db, gateway.services, _at("2026-11-22T12:00:00+01:00")).levels == []
    assert escalate(gateway.db, gateway.services, _at("2026-11-23T13:59:00+01:00")).levels == []
    report = escalate(gateway.db, gateway.services, _at("2026-11-23T14:01:00+01:00"))
    assert report.levels == [(ticket.number, "warn-75")]


def test_a_pending_ticket_does_not_breach_while_pending(gateway: Gateway) -> None:
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    _set_status(gateway, ticket.number, TicketStatus.PENDING)
    paused = escalate(gateway.db, gateway.services, _at("2026-11-17T10:10:00+00:00"))
    assert paused.paused == [ticket.number]
    # Long past the original due time: still pending, nothing sent, nothing breached.
    idle = escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00"))
    assert idle.levels == [] and _ticket(gateway, ticket.number).breached_at is None
    # The customer answers at 12:00: the 1 h 50 min of the pause are added to the due time.
    _set_status(gateway, ticket.number, TicketStatus.OPEN)
    resumed = escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00"))
    assert resumed.resumed == [ticket.number] and resumed.levels == []
    assert _ticket(gateway, ticket.number).first_response_due == _at("2026-11-17T12:50:00+00:00")
    late = escalate(gateway.db, gateway.services, _at("2026-11-17T12:51:00+00:00"))
    assert late.levels == [(ticket.number, "breach")]


def test_answered_and_solved_tickets_are_left_alone(gateway: Gateway) -> None:
    answered = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    solved = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="max@acme.example")
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == answered.number).values(
            first_response_at=_at("2026-11-17T10:20:00+00:00")))
    _set_status(gateway, solved.number, TicketStatus.SOLVED)
    assert escalate(gateway.db, gateway.services, _at("2026-11-18T10:00:00+00:00")).levels == []


def test_serve_scheduler_sends_a_breach_once(gateway: Gateway, running: GatewayServer) -> None:
    # A ticket whose target passed long ago (arrived in 2020), unanswered.
    ticket = ticket_at(gateway, "2020-01-07T10:00:00+00:00", sender="anna@acme.example")
    sent_dir = gateway.settings.outbound_url.removeprefix("maildir:")

    def escalations() -> list[str]:
        try:
            messages = maildir_messages(Path(sent_dir))
        except FileNotFoundError:  # the transport is still creating the maildir
            return []
        return [str(m["Subject"]) for m in messages if "SLA" in str(m["Subject"])]
    wait_for(lambda: len(escalations()) == 1, timeout=30, message="the breach mail")
    # Several more passes (1 s apart in tests) send nothing more.
    with gateway.db.reading() as session:
        first_count = len(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "escalation")).all())
    time.sleep(3.5)
    with gateway.db.reading() as session:
        assert len(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "escalation")).all()) == first_count == 1
    assert escalations() == [f"[#{ticket.number}] SLA breached: Sync fails"]
    sent = [m for m in maildir_messages(Path(sent_dir)) if "SLA" in str(m["Subject"])]
    assert [m["To"] for m in sent] == ["kenji@support.example"]


def _escalation_rows(gateway: Gateway) -> list[str]:
    with gateway.db.reading() as session:
        return sorted(row.subject for row in session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "escalation")))


def test_with_two_nodes_only_the_scheduler_leader_escalates(
        gateway: Gateway, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ticket_at(gateway, "2020-01-07T10:00:00+00:00", sender="anna@acme.example")
    nodes = (Gateway(settings), Gateway(settings))
    passes: list[int] = []  # which node ran each escalation pass
    real_escalate = escalation.escalate

    def recorded(database: Database, services: Services, now: datetime | None = None
                 ) -> EscalationReport:
        passes.append(0 if database is nodes[0].db else 1)
        return real_escalate(database, services, now)
    monkeypatch.setattr(escalation, "escalate", recorded)
    leader, standby = (GatewayScheduler(node, ttl=1.5) for node in nodes)
    leader.start()
    standby.start()
    try:
        wait_for(lambda: len(passes) >= 3, message="three escalation passes")
        assert set(passes) == {0} and leader.is_leader and not standby.is_leader
        assert _escalation_rows(gateway) == [f"[#{first.number}] SLA breached: Sync fails"]
        # The leader stops: the other node takes the lease and escalates from then on.
        leader.stop()
        second = ticket_at(gateway, "2020-01-08T10:00:00+00:00", sender="anna@acme.example",
                           subject="Export broken", body="The export is broken.")
        wait_for(lambda: len(_escalation_rows(gateway)) == 2, timeout=15, message="takeover")
        assert passes[-1] == 1 and standby.is_leader
        assert _escalation_rows(gateway) == [f"[#{first.number}] SLA breached: Sync fails",
                                             f"[#{second.number}] SLA breached: Export broken"]
    finally:
        leader.stop()
        standby.stop()
        for node in nodes:
            node.close()


def test_serve_without_the_scheduler_does_not_escalate(
        settings_factory: Callable[..., Settings], processes: Processes,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_factory(scheduler_enabled=False)
    node = Gateway(settings)
    with node.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    ticket = ticket_at(node, "2020-01-07T10:00:00+00:00", sender="anna@acme.example")
    with caplog.at_level(logging.WARNING, logger="gateway.runtime.server"), \
            serve_in_process(node, settings, processes):
        time.sleep(3.5)  # three sweeps, 1 s apart in tests
        assert _escalation_rows(node) == []
        assert _ticket(node, ticket.number).breached_at is None
    assert "this node runs no periodic jobs (escalation" in caplog.text


def _add_agents(gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        session.add(Agent(email="sakura@support.example", name="Sakura", languages=["ja"]))
        session.add(Agent(email="tom@support.example", name="Tom", languages=["en"]))


def test_warnings_go_to_the_agents_of_the_tickets_language(gateway: Gateway) -> None:
    _add_agents(gateway)
    # 10:10 JST on a Tuesday, in Japanese: the ja queue; Kenji (en, ja) and Sakura (ja).
    japanese = ticket_at(gateway, "2026-11-17T10:10:00+09:00", sender="yuki@globex.example",
                         body="同期が失敗します。")
    # Italian-speaking Giulia writes in English: nobody serves it, the en queue's agents.
    italian = ticket_at(gateway, "2026-11-17T10:00:00+01:00", sender="giulia@globex.example")
    report = escalate(gateway.db, gateway.services, _at("2026-11-20T12:00:00+00:00"))
    assert sorted(report.levels) == [(japanese.number, "breach"), (italian.number, "breach")]
    assert [m["To"] for m in outbox_mail(gateway, japanese, "escalation")] == [
        "kenji@support.example", "sakura@support.example"]
    assert [m["To"] for m in outbox_mail(gateway, italian, "escalation")] == [
        "kenji@support.example", "tom@support.example"]
    # One mail per agent, and still one level: a later sweep sends nothing more.
    assert len(report.outbox_ids) == 4
    assert escalate(gateway.db, gateway.services, _at("2026-11-21T12:00:00+00:00")).levels == []


def test_without_agents_the_level_is_recorded_and_nobody_mailed(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    with gateway.db.transaction() as session:
        session.execute(delete(Agent))
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    with caplog.at_level(logging.WARNING, logger="gateway.escalation"):
        report = escalate(gateway.db, gateway.services, _at("2026-11-17T11:01:00+00:00"))
    assert report.levels == [(ticket.number, "breach")] and report.outbox_ids == []
    assert outbox_mail(gateway, ticket, "escalation") == []
    assert _ticket(gateway, ticket.number).breached_at == _at("2026-11-17T11:00:00+00:00")
    assert f"ticket #{ticket.number} reached escalation level breach" in caplog.text
    assert escalate(gateway.db, gateway.services, _at("2026-11-17T12:00:00+00:00")).levels == []
    with gateway.db.reading() as session:
        assert session.scalars(select(OutboxItem).where(
            OutboxItem.rcpt_to == "support@support.example",
            OutboxItem.kind == "escalation")).all() == []


def test_a_configured_escalation_address_gets_the_warnings(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        'address = ""                          # default',
        'address = "oncall@support.example"    # default'), encoding="utf-8")
    assert "oncall@support.example" in policy.read_text(encoding="utf-8")
    gateway = Gateway(settings_factory(rules_policy=policy))
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
        escalate(gateway.db, gateway.services, _at("2026-11-17T11:01:00+00:00"))
        assert [m["To"] for m in outbox_mail(gateway, ticket, "escalation")] == [
            "oncall@support.example"]
    finally:
        gateway.close()


def _show(settings: Settings, number: int) -> dict[str, object]:
    result = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert result.returncode == 0, result.stderr
    view: dict[str, object] = json.loads(result.stdout)
    return view


def test_a_reopened_ticket_restarts_the_clock_and_escalates_again(
        gateway: Gateway, settings: Settings) -> None:
    # Round 1: Enhanced, 10:00 UTC, due 11:00, breached, then answered and solved.
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    first = escalate(gateway.db, gateway.services, _at("2026-11-17T11:01:00+00:00"))
    assert first.levels == [(ticket.number, "breach")]
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == ticket.number).values(
            first_response_at=_at("2026-11-17T11:30:00+00:00"), status=TicketStatus.SOLVED,
            resolved_at=_at("2026-11-17T12:00:00+00:00")))
    # Anna reopens it the next morning at 09:00 UTC: a new hour from her reply.
    reply_at(gateway, ticket, "2026-11-18T09:00:00+00:00", sender="anna@acme.example")
    shown = _show(settings, ticket.number)
    assert shown["status"] == "open"
    assert shown["first_response_due"] == "2026-11-18T10:00:00Z"
    assert shown["first_response_at"] is None and shown["breached_at"] is None
    assert "reopened at 2026-11-18 09:00 UTC, SLA round 2: enhanced" in str(
        shown["entitlement"])
    # The share counts from the reopen: at 09:40 two thirds of the hour are used (counted
    # from created_at it would be 99 %), at 09:46 the 75 % warning of round 2 goes out.
    assert escalate(gateway.db, gateway.services, _at("2026-11-18T09:40:00+00:00")).levels == []
    warned = escalate(gateway.db, gateway.services, _at("2026-11-18T09:46:00+00:00"))
    assert warned.levels == [(ticket.number, "r2:warn-75")]
    breached = escalate(gateway.db, gateway.services, _at("2026-11-18T10:01:00+00:00"))
    assert breached.levels == [(ticket.number, "r2:breach")]
    assert escalate(gateway.db, gateway.services, _at("2026-11-18T11:00:00+00:00")).levels == []
    assert _show(settings, ticket.number)["breached_at"] == "2026-11-18T10:00:00Z"
    subjects = [str(m["Subject"]) for m in outbox_mail(gateway, ticket, "escalation")]
    assert [s.split(":")[0] for s in subjects] == [
        f"[#{ticket.number}] SLA breached", f"[#{ticket.number}] SLA warning (75%)",
        f"[#{ticket.number}] SLA breached"]


def test_an_answered_reopened_ticket_is_left_alone(gateway: Gateway) -> None:
    ticket = ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example")
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == ticket.number).values(
            first_response_at=_at("2026-11-17T10:30:00+00:00"), status=TicketStatus.SOLVED,
            resolved_at=_at("2026-11-17T11:00:00+00:00")))
    reply_at(gateway, ticket, "2026-11-18T09:00:00+00:00", sender="anna@acme.example")
    with gateway.db.transaction() as session:  # the agent answers the new round in time
        session.execute(update(Ticket).where(Ticket.number == ticket.number).values(
            first_response_at=_at("2026-11-18T09:20:00+00:00")))
    assert escalate(gateway.db, gateway.services, _at("2026-11-18T12:00:00+00:00")).levels == []


def test_a_pass_with_nothing_to_do_takes_no_lock(gateway: Gateway) -> None:
    # Open tickets far from any level: the pass decides in one read, so a writer holding
    # the ticket (or SQLite's one write lock) does not hold the sweep up.
    tickets = [ticket_at(gateway, "2026-11-17T10:00:00+00:00", sender="anna@acme.example",
                         subject=f"Question {n}", body=f"Question number {n} about sync.")
               for n in range(3)]
    locked, released = threading.Event(), threading.Event()

    def _hold() -> None:
        with gateway.db.transaction() as session:
            session.get(Ticket, tickets[0].number, with_for_update=True)
            locked.set()
            time.sleep(3)
            released.set()

    holder = threading.Thread(target=_hold)
    holder.start()
    assert locked.wait(10)
    report = escalate(gateway.db, gateway.services, _at("2026-11-17T10:05:00+00:00"))
    assert not released.is_set()  # done while the lock was still held
    holder.join()
    assert report.levels == [] and report.outbox_ids == []
