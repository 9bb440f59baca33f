"""`gateway ingest`: the pipe entry stores through the same durable path, with sysexits codes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import smtplib
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import OutboxItem
from gateway.runtime.app import Gateway
from gateway.runtime.handoff import HANDOFF_FIFO, HandoffListener, hand_to_serve
from tests.conftest import (
    DIRECTORY,
    REPO,
    Processes,
    run_gateway,
    serve_in_process,
    settled,
    wait_for,
)
from tests.mail import maildir_messages, make_mail, send


def test_ingest_stores_processes_and_deduplicates(settings: Settings,
                                                  worker_process: None) -> None:
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    raw = make_mail(subject="Via pipe", body="Sent through the MTA pipe.")
    first = run_gateway(settings, "ingest", "-", input=raw)
    assert first.returncode == 0, first.stderr.decode()
    again = run_gateway(settings, "ingest", "-", input=raw)
    assert again.returncode == 0 and b"duplicate" in again.stdout
    def processed() -> list[dict[str, object]]:
        rows = json.loads(run_gateway(settings, "inbox", "list", "--json").stdout)
        return rows if rows and rows[0]["state"] == "processed" else []
    # Embedded mode processes right away in the ingest process; scale-out via the worker.
    [row] = wait_for(processed, message="the piped message processed")
    [ticket] = json.loads(run_gateway(settings, "tickets", "list", "--json").stdout)
    assert row["source"] == "pipe" and row["ticket"] == ticket["number"]
    assert ticket["subject"] == "Via pipe"


def test_ingest_refuses_unusable_input_with_65(settings: Settings) -> None:
    for junk in (b"", b"\n\n", b"just some words, no header\n"):
        result = run_gateway(settings, "ingest", "-", input=junk)
        assert result.returncode == 65, (junk, result.stderr)
        assert result.stderr.startswith(b"5.6.0 "), result.stderr  # the enhanced code first


def test_ingest_answers_75_when_the_database_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={
            "database_url": "postgresql://nobody@127.0.0.1:1/none"
            if settings.broker_url
            else "sqlite:////proc/no-such-dir/gateway.db"
        }
    )
    result = run_gateway(broken, "ingest", "-", input=make_mail())
    assert result.returncode == 75, result.stderr
    assert b"try again later" in result.stderr


# -- the envelope (DESIGN 10): -f SENDER, -r RECIPIENT… --------------------------------
def _outbound(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def _rows(settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(run_gateway(settings, "inbox", "list", "--json").stdout)
    return rows


def _done(settings: Settings, message_id: str) -> dict[str, Any]:
    """The spool row of ``message_id`` once processing has decided about it."""
    def row() -> dict[str, Any] | None:
        found = [r for r in _rows(settings) if r["message_id"] == message_id.strip("<>")]
        return found[0] if found and found[0]["state"] != "received" else None
    return wait_for(row, message=f"processing of {message_id}")


def _pipe(settings: Settings, raw: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_gateway(settings, "ingest", *args, "-", input=raw)


def test_a_reply_token_only_in_the_envelope_recipient_threads(settings: Settings,
                                                              worker_process: None) -> None:
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    first = make_mail(subject="Sync fails on the laptop", message_id="<first@acme.example>")
    stored = _pipe(settings, first, "-f", "anna@acme.example", "-r", "support@support.example")
    assert stored.returncode == 0, stored.stderr.decode()
    assert _done(settings, "first@acme.example")["ticket"] == 1
    [ack] = wait_for(lambda: maildir_messages(_outbound(settings)), message="acknowledgement")
    reply_to = str(ack["Reply-To"])
    assert reply_to.startswith("support+") and reply_to.endswith("@support.example")

    # A reply whose headers name only the plain support address (Bcc, an alias), no
    # In-Reply-To, a new subject: only the MTA's envelope recipient carries the token.
    reply = make_mail(subject="More details", body="It also fails on the desktop.",
                      message_id="<second@acme.example>")
    assert reply_to.encode() not in reply
    stored = _pipe(settings, reply, "-f", "anna@acme.example", "-r", f"<{reply_to}>")
    assert stored.returncode == 0, stored.stderr.decode()
    row = _done(settings, "second@acme.example")
    assert row["ticket"] == 1, row
    assert row["mail_from"] == "anna@acme.example" and row["rcpt_tos"] == [reply_to]
    [ticket] = json.loads(run_gateway(settings, "tickets", "list", "--json").stdout)
    shown = json.loads(run_gateway(settings, "tickets", "show", "1", "--json").stdout)
    written = [m for m in shown["messages"] if m["role"] != "system"]  # not our own mail
    assert ticket["number"] == 1 and len(written) == 2
    assert "token" in written[1]["threaded_by"], written[1]


def test_recipients_are_refused_as_smtp_refuses_them(settings_factory: Callable[..., Settings],
                                                     processes: Processes) -> None:
    settings = settings_factory(emergency_address="emergency@support.example")
    gateway = Gateway(settings)
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        with serve_in_process(gateway, settings, processes):
            host, port = settings.smtp_listen.rsplit(":", 1)
            for address, status in (("nobody@support.example", "5.1.1"),
                                    ("anna@other.example", "5.7.1"),
                                    ("not-an-address", "5.1.3")):
                with smtplib.SMTP(host, int(port), timeout=30) as client:
                    client.ehlo()
                    client.mail("anna@acme.example")
                    code, text = client.rcpt(address)
                refused = _pipe(settings, make_mail(), "-f", "anna@acme.example",
                                "-r", "support@support.example", "-r", address)
                assert refused.returncode == 67, (address, refused.stderr)
                first_line = refused.stderr.decode().splitlines()[0]
                # The enhanced code first (Postfix puts it in the DSN), then SMTP's words.
                assert code >= 500 and text.decode().startswith(status), (address, code, text)
                assert first_line == f"{text.decode()[:5]} <{address}>: {text.decode()[6:]}"
            # Nothing of the refused deliveries was stored.
            assert _rows(settings) == []
            # An address SMTP takes (here the policy's emergency alias) the pipe takes too.
            taken = _pipe(settings, make_mail(to="emergency@support.example"),
                          "-r", "EMERGENCY@Support.Example")
            assert taken.returncode == 0, taken.stderr.decode()
            assert [r["rcpt_tos"] for r in _rows(settings)] == [["EMERGENCY@Support.Example"]]
    finally:
        gateway.close()


def test_the_null_sender_is_never_answered(settings: Settings, processes: Processes,
                                           gateway: Gateway) -> None:
    variants: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
        ("pipe -f ''", ("-f", ""), {}),
        ("pipe -f '<>'", ("-f", "<>"), {}),
        ("pipe -f MAILER-DAEMON (pipe(8)'s default)", ("-f", "MAILER-DAEMON"), {}),
        ("pipe, Return-Path: <MAILER-DAEMON>", (), {"Return-Path": "<MAILER-DAEMON>"}),
        ("pipe, Return-Path: <>", (), {"Return-Path": "<>"}),
    ]
    with serve_in_process(gateway, settings, processes):
        twin = make_mail(subject="Printer queue is stuck", message_id="<twin@acme.example>",
                         body="The printer queue has been stuck since this morning.")
        send(settings.smtp_listen, twin, mail_from="", rcpt_to="support@support.example")
        smtp_row = _done(settings, "twin@acme.example")
        assert smtp_row["mail_from"] == "<>"
        for number, (label, args, headers) in enumerate(variants):
            raw = make_mail(subject=f"Invoice {number} has a wrong VAT number",
                            body=f"Invoice {number}: the VAT number printed is not ours.",
                            message_id=f"<null{number}@acme.example>", headers=headers)
            result = _pipe(settings, raw, *args, "-r", "support@support.example")
            assert result.returncode == 0, (label, result.stderr)
            row = _done(settings, f"null{number}@acme.example")
            # Stored with SMTP's envelope, and the pipeline decides as it did for SMTP.
            assert row["mail_from"] == "<>", (label, row)
            assert row["state"] == smtp_row["state"], (label, row, smtp_row)
            assert (row["ticket"] is None) == (smtp_row["ticket"] is None), (label, row)
        wait_for(lambda: settled(gateway), message="outbox settled")
    # Nothing was sent in answer to any of them, nor to the SMTP twin.
    with gateway.db.reading() as session:
        assert list(session.scalars(select(OutboxItem.kind))) == []
    assert maildir_messages(_outbound(settings)) == []


def test_a_message_over_the_size_limit_is_refused_with_its_true_size(
        settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(max_message_size=10_000)
    raw = make_mail(body="x" * 70 + "\n" * 1 + ("y" * 76 + "\n") * 4000)
    result = _pipe(settings, raw)
    assert result.returncode == 65, result.stderr
    assert result.stderr.decode().splitlines() == [
        f"5.3.4 message too big ({len(raw)} bytes > 10000 bytes allowed)"]
    assert _rows(settings) == []


def test_an_envelope_address_that_is_not_utf8_is_refused_not_retried(settings: Settings) -> None:
    """A Latin-1 ``-f``/``-r`` (argv bytes an MTA passes on as it got them) answered 75 at
    every retry for days, as it could not be stored; SMTP refuses it at MAIL/RCPT.  A
    control character is refused too, and shown escaped: the DSN text stays one line."""
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    latin = os.fsdecode(b"j\xe9r\xf4me@acme.example")
    sender = _pipe(settings, make_mail(), "-f", latin, "-r", "support@support.example")
    assert sender.returncode == 65, sender.stderr
    assert sender.stderr.decode().splitlines() == [
        "5.1.7 <j\\xe9r\\xf4me@acme.example>: Sender address syntax is not valid"]
    recipient = _pipe(settings, make_mail(), "-f", "anna@acme.example",
                      "-r", os.fsdecode(b"support+\xe9@support.example"))
    assert recipient.returncode == 67, recipient.stderr
    assert recipient.stderr.decode().splitlines() == [
        "5.1.3 <support+\\xe9@support.example>: Recipient address syntax is not valid"]
    control = _pipe(settings, make_mail(), "-f", "anna@acme.example\nX-Evil: 1",
                    "-r", "support@support.example")
    assert control.returncode == 65, control.stderr
    assert control.stderr.decode().splitlines() == [
        "5.1.7 <anna@acme.example\\x0aX-Evil: 1>: Sender address syntax is not valid"]
    assert _rows(settings) == []


def test_copies_piped_one_recipient_at_a_time_are_one_message_without_message_id(
        settings: Settings, worker_process: None) -> None:
    """With one recipient per delivery (README) the MTA pipes a copy per recipient, each
    with its own ``Delivered-To`` (flags ``DRO``): a message without Message-ID to two of
    our addresses became two tickets and two acknowledgements; SMTP stores it once."""
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    body = (b"From: anna@acme.example\nTo: support@support.example\n"
            b"Cc: postmaster@support.example\nSubject: Export stops at 80 percent\n"
            b"Date: Sun, 06 Dec 2026 21:00:00 +0000\n\nThe export stops at 80 percent.\n")
    answers = []
    for recipient in ("support@support.example", "postmaster@support.example"):
        copy = (f"Delivered-To: {recipient}\nX-Original-To: {recipient}\n"
                f"Return-Path: <anna@acme.example>\n").encode() + body
        result = _pipe(settings, copy, "-f", "anna@acme.example", "-r", recipient)
        assert result.returncode == 0, result.stderr
        answers.append(result.stdout)
    assert b"(duplicate)" not in answers[0] and b"(duplicate)" in answers[1]
    [row] = _rows(settings)
    assert row["rcpt_tos"] == ["support@support.example"]
    wait_for(lambda: _rows(settings)[0]["state"] == "processed", message="processing")
    tickets = json.loads(run_gateway(settings, "tickets", "list", "--json").stdout)
    assert [t["subject"] for t in tickets] == ["Export stops at 80 percent"]


def test_ingest_processes_in_at_most_the_pools_number_of_slots_and_leaves_the_rest_to_serve(
        settings_factory: Callable[..., Settings], processes: Processes) -> None:
    """The MTA runs up to 20 ``ingest`` processes at once; each processed its message right
    there (a 23 MB one peaks at ~350 MB and a core at normal priority), so a burst of large
    mail wanted 7 GB and every core.  Now as many process as ``serve``'s pool would; the
    others store, answer 0 at once, and ``serve``'s sweep processes their messages."""
    settings = settings_factory(processing_processes=1)
    gateway = Gateway(settings)
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        if not settings.embedded:  # scale-out: no ingest processes at all, the workers do
            for number in (1, 2):
                piped = _pipe(settings, make_mail(subject=f"Burst {number}",
                                                  message_id=f"<b{number}@acme.example>"),
                              "-f", "anna@acme.example", "-r", "support@support.example")
                assert piped.returncode == 0, piped.stderr
            assert [row["state"] for row in _rows(settings)] == ["received", "received"]
            with serve_in_process(gateway, settings, processes):
                for number in (1, 2):
                    assert _done(settings, f"<b{number}@acme.example>")["state"] == "processed"
            return
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        with open(settings.var_dir / "ingest-slot-0.lock", "a+b") as busy:
            fcntl.flock(busy, fcntl.LOCK_EX)  # another ingest is processing
            waiting = _pipe(settings, make_mail(subject="Burst 1", message_id="<b1@acme.example>"),
                            "-f", "anna@acme.example", "-r", "support@support.example")
            assert waiting.returncode == 0, waiting.stderr
            assert [row["state"] for row in _rows(settings)] == ["received"]
        # the slot is free again: the next one is processed before ingest answers
        free = _pipe(settings, make_mail(subject="Burst 2", message_id="<b2@acme.example>"),
                     "-f", "anna@acme.example", "-r", "support@support.example")
        assert free.returncode == 0, free.stderr
        assert {row["message_id"]: row["state"] for row in _rows(settings)} == {
            "b1@acme.example": "received", "b2@acme.example": "processed"}
        with serve_in_process(gateway, settings, processes):
            assert _done(settings, "<b1@acme.example>")["state"] == "processed"
    finally:
        gateway.close()


