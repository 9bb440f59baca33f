"""Shared mailboxes over IMAP against a real Dovecot: intake, marking after commit,
crash and restart, server restarts, UIDVALIDITY changes, Sent-folder replies,
backlog import, IDLE latency, wrong credentials, TLS."""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from sqlalchemy import func, select

from gateway.models import (
    ImapFolderState,
    MessageRecord,
    OutboxItem,
    SpoolEntry,
    SpoolState,
    Ticket,
)
from gateway.runtime.app import Gateway
from tests.conftest import Processes, run_gateway, wait_for, wait_for_port
from tests.corpus import corpus_bytes, corpus_entries
from tests.imap.conftest import (
    OTHER,
    SHARED,
    ImapGateways,
    folder_state,
    mailbox,
    spool_count,
    wait_all_processed,
    wait_polled,
)
from tests.imap.dovecot import Dovecot
from tests.mail import make_mail

KEYWORD = "$Gateway"


def _mails(count: int, tag: str) -> list[bytes]:
    return [make_mail(sender=f"user{n}@customer{n % 7}.example", subject=f"{tag} {n}",
                      body=f"Message {n} of {tag}.", message_id=f"<{tag}-{n}@client.example>")
            for n in range(count)]


def _corpus_mails(count: int) -> list[bytes]:
    """Real list mail (LKML, notmuch, …) with distinct Message-IDs."""
    seen: set[str] = set()
    chosen: list[bytes] = []
    for entry in corpus_entries("threads"):
        message_id = entry.get("message_id")
        if entry["format"] != "rfc822" or not message_id or message_id in seen:
            continue
        seen.add(message_id)
        chosen.append(corpus_bytes("threads", entry["file"]))
        if len(chosen) == count:
            break
    assert len(chosen) == count
    return chosen


def _append(dovecot: Dovecot, folder: str, mails: list[bytes], *, user: str = SHARED,
            when: datetime | None = None, batch: int = 100) -> None:
    client = dovecot.client(user)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for start in range(0, len(mails), batch):
            client.multiappend(folder, [{"msg": m, "date": when} if when else m
                                        for m in mails[start:start + batch]])
    finally:
        client.logout()


def _uids(dovecot: Dovecot, folder: str, criteria: list[str], user: str = SHARED) -> list[int]:
    """The UIDs matching ``criteria``, as a mail client of ``user`` would see them.

    Dovecot ends a session with ``BYE IMAP session state is inconsistent`` when the folder
    it selected is being recreated or resynchronised (a new UIDVALIDITY) by another session
    at that moment; a client logs in again, and so does this one.
    """
    for attempt in range(3):
        client = dovecot.client(user)
        try:
            client.select_folder(folder, readonly=True)
            return list(client.search(criteria))
        except imaplib.IMAP4.abort:
            if attempt == 2:
                raise
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()
    raise AssertionError("unreachable")


def _ticket_messages(gateway: Gateway) -> Counter[str | None]:
    with gateway.db.reading() as session:
        return Counter(session.scalars(select(MessageRecord.message_id)))



def _assert_a_later_poll_takes_nothing_more(gateway: Gateway, taken: int) -> None:
    """The INBOX checkpoint counts ``taken`` messages, and a poll after it stores nothing."""
    done = wait_taken(gateway, "shared", "INBOX", taken)
    assert done is not None and done.taken == taken and done.last_poll_at is not None
    wait_for(lambda: (s := folder_state(gateway, "shared", "INBOX")) is not None
             and s.last_poll_at is not None and done.last_poll_at is not None
             and s.last_poll_at > done.last_poll_at, 30, message="another poll")
    assert spool_count(gateway) == taken
    again = folder_state(gateway, "shared", "INBOX")
    assert again is not None and again.taken == taken and again.last_error == ""

