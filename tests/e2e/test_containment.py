"""One crafted message cannot stall processing for everyone (issue 13, item 4).

Each test sends a crafted message over real SMTP, then a normal request, and checks
that the normal request is acknowledged within a few seconds and that the crafted one
ends processed with what the limits left out recorded, or quarantined with a reason
naming the limit.  The limits are small here so that a few hundred parts trigger them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import defer

from gateway.config import Settings
from gateway.models import (
    AttachmentRecord,
    MessageRecord,
    SpoolEntry,
    SpoolState,
    Ticket,
    utcnow,
)
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests import crafted
from tests.conftest import DIRECTORY, run_gateway, wait_for
from tests.mail import maildir_messages, make_mail, send

ACK_SECONDS = 10.0
"""A few seconds, with room for a loaded test machine (one job alone takes ~20 ms)."""

SMALL_LIMITS: dict[str, Any] = {
    "max_mime_parts": 50, "max_attachments": 10, "max_attachments_size": 1024 * 1024,
    "max_tnef_objects": 200, "max_header_size": 4096, "max_header_block_size": 64 * 1024,
    "duplicate_candidates": 3, "ack_limit_per_hour": 100,
}
# Limits high enough that nothing is cut: only the budget stops a costly message.
BUDGET: dict[str, Any] = {"max_mime_parts": 10_000_000, "processing_budget_seconds": 8.0}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    overrides = getattr(request, "param", SMALL_LIMITS)
    return settings_factory(**overrides)


def _sent(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def _ack_for(settings: Settings, message_id: str) -> Message | None:
    for message in maildir_messages(_sent(settings)):
        if (message["In-Reply-To"] or "").strip() == message_id:
            return message
    return None


def _spool(gateway: Gateway, message_id: str) -> SpoolEntry | None:
    with gateway.db.reading() as session:
        return session.scalars(select(SpoolEntry).options(defer(SpoolEntry.raw)).where(
            SpoolEntry.message_id == message_id.strip("<>"))).one_or_none()


def _analysis_started(gateway: Gateway, message_id: str) -> bool:
    """Its analysis runs in a processing child now: as the pool of this process sees it
    (embedded), or, where workers of their own process it (scale-out), judged by its age:
    an idle worker takes a stored message at once, and 2 s is far inside both its
    analysis (about 30 s) and the 8 s budget."""
    entry = _spool(gateway, message_id)
    if entry is None:
        return False
    pool = gateway.processing_pool
    if pool is not None:
        return entry.id in pool.analysing
    return bool((utcnow() - entry.received_at).total_seconds() >= 2)


def _settled(gateway: Gateway, message_id: str) -> SpoolEntry:
    def done() -> SpoolEntry | None:
        entry = _spool(gateway, message_id)
        return entry if entry is not None and entry.state != SpoolState.RECEIVED else None
    entry: SpoolEntry = wait_for(done, timeout=60, message=f"{message_id} processed")
    return entry


def _normal_request_is_acknowledged(gateway: Gateway, settings: Settings, n: int) -> SpoolEntry:
    """Send an ordinary request and wait for its acknowledgement; return its spool row."""
    message_id = f"<normal-{n}-{time.monotonic_ns()}@client.example>"
    raw = make_mail(sender=f"normal{n}@client.example", subject=f"Normal request {n}",
                    body="Hello, the sync fails since Monday.", message_id=message_id)
    send(settings.smtp_listen, crafted.crlf(raw), mail_from=f"normal{n}@client.example")
    wait_for(lambda: _ack_for(settings, message_id), timeout=ACK_SECONDS,
             message="the normal request's acknowledgement")
    return _settled(gateway, message_id)


def _message_id(raw: bytes) -> str:
    """From the header block only: parsing a crafted body here would hold the GIL of the
    gateway running in this process."""
    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip()


def _send(settings: Settings, raw: bytes) -> str:
    send(settings.smtp_listen, crafted.crlf(raw), mail_from="crafted@crafted.example")
    return _message_id(raw)


def _attachments(gateway: Gateway, spool_id: int) -> list[str]:
    with gateway.db.reading() as session:
        return list(session.scalars(select(AttachmentRecord.filename).join(MessageRecord)
                                    .where(MessageRecord.spool_id == spool_id)
                                    .order_by(AttachmentRecord.id)))


def _flags(gateway: Gateway, spool_id: int) -> list[str]:
    with gateway.db.reading() as session:
        record = session.scalars(select(MessageRecord).where(
            MessageRecord.spool_id == spool_id)).one()
        return list(record.flags or [])


def _trace(entry: SpoolEntry) -> str:
    return " | ".join(f"{t['step']} {t['outcome']}: {t['explanation']}" for t in entry.trace)


def test_winmail_dat_with_too_many_files_is_kept_whole_and_others_go_on(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a winmail.dat holding 2,000 tiny files (6,000 TNEF objects, over 200),
    message_id = _send(settings, crafted.winmail(2000))
    # then a normal request right behind it is acknowledged within seconds,
    _normal_request_is_acknowledged(gateway, settings, 1)
    # and the crafted one makes a ticket with the winmail.dat kept as one file, the
    # limit named in its trace and on the message.
    entry = _settled(gateway, message_id)
    assert entry.state == SpoolState.PROCESSED, entry.reason
    assert _attachments(gateway, entry.id) == ["winmail.dat"]
    assert "max_tnef_objects (200)" in _trace(entry)
    assert any("max_tnef_objects" in flag for flag in _flags(gateway, entry.id))


def test_attachments_beyond_the_limit_are_listed_not_stored(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a winmail.dat of 30 files (within the TNEF limit, over max_attachments 10),
    message_id = _send(settings, crafted.winmail(30))
    _normal_request_is_acknowledged(gateway, settings, 2)
    # then the first ten are stored and the other twenty listed by name in the trace.
    entry = _settled(gateway, message_id)
    assert entry.state == SpoolState.PROCESSED, entry.reason
    assert _attachments(gateway, entry.id) == [f"file-{n:05d}.txt" for n in range(10)]
    trace = _trace(entry)
    assert "20 attachment(s)" in trace and "max_attachments 10" in trace
    assert "file-00010.txt (4 bytes)" in trace and "file-00029.txt (4 bytes)" in trace


def test_many_mime_parts_are_read_up_to_the_limit(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a message of 3,000 tiny MIME parts (the limit is 50),
    message_id = _send(settings, crafted.many_parts(3000))
    _normal_request_is_acknowledged(gateway, settings, 3)
    # then its text makes a ticket, at most ten parts are stored, and the cut is recorded.
    entry = _settled(gateway, message_id)
    assert entry.state == SpoolState.PROCESSED, entry.reason
    assert len(_attachments(gateway, entry.id)) == 10
    with gateway.db.reading() as session:
        text = session.scalars(select(MessageRecord.text).where(
            MessageRecord.spool_id == entry.id)).one()
    assert text == "Please see the parts."
    assert "more than max_mime_parts (50) MIME parts" in _trace(entry)


def test_a_long_encoded_subject_is_cut_and_a_huge_header_block_quarantined(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a Subject of 2,000 RFC 2047 words, folded (SMTP's line limit), about 50 KB,
    subject = crafted.encoded_subject(2000).replace(b"?= =?", b"?=\n =?")
    long_subject = _send(settings, subject)
    # and a message with a header block of 200 KB (2,000 filler fields),
    fillers = "".join(f"X-Filler-{n}: {'x' * 90}\n" for n in range(2000)).encode()
    huge = make_mail(sender="headers@crafted.example", subject="Huge header block")
    huge_block = _send(settings, fillers + huge)
    _normal_request_is_acknowledged(gateway, settings, 4)
    # then the subject is cut to max_header_size and the ticket made,
    entry = _settled(gateway, long_subject)
    assert entry.state == SpoolState.PROCESSED, entry.reason
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(
            Ticket.number == entry.ticket_number)).one()
    assert ticket.subject.startswith("Grüße Grüße") and len(ticket.subject) < 4096
    assert "max_header_size" not in ticket.subject
    assert "longer than max_header_bytes (4,096) cut: Subject" in _trace(entry)
    # and the huge header block is quarantined with the limit named.
    blocked = _settled(gateway, huge_block)
    assert blocked.state == SpoolState.QUARANTINED
    assert "over max_header_block_bytes (65,536)" in blocked.reason


def test_duplicate_check_compares_only_the_newest_open_tickets(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given five open tickets of one sender, each with a large text (the oldest is the
    # one a new request will repeat),
    sender = "repeat@client.example"
    body = "The export to PDF stops at page three with an error. " * 2000
    texts = [body] + [f"Unrelated question number {n}. " * 3000 for n in range(4)]
    for n, text in enumerate(texts):  # one after the other: ticket numbers in this order
        raw = make_mail(sender=sender, subject=f"Question {n}", body=text)
        assert _settled(gateway, _send_from(settings, raw, sender)).state == SpoolState.PROCESSED
    # When the sender repeats the oldest request under a new subject,
    repeat = _send_from(settings, make_mail(sender=sender, subject="Again", body=body), sender)
    # then only the three newest open tickets are compared (the trace says so), so the
    # repeated one, fourth newest, is not among them: a new ticket, not a duplicate.
    entry = _settled(gateway, repeat)
    assert entry.state == SpoolState.PROCESSED
    assert "compared with the 3 newest of 5 open tickets (duplicate_candidates 3)" in _trace(
        entry)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(
            Ticket.number == entry.ticket_number)).one()
        assert ticket.duplicate_of is None
        assert session.scalar(select(func.count()).select_from(Ticket)) == 6


def test_duplicate_check_still_links_a_repeat_of_a_recent_large_ticket(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given an open ticket with a 200 KB text (only its first characters are compared),
    sender = "again@client.example"
    body = "The export to PDF stops at page three with an error. " * 4000
    first = _send_from(settings, make_mail(sender=sender, subject="PDF export", body=body),
                       sender)
    original = _settled(gateway, first)
    # When the sender sends the same text again under another subject,
    repeat = _send_from(settings, make_mail(sender=sender, subject="Still broken", body=body),
                        sender)
    # then it is linked as a duplicate of the first.
    entry = _settled(gateway, repeat)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(
            Ticket.number == entry.ticket_number)).one()
    assert ticket.duplicate_of == original.ticket_number
    assert "nearly the same text" in _trace(entry)


def _send_from(settings: Settings, raw: bytes, sender: str) -> str:
    send(settings.smtp_listen, crafted.crlf(raw), mail_from=sender)
    return _message_id(raw)


@pytest.mark.parametrize("settings", [BUDGET], indirect=True)
def test_a_message_over_the_processing_budget_is_quarantined_without_holding_others(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    # Given a message whose analysis takes far longer than the 8 s budget (2,000,000 MIME
    # parts, 14 MB, and a limit that lets the parser read them all: about 30 s on a 2026 core),
    costly = _send(settings, crafted.many_parts(2_000_000, bare=True))
    wait_for(lambda: _spool(gateway, costly), message="the costly message stored")
    # When a normal request is sent while it is being analysed,
    wait_for(lambda: _analysis_started(gateway, costly),
             message="the costly message's analysis started")
    normal = _normal_request_is_acknowledged(gateway, settings, 5)
    # then the normal one is acknowledged, and done before the costly one was stopped (it
    # did not wait behind it),
    entry = _settled(gateway, costly)
    assert entry.state == SpoolState.QUARANTINED
    assert "processing_budget_seconds (8 s)" in entry.reason
    assert normal.processed_at is not None and entry.processed_at is not None
    assert normal.processed_at < entry.processed_at


def test_an_unfolded_encoded_subject_through_the_pipe_is_cut_not_quadratic(
        settings: Settings, worker_process: None) -> None:
    # Given a Subject of 2,000 RFC 2047 words on one line (50 KB; the pipe and IMAP take
    # any line length), piped in with `gateway ingest`,
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    result = run_gateway(settings, "ingest", "-", input=crafted.encoded_subject(2000))
    assert result.returncode == 0, result.stderr.decode()

    def processed() -> list[dict[str, Any]]:
        rows = json.loads(run_gateway(settings, "inbox", "list", "--json").stdout)
        return rows if rows and rows[0]["state"] != "received" else []
    # then it makes a ticket whose subject is the first words, cut at max_header_size.
    [row] = wait_for(processed, timeout=60, message="the piped message processed")
    assert row["state"] == "processed", row
    [ticket] = json.loads(run_gateway(settings, "tickets", "list", "--json").stdout)
    assert ticket["subject"].startswith("Grüße Grüße") and len(ticket["subject"]) < 4096
