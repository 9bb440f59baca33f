"""The pipe's envelope and size rules, one function at a time (the CLI tests cover the process)."""

from __future__ import annotations

import io

import pytest

from gateway.directory import DEFAULT_SUPPORT
from inbound.ingest import (
    EX_DATAERR,
    EX_NOUSER,
    EX_TEMPFAIL,
    Refused,
    check_recipients,
    envelope_of,
    read_limited,
)
from tests.mail import make_mail


@pytest.mark.parametrize("sender", ["", "<>", " <> ", "MAILER-DAEMON", "<mailer-daemon>"])
def test_every_spelling_of_the_null_sender_is_stored_as_smtp_stores_it(sender: str) -> None:
    assert envelope_of(make_mail(), sender, ()).mail_from == "<>"


def test_a_sender_and_recipients_lose_their_brackets_as_in_smtp() -> None:
    envelope = envelope_of(make_mail(), "<anna@acme.example>",
                           ["<support+abc@support.example>", "support@support.example"])
    assert envelope.mail_from == "anna@acme.example"
    assert envelope.rcpt_tos == ("support+abc@support.example", "support@support.example")


def test_without_f_only_the_mta_return_path_can_name_the_null_sender() -> None:
    daemon = b"Return-Path: <MAILER-DAEMON>\n" + make_mail()
    assert envelope_of(daemon, None, ()).mail_from == "<>"
    person = b"Return-Path: <anna@acme.example>\n" + make_mail()
    assert envelope_of(person, None, ()).mail_from == ""  # unknown: the headers decide
    # Only the first Return-Path is the delivering MTA's; one further down was the sender's.
    forged = (b"Return-Path: <anna@acme.example>\n"
              + make_mail(headers={"Return-Path": "<MAILER-DAEMON>"}))
    assert envelope_of(forged, None, ()).mail_from == ""
    # A Return-Path in the body is no header.
    body = make_mail(body="Return-Path: <MAILER-DAEMON>\n")
    assert envelope_of(body, None, ()).mail_from == ""


def test_an_over_size_input_is_refused_with_its_whole_size_and_read_to_the_end() -> None:
    stream = io.BytesIO(b"x" * 300_001)
    with pytest.raises(Refused) as refused:
        read_limited(stream, 1000)
    assert (refused.value.exit_code, refused.value.status) == (EX_DATAERR, "5.3.4")
    assert str(refused.value) == "5.3.4 message too big (300001 bytes > 1000 bytes allowed)"
    assert stream.read() == b""  # drained: the MTA never writes into a closed pipe
    assert read_limited(io.BytesIO(b"y" * 1000), 1000) == b"y" * 1000


@pytest.mark.parametrize(("address", "status", "exit_code"), [
    ("nobody@support.example", "5.1.1", EX_NOUSER),
    ("support@elsewhere.example", "5.7.1", EX_NOUSER),
    ("no address", "5.1.3", EX_NOUSER),
])
def test_a_refused_recipient_says_smtps_enhanced_code_first(address: str, status: str,
                                                           exit_code: int) -> None:
    with pytest.raises(Refused) as refused:
        check_recipients(["support@support.example", address], DEFAULT_SUPPORT, 100)
    assert refused.value.exit_code == exit_code
    assert str(refused.value).startswith(f"{status} <{address}>: ")


def test_recipients_smtp_takes_pass_and_too_many_is_temporary() -> None:
    check_recipients(["<Support@Support.Example>", "postmaster@support.example",
                      "support+anything@support.example"], DEFAULT_SUPPORT, 100)
    with pytest.raises(Refused) as refused:
        check_recipients(["support@support.example"] * 3, DEFAULT_SUPPORT, 2)
    assert (refused.value.status, refused.value.exit_code) == ("4.5.3", EX_TEMPFAIL)
