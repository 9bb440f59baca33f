"""`gateway queue`: oldest first, no priorities, details do not move a ticket;
`gateway insights`: a team's open and total tickets, issue types, per product."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import Ticket, TicketStatus
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.spool import store_message
from tests.conftest import run_gateway
from tests.mail import make_mail
from tests.rules.tickets import RULES_DIRECTORY, ticket_at


def _add_details(gateway: Gateway, ticket: Ticket, sender: str) -> None:
    raw = make_mail(sender=sender, subject=f"Re: [#{ticket.number}] {ticket.subject}",
                    body="More details: it also fails on my phone.",
                    in_reply_to=ticket.origin_message_id)
    stored = store_message(gateway.db, raw, source="smtp", mail_from=sender,
                           rcpt_tos=["support@support.example"])
    outcome = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    assert outcome.state == "processed" and outcome.ticket_number == ticket.number


def _queue(settings: Settings, *args: str) -> list[dict[str, object]]:
    result = run_gateway(settings, "queue", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_queue_is_oldest_first_and_details_do_not_move_a_ticket(gateway: Gateway,
                                                                settings: Settings) -> None:
    # An Enhanced ticket arrives after a standard one: it is due sooner, but not first.
    standard = ticket_at(gateway, "2026-11-17T00:50:00+00:00", sender="giulia@globex.example")
    enhanced = ticket_at(gateway, "2026-11-17T01:00:00+00:00", sender="anna@acme.example")
    # 10:10 JST on a Tuesday: inside Japanese hours, the Japanese queue.
    japanese = ticket_at(gateway, "2026-11-17T01:10:00+00:00", sender="yuki@globex.example",
                         body="同期が失敗します。")
    solved = ticket_at(gateway, "2026-11-17T00:10:00+00:00", sender="max@acme.example")
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == solved.number).values(
            status=TicketStatus.SOLVED))
    # Details added to the newest and the oldest unanswered tickets, later on.
    _add_details(gateway, japanese, "yuki@globex.example")
    _add_details(gateway, standard, "giulia@globex.example")
    _add_details(gateway, enhanced, "anna@acme.example")
    everything = _queue(settings)
    assert [row["number"] for row in everything] == [standard.number, enhanced.number,
                                                     japanese.number]
    assert [row["position"] for row in everything] == [1, 2, 3]
    assert everything[1]["tier"] == "enhanced"
    assert [row["number"] for row in _queue(settings, "--queue", "en")] == [
        standard.number, enhanced.number]
    assert [row["number"] for row in _queue(settings, "--queue", "ja")] == [japanese.number]
    text = run_gateway(settings, "queue")
    assert text.returncode == 0
    assert text.stdout.decode().splitlines()[0].startswith(f"   1. #{standard.number}")


def test_insights_for_a_team(gateway: Gateway, settings: Settings) -> None:
    with gateway.db.transaction() as session:
        load_directory_file(session, RULES_DIRECTORY)
    ticket_at(gateway, "2026-11-17T09:00:00+00:00", sender="bob@initech.example",
              subject="Dash sync", body="The Dash board does not sync.")
    ticket_at(gateway, "2026-11-17T09:10:00+00:00", sender="bob@initech.example",
              subject="Login", body="Files: I cannot log in, the password is refused.")
    ticket_at(gateway, "2026-11-17T09:20:00+00:00", sender="bob@initech.example",
              subject="Files", body="Files sync stopped after the update.")
    last = ticket_at(gateway, "2026-11-17T09:30:00+00:00", sender="bob@initech.example",
                     subject="Question", body="How do I invite a guest to Files?")
    ticket_at(gateway, "2026-11-17T09:40:00+00:00", sender="anna@acme.example")  # other team
    # Bob asks about the Dash sync again: a duplicate, not a request or issue of its own.
    again = ticket_at(gateway, "2026-11-17T09:50:00+00:00", sender="bob@initech.example",
                      subject="Dash sync", body="The Dash board still does not sync!")
    assert again.duplicate_of is not None and again.status == TicketStatus.CLOSED
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == last.number).values(
            status=TicketStatus.CLOSED))
    result = run_gateway(settings, "insights", "--team", "initech", "--json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["open_tickets"], view["total_submitted"], view["duplicates"]) == (3, 4, 1)
    assert view["top_issue_types"][0] == {"issue_type": "sync", "tickets": 2}
    assert view["per_product"] == {"dash": {"sync": 1}, "files": {"login": 1, "other": 1,
                                                                    "sync": 1}}
    assert view["tickets_per_product"] == {"files": 3, "dash": 1}
    text = run_gateway(settings, "insights", "--team", "initech")
    assert text.returncode == 0, text.stderr
    assert "tickets per product: files 3, dash 1" in text.stdout.decode()
    assert "4 submitted in all, not counting 1 duplicates" in text.stdout.decode()
    with gateway.db.reading() as session:
        types = set(session.scalars(select(Ticket.issue_type)))
    assert {"sync", "login", "other"} <= types
    missing = run_gateway(settings, "insights", "--team", "nope")
    assert missing.returncode == 1 and b"there is no team 'nope'" in missing.stderr