def test_a_delivery_cut_short_is_retried_not_stored_in_place_of_the_whole(
        settings: Settings) -> None:
    """A delivery agent stopped while writing (``postfix stop``) gives the pipe an early
    end, as SMTP's missing ``.`` never could: the cut copy was stored (0), and the MTA's
    retry of the whole message was taken for its duplicate, so the rest was lost."""
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    whole = make_mail(subject="Cut short", message_id="<cut@acme.example>",
                      body="Line one.\nLine two with the details that matter.\n")
    assert whole.endswith(b"\n")
    envelope = ("-f", "anna@acme.example", "-r", "support@support.example")
    cut = _pipe(settings, whole[:len(whole) - 20], *envelope)
    assert cut.returncode == 75, cut.stderr
    assert cut.stderr.decode().startswith("4.3.0 the input ends in the middle of a line")
    assert _rows(settings) == []
    retried = _pipe(settings, whole, *envelope)
    assert retried.returncode == 0 and b"duplicate" not in retried.stdout, retried.stderr
    [row] = _rows(settings)
    assert row["size"] == len(whole)


# -- who processes what ingest stored -------------------------------------------------
def test_a_running_serve_processes_what_ingest_stored(settings: Settings,
                                                      processes: Processes) -> None:
    """An MTA pipe starts one ``ingest`` per message: processing there meant importing and
    warming the whole pipeline first (~2 s of CPU a message). With ``serve`` running,
    ``ingest`` stores and hands the row over (embedded) or queues it (scale-out), and
    ``serve``'s warm processing does the rest."""
    gateway = Gateway(settings)
    try:
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY)
        with serve_in_process(gateway, settings, processes):
            raw = make_mail(subject="Handed over", message_id="<handed@acme.example>")
            piped = run_gateway(settings, "--log-level", "INFO", "ingest", "-f",
                                "anna@acme.example", "-r", "support@support.example", "-",
                                input=raw)
            assert piped.returncode == 0, piped.stderr
            if settings.embedded:
                assert b"handed to serve for processing" in piped.stderr, piped.stderr
            row = _done(settings, "<handed@acme.example>")
            assert row["state"] == "processed"
            [ack] = wait_for(lambda: maildir_messages(_outbound(settings)),
                             message="the acknowledgement")
            assert ack["To"] == "anna@acme.example"
    finally:
        gateway.close()