def test_500_messages_become_ticket_messages_flagged_after_storage(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    server = imap_gateways.start([mailbox(dovecot, after=f"flag:{KEYWORD}")])
    gateway = server.gateway
    wait_polled(gateway, "shared")
    mails = _mails(450, "bulk") + _corpus_mails(50)
    _append(dovecot, "INBOX", mails)
    wait_all_processed(gateway, 500, timeout=240)
    with gateway.db.reading() as session:
        sources = Counter(session.scalars(select(SpoolEntry.source)))
        states = Counter(session.scalars(select(SpoolEntry.state)))
        reasons = [r for r in session.scalars(select(SpoolEntry.reason).where(
            SpoolEntry.state != SpoolState.PROCESSED))]
    assert sources == {"imap:shared/INBOX": 500}
    assert states == {SpoolState.PROCESSED: 500}, reasons
    recorded = _ticket_messages(gateway)
    assert sum(recorded.values()) == 500 and max(recorded.values()) == 1
    assert _uids(dovecot, "INBOX", ["UNKEYWORD", KEYWORD]) == []
    assert len(_uids(dovecot, "INBOX", ["KEYWORD", KEYWORD])) == 500
    _assert_a_later_poll_takes_nothing_more(gateway, 500)


def test_sigkill_mid_batch_then_restart_stores_each_message_once(
        dovecot: Dovecot, imap_gateways: ImapGateways, tmp_path: Path) -> None:
    boxes = [mailbox(dovecot, after="move:Processed", batch_size=10)]
    settings = imap_gateways.settings(boxes)
    gateway = Gateway(settings)
    gateway.db.upgrade()
    procs = Processes(settings, tmp_path)
    try:
        first = procs.serve()
        wait_polled(gateway, "shared")
        _append(dovecot, "INBOX", _mails(300, "crash"))
        wait_for(lambda: spool_count(gateway) >= 60, 60, interval=0.02,
                 message="part of the mail taken")
        first.kill()
        first.wait()
        left = len(_uids(dovecot, "INBOX", ["ALL"]))
        assert 0 < left < 300, "the kill did not land in the middle of the intake"
        procs.serve()
        wait_for(lambda: not _uids(dovecot, "INBOX", ["ALL"]), 120, interval=0.5,
                 message="the inbox emptied after the restart")
        wait_all_processed(gateway, 300, timeout=180)
        with gateway.db.reading() as session:
            spooled = Counter(session.scalars(select(SpoolEntry.message_id)))
            states = Counter(session.scalars(select(SpoolEntry.state)))
        expected = {f"crash-{n}@client.example" for n in range(300)}
        assert set(spooled) == expected and max(spooled.values()) == 1
        assert states == {SpoolState.PROCESSED: 300}
        recorded = _ticket_messages(gateway)
        assert set(recorded) == expected and max(recorded.values()) == 1
        assert len(_uids(dovecot, "Processed", ["ALL"])) == 300
    finally:
        procs.stop_all()
        gateway.close()


def test_dovecot_restart_the_poller_reconnects_and_takes_what_arrived(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    server = imap_gateways.start([mailbox(dovecot)])
    gateway = server.gateway
    wait_polled(gateway, "shared")
    _append(dovecot, "INBOX", _mails(3, "before"))
    wait_all_processed(gateway, 3)
    dovecot.stop()
    wait_for(lambda: (s := folder_state(gateway, "shared", "INBOX")) is not None
             and s.last_error != "", 20, message="the outage recorded")
    # Mail delivered into the maildir while IMAP is down (as the local delivery agent does).
    new_dir = dovecot.mail_root / SHARED / "new"
    for n, raw in enumerate(_mails(4, "meanwhile")):
        path = new_dir / f"{time.time():.0f}.M{n}P{os.getpid()}.test"
        path.write_bytes(raw)
        os.chown(path, dovecot.mail_uid, dovecot.mail_gid)
    time.sleep(1.5)  # a few reconnect attempts fail meanwhile
    dovecot.start()
    wait_all_processed(gateway, 7, timeout=30)
    recorded = _ticket_messages(gateway)
    assert {f"meanwhile-{n}@client.example" for n in range(4)} <= set(recorded)
    wait_for(lambda: (s := folder_state(gateway, "shared", "INBOX")) is not None
             and s.last_error == "", 20, message="the error cleared after reconnecting")


def test_uidvalidity_change_rescans_without_duplicates(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    _create(dovecot, "Support")
    server = imap_gateways.start([mailbox(dovecot, inbox="Support", after=f"flag:{KEYWORD}")])
    gateway = server.gateway
    wait_polled(gateway, "shared", "Support")
    originals = _mails(5, "recreated")
    _append(dovecot, "Support", originals)
    wait_all_processed(gateway, 5)
    before = wait_taken(gateway, "shared", "Support", 5)
    assert before is not None and before.taken == 5
    # The provider recreates the folder with the same messages (new UIDVALIDITY), plus one.
    client = dovecot.client(SHARED)
    try:
        client.delete_folder("Support")
        client.create_folder("Support")
        client.multiappend("Support", [*originals, *_mails(1, "fresh")])
        client.select_folder("Support", readonly=True)
        assert client.folder_status("Support", ["UIDVALIDITY"])[b"UIDVALIDITY"] != \
            before.uidvalidity
    finally:
        client.logout()
    wait_for(lambda: not _uids(dovecot, "Support", ["UNKEYWORD", KEYWORD]), 30,
             message="every message of the recreated folder flagged")
    wait_all_processed(gateway, 6)
    assert spool_count(gateway) == 6
    recorded = _ticket_messages(gateway)
    assert sum(recorded.values()) == 6 and max(recorded.values()) == 1
    after = wait_taken(gateway, "shared", "Support", 6)
    assert after is not None and after.uidvalidity != before.uidvalidity and after.taken == 6


def wait_taken(gateway: Gateway, mailbox_name: str, folder: str, count: int
               ) -> ImapFolderState | None:
    """The folder's checkpoint once it counts ``count`` messages taken: it advances just
    after the messages are flagged, so a test that saw the flags must wait for it."""
    wait_for(lambda: (s := folder_state(gateway, mailbox_name, folder)) is not None
             and s.taken >= count, 30, message=f"checkpoint of {mailbox_name}/{folder}")
    return folder_state(gateway, mailbox_name, folder)


def _create(dovecot: Dovecot, folder: str) -> None:
    client = dovecot.client(SHARED)
    try:
        client.create_folder(folder)
    finally:
        client.logout()


def test_agent_reply_in_sent_is_recorded_as_agent_and_not_sent(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    _create(dovecot, "Sent")
    server = imap_gateways.start([mailbox(dovecot, sent="Sent")])
    gateway = server.gateway
    wait_polled(gateway, "shared", "Sent")
    wait_polled(gateway, "shared", "INBOX")
    _append(dovecot, "INBOX", [make_mail(sender="anna@acme.example", subject="Sync fails",
                                         message_id="<question@acme.example>")])
    wait_all_processed(gateway, 1)
    with gateway.db.reading() as session:
        opened = session.scalars(select(Ticket)).one()
        number = opened.number
        assert opened.first_response_at is None
        outbox_before = session.scalar(select(func.count()).select_from(OutboxItem))
    assert outbox_before == 1  # the acknowledgement
    replies = [
        make_mail(sender=SHARED, to="anna@acme.example", subject="Re: Sync fails",
                  body="Please update to 4.2.", message_id="<answer1@support.example>",
                  in_reply_to="<question@acme.example>",
                  references="<question@acme.example>", sender_name="Example Support"),
        make_mail(sender=SHARED, to="anna@acme.example", subject=f"Re: [#{number}] Sync fails",
                  body="Did it help?", message_id="<answer2@support.example>"),
        make_mail(sender=SHARED, to="bob@elsewhere.example", subject="Lunch on Friday?",
                  body="Unrelated.", message_id="<lunch@support.example>"),
    ]
    _append(dovecot, "Sent", replies)
    wait_all_processed(gateway, 4)
    with gateway.db.reading() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None and ticket.first_response_at is not None
        messages = list(session.scalars(select(MessageRecord).where(
            MessageRecord.ticket_number == number).order_by(MessageRecord.id)))
        lunch = session.scalars(select(SpoolEntry).where(
            SpoolEntry.message_id == "lunch@support.example")).one()
        outbox_after = session.scalar(select(func.count()).select_from(OutboxItem))
        tickets = session.scalar(select(func.count()).select_from(Ticket))
    assert {(m.message_id, m.role, m.threaded_by, m.from_address) for m in messages} == {
        ("question@acme.example", "requester", "new_ticket", "anna@acme.example"),
        ("answer1@support.example", "agent", "headers", SHARED),
        ("answer2@support.example", "agent", "subject_tag", SHARED),
    }
    assert ticket.first_response_at in {m.received_at for m in messages if m.role == "agent"}
    assert lunch.state == SpoolState.IGNORED and lunch.reason == "sent message matches no ticket"
    assert outbox_after == outbox_before and tickets == 1  # nothing sent, nothing opened
    shown = run_gateway(imap_gateways.settings([mailbox(dovecot, sent="Sent")]),
                        "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["messages"]
    roles = [m["role"] for m in history if m["role"] != "system"]
    assert sorted(roles) == ["agent", "agent", "requester"]
    # the gateway's own mail (the acknowledgement) is listed too, as role system
    assert [m["kind"] for m in history if m["role"] == "system"] == ["auto_reply"]


def test_new_message_taken_within_two_seconds_with_idle(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    server = imap_gateways.start([mailbox(dovecot, poll_interval=60.0)])
    gateway = server.gateway
    wait_polled(gateway, "shared")
    time.sleep(1.0)  # the poller is in IDLE now; without IDLE it would wait 60 s
    _append(dovecot, "INBOX", _mails(1, "idle"))
    started = time.monotonic()  # the APPEND is complete: the message is in the mailbox
    wait_for(lambda: spool_count(gateway) == 1, 10, interval=0.02, message="the new message")
    assert time.monotonic() - started < 2.0


def test_polling_without_idle_takes_new_mail(dovecot: Dovecot,
                                             imap_gateways: ImapGateways) -> None:
    server = imap_gateways.start([mailbox(dovecot, idle=False, poll_interval=0.5)])
    gateway = server.gateway
    wait_polled(gateway, "shared")
    _append(dovecot, "INBOX", _mails(2, "polled"))
    wait_all_processed(gateway, 2, timeout=20)


def test_backlog_import_since_a_date_creates_tickets_and_sends_nothing(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    backlog = int(os.environ.get("GATEWAY_TEST_BACKLOG", "1000"))
    _append(dovecot, "INBOX", _mails(20, "ancient"), when=datetime(2024, 6, 1, tzinfo=UTC))
    _append(dovecot, "INBOX", _mails(backlog, "backlog"), when=datetime(2026, 3, 1, tzinfo=UTC),
            batch=250)
    server = imap_gateways.start([mailbox(dovecot, start="since:2026-01-01", batch_size=100)])
    gateway = server.gateway
    wait_all_processed(gateway, backlog, timeout=240)
    _append(dovecot, "INBOX", [make_mail(sender="anna@acme.example", subject="New today",
                                         message_id="<today@acme.example>")])
    wait_all_processed(gateway, backlog + 1, timeout=30)
    now = datetime.now(UTC)
    with gateway.db.reading() as session:
        spooled = Counter(session.scalars(select(SpoolEntry.message_id)))
        history = Counter(bool(o.get("history")) for o in
                          session.scalars(select(SpoolEntry.options)))
        tickets = list(session.scalars(select(Ticket)))
        outbox = list(session.scalars(select(OutboxItem)))
    assert not any(m.startswith("ancient-") for m in spooled if m)
    assert sum(1 for m in spooled if m and m.startswith("backlog-")) == backlog
    assert history == {True: backlog, False: 1}
    assert len(tickets) == backlog + 1
    overdue = [t.number for t in tickets if t.first_response_due and t.first_response_due < now]
    assert overdue == []
    # Only today's new mail is acknowledged; the imported history sends nothing.
    assert [o.rcpt_to for o in outbox] == ["anna@acme.example"]


def test_wrong_password_on_one_mailbox_the_other_keeps_working(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    boxes = [mailbox(dovecot, "sales", OTHER), mailbox(dovecot, "broken", SHARED)]
    boxes[1]["url"] = dovecot.url(SHARED, password="wrong-password")
    server = imap_gateways.start(boxes)
    gateway = server.gateway
    wait_polled(gateway, "sales")
    _append(dovecot, "INBOX", _mails(3, "sales"), user=OTHER)
    wait_all_processed(gateway, 3)
    wait_for(lambda: (s := folder_state(gateway, "broken", "INBOX")) is not None
             and s.last_error, 20, message="the login failure recorded")
    status = run_gateway(imap_gateways.settings(boxes), "mailboxes", "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["mailbox"]: row for row in json.loads(status.stdout)}
    assert rows["sales"]["state"] == "ok" and rows["sales"]["taken"] == 3
    assert rows["sales"]["last_uid"] == 3 and rows["sales"]["last_error"] is None
    broken = rows["broken"]
    assert broken["state"] == "error" and broken["taken"] == 0
    assert f"login as {SHARED} refused" in broken["last_error"]
    assert "Authentication failed" in broken["last_error"]  # Dovecot's own answer
    text = run_gateway(imap_gateways.settings(boxes), "mailboxes", "status")
    assert b"broken" in text.stdout and b"Authentication failed" in text.stdout


def test_implicit_tls_and_starttls(tmp_path: Path, imap_gateways: ImapGateways) -> None:
    root = tmp_path / "tls"
    root.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    server = Dovecot(root / "dovecot", cert=root / "server.pem", key=root / "server.key")
    try:
        server.add_user(SHARED, "a-secret")
        server.add_user(OTHER, "b-secret")
        server.start()
        wait_for_port(server.host, server.tls_port)
        boxes = [mailbox(server, "implicit", SHARED, ca_file=str(root / "ca.pem")),
                 mailbox(server, "starttls", OTHER, ca_file=str(root / "ca.pem")),
                 mailbox(server, "untrusted", SHARED)]
        boxes[0]["url"] = server.url(SHARED, scheme="imaps")
        boxes[1]["url"] = server.url(OTHER, query="starttls=true")
        boxes[2]["url"] = server.url(SHARED, scheme="imaps")  # system CAs: must refuse
        gateway = imap_gateways.start(boxes).gateway
        wait_polled(gateway, "implicit")
        wait_polled(gateway, "starttls")
        _append(server, "INBOX", _mails(1, "tls-a"), user=SHARED)
        _append(server, "INBOX", _mails(1, "tls-b"), user=OTHER)
        wait_all_processed(gateway, 2)
        with gateway.db.reading() as session:
            sources = set(session.scalars(select(SpoolEntry.source)))
        assert sources == {"imap:implicit/INBOX", "imap:starttls/INBOX"}
        untrusted = wait_for(lambda: (s := folder_state(gateway, "untrusted", "INBOX"))
                             and s.last_error and s, 20, message="the refused certificate")
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
        assert spool_count(gateway) == 2
    finally:
        server.remove()


def test_server_without_move_and_idle_copy_expunge_and_polling(
        tmp_path: Path, imap_gateways: ImapGateways,
        caplog: pytest.LogCaptureFixture) -> None:
    server = Dovecot(tmp_path / "plain-dovecot",
                     capabilities="IMAP4rev1 LITERAL+ SASL-IR UIDPLUS MULTIAPPEND")
    try:
        server.add_user(SHARED, "a-secret")
        server.start()
        client = server.client(SHARED)
        assert not client.has_capability("MOVE") and not client.has_capability("IDLE")
        client.logout()
        gateway = imap_gateways.start([mailbox(server, after="move:Done",
                                               poll_interval=0.5)]).gateway
        wait_polled(gateway, "shared")
        _append(server, "INBOX", _mails(5, "plain"))
        wait_all_processed(gateway, 5)
        wait_for(lambda: not _uids(server, "INBOX", ["ALL"]), 20, message="inbox emptied")
        assert len(_uids(server, "Done", ["ALL"])) == 5
        assert _uids(server, "Done", ["DELETED"]) == []
        errors = [r.getMessage() for r in caplog.records
                  if r.name == "inbound.imap_poller" and r.levelno >= logging.ERROR]
        assert errors == []  # no IDLE attempted, no failed MOVE: plain polling, COPY+EXPUNGE
    finally:
        server.remove()


def test_message_over_max_message_size_is_quarantined_with_only_its_headers(
        dovecot: Dovecot, imap_gateways: ImapGateways) -> None:
    boxes = [mailbox(dovecot, after=f"flag:{KEYWORD}")]
    server = imap_gateways.start(boxes, max_message_size=50_000)
    gateway = server.gateway
    wait_polled(gateway, "shared")
    small = make_mail(sender="anna@acme.example", subject="Small question",
                      message_id="<small@acme.example>")
    big = make_mail(sender="bob@acme.example", subject="Huge log attached",
                    body="".join(f"log line {n:06d} {'x' * 60}\n" for n in range(3000)),
                    message_id="<huge@acme.example>")
    assert len(big) > 200_000
    _append(dovecot, "INBOX", [small, big])
    wait_all_processed(gateway, 2)
    with gateway.db.reading() as session:
        rows = {e.message_id: e for e in session.scalars(select(SpoolEntry))}
        tickets = list(session.scalars(select(Ticket)))
    assert set(rows) == {"small@acme.example", "huge@acme.example"}
    assert rows["small@acme.example"].state == SpoolState.PROCESSED
    huge = rows["huge@acme.example"]
    assert huge.state == SpoolState.QUARANTINED
    size = len(_server_bytes(dovecot, "Huge log attached"))
    assert huge.reason == (f"message of {size:,} bytes is over max_message_size (50,000); left "
                           "on the server (found in mailbox shared folder INBOX uid 2); only "
                           "its header block was kept")
    # Stored: the header block only, not the 200 KB body.
    assert huge.raw.endswith(b"\r\n\r\n") and b"Subject: Huge log attached" in huge.raw
    assert b"log line" not in huge.raw and len(huge.raw) < 1000
    assert huge.options["too_large"] == {"size": size, "limit": 50_000}
    assert [t.subject for t in tickets] == ["Small question"]
    assert set(_ticket_messages(gateway)) == {"small@acme.example"}
    # Marked on the server like the small one, so that no poll takes it again.
    assert sorted(_uids(dovecot, "INBOX", ["KEYWORD", KEYWORD])) == [1, 2]
    _assert_a_later_poll_takes_nothing_more(gateway, 2)
    shown = run_gateway(imap_gateways.settings(boxes, max_message_size=50_000),
                        "inbox", "show", str(huge.id))
    assert shown.returncode == 0, shown.stderr
    assert b"is over max_message_size (50,000)" in shown.stdout


def _server_bytes(dovecot: Dovecot, subject: str) -> bytes:
    """The message as the server holds it (its RFC822.SIZE is the length of these bytes)."""
    client = dovecot.client(SHARED)
    try:
        client.select_folder("INBOX", readonly=True)
        [uid] = client.search(["SUBJECT", subject])
        return bytes(client.fetch([uid], [b"BODY.PEEK[]"])[uid][b"BODY[]"])
    finally:
        client.logout()
