"""A ticket waiting on the customer, over real SMTP (issue 16 items 4 and 6, DESIGN §12/§13):
``jobs run pending-reminders`` sends one reminder, ``jobs run auto-close`` closes it with a
notice that says how to reopen, a second run sends nothing, a customer's reply in between
cancels both; and every mail the gateway sent about the ticket is in ``tickets show``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.models import TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import broken_template, run_gateway, settled, wait_for
from tests.e2e.test_conversations import (
    AUTHSERV,
    agent_mail,
    body_text,
    deliver,
    mail_to,
    open_ticket,
    outbox_kinds,
    ticket,
)
from tests.mail import make_mail

MAX = "max@acme.example"  # reads German (the conversations directory)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(sender_authentication="authres", authserv_id=AUTHSERV,
                            pending_reminder_days=3, autoclose_days=7, reopen_window_days=14)


def _pending(settings: Settings, gw: Gateway) -> tuple[int, datetime]:
    """Max's ticket, set pending by Kenji's question; and when it began to wait."""
    number, _ = open_ticket(settings, gw)
    deliver(settings, gw, agent_mail(number, "#status pending\nWhich client version?"),
            mail_from="kenji@support.example")
    waiting = ticket(gw, number)
    assert waiting.status == TicketStatus.PENDING and waiting.pending_since is not None
    return number, waiting.pending_since


def _run(settings: Settings, gw: Gateway, job: str, at: datetime) -> None:
    result = run_gateway(settings, "jobs", "run", job, "--at", at.isoformat())
    assert result.returncode == 0, result.stderr.decode()
    wait_for(lambda: settled(gw), message="outbox settled")


def _mail_of(settings: Settings, number: int, words: str) -> list[EmailMessage]:
    return [m for m in mail_to(settings, MAX)
            if str(m["Subject"]).startswith(f"[#{number}]") and words in body_text(m)]


def _show(settings: Settings, number: int) -> dict[str, Any]:
    result = run_gateway(settings, "tickets", "show", str(number), "--json")
    assert result.returncode == 0, result.stderr.decode()
    shown: dict[str, Any] = json.loads(result.stdout)
    return shown


def test_a_pending_ticket_is_reminded_once_then_closed_once_with_how_to_reopen(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, since = _pending(settings, gw)

    # Before the reminder days have passed, nothing is sent
    _run(settings, gw, "pending-reminders", since + timedelta(days=2))
    assert "pending_reminder" not in outbox_kinds(gw, MAX)

    # After them, one reminder in Max's language, threaded on his ticket
    _run(settings, gw, "pending-reminders", since + timedelta(days=3, minutes=1))
    [reminder] = _mail_of(settings, number, "seit 3 Tagen auf Ihre Antwort")
    assert reminder["Content-Language"] == "de"
    assert reminder["Auto-Submitted"] == "auto-generated"
    assert str(reminder["Reply-To"]).startswith("support+") and reminder["In-Reply-To"]
    assert "innerhalb von 4 Tagen" in body_text(reminder)  # when it will be closed

    # A second run, later, sends nothing more
    _run(settings, gw, "pending-reminders", since + timedelta(days=5))
    assert outbox_kinds(gw, MAX).count("pending_reminder") == 1
    assert ticket(gw, number).status == TicketStatus.PENDING

    # Auto-close before its days does nothing; after them the ticket is closed with a notice
    _run(settings, gw, "auto-close", since + timedelta(days=6))
    assert ticket(gw, number).status == TicketStatus.PENDING
    closed_at = since + timedelta(days=7, minutes=1)
    _run(settings, gw, "auto-close", closed_at)
    closed = ticket(gw, number)
    assert closed.status == TicketStatus.CLOSED and closed.resolved_at == closed_at
    [notice] = _mail_of(settings, number, "haben wir Ihre Anfrage geschlossen")
    assert notice["Auto-Submitted"] == "auto-generated"
    assert "innerhalb von 14 Tagen auf diese E-Mail" in body_text(notice)  # how to reopen

    # A second run sends nothing
    _run(settings, gw, "auto-close", since + timedelta(days=9))
    assert outbox_kinds(gw, MAX).count("auto_closed") == 1

    # And the history lists every mail the gateway sent Max, as system messages
    shown = _show(settings, number)
    system = [(m["kind"], m["subject"]) for m in shown["messages"] if m["role"] == "system"]
    subject = f"[#{number}] VPN drops every hour"
    # the acknowledgement, the reminder, the closing (Kenji's relayed question is his own)
    assert system == [("auto_reply", subject), ("notice", subject), ("notice", subject)]
    assert [m["role"] for m in shown["messages"] if m["role"] != "system"] == [
        "requester", "agent"]
    assert all(m["from"] == "support@support.example" for m in shown["messages"]
               if m["role"] == "system")
    assert shown["updated_at"] == closed_at.isoformat().replace("+00:00", "Z")


def test_a_customer_reply_in_between_cancels_the_reminder_and_the_closing(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, since = _pending(settings, gw)

    # Max answers before either job is due: the ticket is open again
    deliver(settings, gw, make_mail(sender=MAX, subject=f"Re: [#{number}] VPN",
                                    body="Version 2.3."), mail_from=MAX)
    assert ticket(gw, number).status == TicketStatus.OPEN

    # So neither job sends anything, however late it runs
    _run(settings, gw, "pending-reminders", since + timedelta(days=4))
    _run(settings, gw, "auto-close", since + timedelta(days=8))
    kinds = outbox_kinds(gw, MAX)
    assert "pending_reminder" not in kinds and "auto_closed" not in kinds
    assert ticket(gw, number).status == TicketStatus.OPEN


def test_an_agents_new_question_restarts_the_wait(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, since = _pending(settings, gw)
    _run(settings, gw, "pending-reminders", since + timedelta(days=3, minutes=1))
    assert outbox_kinds(gw, MAX).count("pending_reminder") == 1

    # Kenji asks again (a public reply, the ticket stays pending): the wait starts again
    deliver(settings, gw, agent_mail(number, "And which operating system?"),
            mail_from="kenji@support.example")
    again = ticket(gw, number)
    assert again.status == TicketStatus.PENDING and again.pending_since is not None
    assert again.pending_since > since and again.pending_reminded_at is None

    # So the first wait's closing time closes nothing; the new wait gets its own reminder
    restart = again.pending_since
    _run(settings, gw, "auto-close", restart + timedelta(days=6))
    assert ticket(gw, number).status == TicketStatus.PENDING
    _run(settings, gw, "pending-reminders", restart + timedelta(days=3, minutes=1))
    assert outbox_kinds(gw, MAX).count("pending_reminder") == 2


def test_zero_days_turns_each_job_off(
        running: GatewayServer, gw: Gateway, settings: Settings) -> None:
    number, since = _pending(settings, gw)
    off = settings.model_copy(update={"pending_reminder_days": 0, "autoclose_days": 0})
    for job in ("pending-reminders", "auto-close"):
        result = run_gateway(off, "jobs", "run", job, "--at",
                             (since + timedelta(days=365)).isoformat())
        assert result.returncode == 0, result.stderr.decode()
    kinds = outbox_kinds(gw, MAX)
    assert "pending_reminder" not in kinds and "auto_closed" not in kinds
    assert ticket(gw, number).status == TicketStatus.PENDING


def test_a_reminder_that_cannot_be_made_holds_up_no_other_ticket(
        running: GatewayServer, gw: Gateway, settings: Settings, tmp_path: Path) -> None:
    # Max's ticket (German) comes first; an operator's copy of the templates has a German
    # reminder subject that fails to render.  Before, the run stopped at Max's ticket
    stranger = "lena@nowhere.example"
    first, since = _pending(settings, gw)
    second, _ = open_ticket(settings, gw, sender=stranger, subject="Printer offline",
                            body="Hello, the printer is offline since this morning.")
    deliver(settings, gw, agent_mail(second, "#status pending\nWhich printer model?"),
            mail_from="kenji@support.example")
    broken = broken_template(settings, tmp_path, "de", "pending_reminder")
    operator = broken.settings

    later = since + timedelta(days=4)
    result = run_gateway(operator, "jobs", "run", "pending-reminders", "--at", later.isoformat())
    assert result.returncode == 1
    assert b"1 mails queued" in result.stdout
    assert b"1 of 2 items failed" in result.stderr
    assert f"ticket #{first}".encode() in result.stderr
    wait_for(lambda: settled(gw), message="outbox settled")
    assert "pending_reminder" in outbox_kinds(gw, stranger)
    assert "pending_reminder" not in outbox_kinds(gw, MAX)
    assert ticket(gw, first).pending_reminded_at is None  # left for the next run

    broken.mend()
    _run(operator, gw, "pending-reminders", later + timedelta(minutes=5))
    assert outbox_kinds(gw, MAX).count("pending_reminder") == 1
    assert outbox_kinds(gw, stranger).count("pending_reminder") == 1