def test_without_serve_reading_ingest_processes_the_message_itself(
        settings_factory: Callable[..., Settings]) -> None:
    """Embedded mode with no ``serve`` (or one that stopped): the hand-off FIFO has no
    reader, or is not a FIFO at all, so ``ingest`` processes before it answers, as it
    always did. (Embedded by setting: the hand-off is embedded mode's.)"""
    settings = settings_factory(broker_url="")
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    fifo = settings.var_dir / HANDOFF_FIFO
    os.mkfifo(fifo, 0o600)  # a serve made it, and has stopped
    first = _pipe(settings, make_mail(subject="Nobody reads", message_id="<n1@acme.example>"),
                  "-f", "anna@acme.example", "-r", "support@support.example")
    assert first.returncode == 0, first.stderr
    fifo.unlink()
    fifo.write_bytes(b"")  # something else in its place
    second = _pipe(settings, make_mail(subject="Not a FIFO", message_id="<n2@acme.example>"),
                   "-f", "anna@acme.example", "-r", "support@support.example")
    assert second.returncode == 0, second.stderr
    assert {row["message_id"]: row["state"] for row in _rows(settings)} == {
        "n1@acme.example": "processed", "n2@acme.example": "processed"}
    assert fifo.read_bytes() == b""


def test_the_handoff_listener_passes_on_spool_ids_and_nothing_else(tmp_path: Path) -> None:
    received: list[int] = []
    listener = HandoffListener(tmp_path, received.append)
    assert not hand_to_serve(tmp_path, 1)  # nobody listens yet
    assert listener.start()
    try:
        assert stat.S_IMODE((tmp_path / HANDOFF_FIFO).stat().st_mode) == 0o600
        assert hand_to_serve(tmp_path, 12)
        with open(tmp_path / HANDOFF_FIFO, "wb", buffering=0) as writer:
            writer.write(b"not an id\n" + b"9" * 40 + b"\n1")  # junk, an overlong line, half
            writer.write(b"3\n" + str(2**63).encode() + b"\n")  # beyond any row's id
        assert hand_to_serve(tmp_path, 14)
        wait_for(lambda: len(received) >= 3, message="three ids passed on")
        assert received == [12, 13, 14]
    finally:
        listener.stop()
    assert not hand_to_serve(tmp_path, 15)  # stopped: the next ingest processes by itself


