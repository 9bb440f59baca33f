"""`gateway inbox list/show/replay`: every spooled message with its state, reason and
trace; a quarantined message is re-run after the fault is fixed, and such a fault never
stops a process from starting."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.runtime.app import Gateway
from gateway.runtime.warm_up import warm_up
from tests.conftest import DIRECTORY, run_gateway, wait_for
from tests.mail import maildir_messages, make_mail


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], templates: Path) -> Settings:
    return settings_factory(templates_dir=templates)


def _json(settings: Settings, *args: str) -> Any:
    result = run_gateway(settings, *args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def _state(settings: Settings, wanted: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _json(settings, "inbox", "list", "--json")
    return rows if rows and all(r["state"] == wanted for r in rows) else []


def test_quarantined_message_is_visible_and_replayed_after_a_fix(
        settings: Settings, templates: Path, worker_process: None) -> None:
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    # Given a broken German acknowledgement template (an operator's bad edit)
    template = templates / "de" / "acknowledgement" / "body.txt.j2"
    good = template.read_text()
    template.write_text(good + "\n{% if %}\n")
    # When Anna's mail arrives through the pipe
    assert run_gateway(settings, "ingest", "-", input=make_mail(subject="Broken")).returncode == 0
    # Then it is quarantined with the reason, and its raw bytes are kept
    [row] = wait_for(lambda: _state(settings, "quarantined"), message="quarantine")
    assert row["state"] == "quarantined"
    assert "notify" in row["reason"] and "TemplateSyntaxError" in row["reason"]
    shown = _json(settings, "inbox", "show", str(row["id"]), "--json")
    assert shown["id"] == row["id"] and shown["message_id"] and shown["attempts"] == 1
    raw = run_gateway(settings, "inbox", "show", str(row["id"]), "--raw").stdout
    assert b"Subject: Broken" in raw
    assert _json(settings, "tickets", "list", "--json") == []
    # When the template is fixed and the message replayed
    template.write_text(good)
    replay = run_gateway(settings, "inbox", "replay", str(row["id"]))
    assert replay.returncode == 0, replay.stderr.decode()
    # Then it is processed once: one ticket, one acknowledgement
    [row] = wait_for(lambda: _state(settings, "processed"), message="processed after replay")
    [ticket] = _json(settings, "tickets", "list", "--json")
    assert ticket["subject"] == "Broken" and row["ticket"] == ticket["number"]
    outbound = Path(settings.outbound_url.removeprefix("maildir:"))
    sent = wait_for(lambda: maildir_messages(outbound), message="acknowledgement")
    assert len(sent) == 1
    # A processed message cannot be replayed (it would duplicate the ticket)
    again = run_gateway(settings, "inbox", "replay", str(row["id"]))
    assert again.returncode != 0 and b"only quarantined or ignored" in again.stderr


def test_ignored_message_shows_its_reason(settings: Settings, worker_process: None) -> None:
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    bounce = (b"From: MAILER-DAEMON@mx.acme.example\r\nTo: support@support.example\r\n"
              b"Subject: Undelivered Mail Returned to Sender\r\n"
              b"Message-ID: <bounce-1@mx.acme.example>\r\nAuto-Submitted: auto-replied\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
              b" boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
              b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
              b"Final-Recipient: rfc822; gone@acme.example\r\nAction: failed\r\n"
              b"Status: 5.1.1\r\n\r\n--b--\r\n")
    assert run_gateway(settings, "ingest", "-", input=bounce).returncode == 0
    [row] = wait_for(lambda: _state(settings, "ignored"), message="ignored")
    assert "gone@acme.example" in row["reason"]
    text = run_gateway(settings, "inbox", "list").stdout.decode()
    assert "ignored" in text and "gone@acme.example" in text


def test_warming_up_with_a_broken_template_is_not_fatal(
        settings: Settings, templates: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Given an operator's broken German acknowledgement template
    template = templates / "de" / "acknowledgement" / "body.txt.j2"
    template.write_text(template.read_text() + "\n{% if %}\n")
    # When a process (serve, or a processing child) warms up its processing path
    with caplog.at_level(logging.WARNING, logger="gateway.runtime.warm_up"):
        seconds = warm_up(Gateway(settings).services)
    # Then it goes on (a child that died here would be replaced by one dying the same way,
    # and nothing would be processed), saying why warming failed
    assert seconds >= 0
    assert "warming up the processing path failed (TemplateSyntaxError" in caplog.text