def _reader(path: Path) -> int:
    """A reader on the FIFO at ``path`` (as a running serve holds one)."""
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


def test_a_symlink_in_place_of_the_fifo_is_used_by_neither_end(tmp_path: Path) -> None:
    """var/processing.fifo replaced by a symlink, even to a FIFO someone reads (another
    instance's): ingest processes by itself and serve does not read through it."""
    var, elsewhere = tmp_path / "var", tmp_path / "elsewhere"
    var.mkdir()
    elsewhere.mkdir()
    os.mkfifo(elsewhere / HANDOFF_FIFO, 0o600)
    descriptor = _reader(elsewhere / HANDOFF_FIFO)
    try:
        (var / HANDOFF_FIFO).symlink_to(elsewhere / HANDOFF_FIFO)
        assert not hand_to_serve(var, 5)
        listener = HandoffListener(var, lambda _id: None)
        assert not listener.start()
        with pytest.raises(BlockingIOError):  # nothing was written through it
            os.read(descriptor, 100)
    finally:
        os.close(descriptor)


def test_a_fifo_other_users_may_open_is_not_handed_ids(tmp_path: Path) -> None:
    """A FIFO of this user that others may write and read (left from before, or made so):
    ingest writes no id into it; serve's start narrows it to 0600, then the hand-off works."""
    fifo = tmp_path / HANDOFF_FIFO
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    descriptor = _reader(fifo)
    try:
        assert not hand_to_serve(tmp_path, 5)
    finally:
        os.close(descriptor)
    received: list[int] = []
    listener = HandoffListener(tmp_path, received.append)
    assert listener.start()
    try:
        assert stat.S_IMODE(fifo.stat().st_mode) == 0o600
        assert hand_to_serve(tmp_path, 6)
        wait_for(lambda: received == [6], message="the id passed on")
    finally:
        listener.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's FIFO takes root")
def test_another_users_fifo_is_used_by_neither_end(tmp_path: Path) -> None:
    """A FIFO owned by another user in var/ (that user reading it would take the ids and
    leave the mail to the sweep; serve's fchmod of it failed and stopped serve's start):
    ingest processes by itself, serve starts without the hand-off."""
    fifo = tmp_path / HANDOFF_FIFO
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, 65534, 65534)
    descriptor = _reader(fifo)
    try:
        assert not hand_to_serve(tmp_path, 5)
        assert not HandoffListener(tmp_path, lambda _id: None).start()
    finally:
        os.close(descriptor)
    # Another user cannot change root's FIFO's mode: serve run by that user used to raise.
    shared = Path(tempfile.mkdtemp(prefix="handoff-"))  # a var/ that user may enter
    try:
        shared.chmod(0o777)
        os.mkfifo(shared / HANDOFF_FIFO)
        os.chmod(shared / HANDOFF_FIFO, 0o666)
        probe = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
             "-c", "from pathlib import Path; "
             "from gateway.runtime.handoff import HandoffListener; "
             f"print(HandoffListener(Path({str(shared)!r}), print).start())"],
            capture_output=True, cwd=REPO, check=False, timeout=60)
        assert (probe.returncode, probe.stdout.strip()) == (0, b"False"), probe.stderr
    finally:
        shutil.rmtree(shared)
