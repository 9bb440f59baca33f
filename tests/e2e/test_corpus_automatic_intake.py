"""Every bounce and automatic reply of the shared corpus opens no ticket and is never answered,
whether it arrives as mail systems send it (null envelope sender) or relayed by a forwarder
or a list with an ordinary envelope sender (then only its headers and content tell).

All of them go through the spool and the worker's processing function (fast, one process);
a sample with one message of every source, kind and client goes over real SMTP sockets.
The negative controls keep the index's verdict: a person's mail in the bounces folder
becomes a ticket when it arrives with an ordinary envelope.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import OutboxItem, SpoolEntry, SpoolState, Ticket
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.spool import dedupe_key, header_identity, store_message
from tests.conftest import wait_for
from tests.corpus import NOT_DELIVERY_REPORTS, corpus_bytes, corpus_entries
from tests.mail import send

FOLDERS = ("bounces", "autoreplies")
ENVELOPES = {"null-sender": "<>", "relayed": "relay@forwarder.example"}


def _automatic(folder: str, entry: dict[str, Any]) -> bool:
    """Machine-written mail by the index: must open no ticket and get no answer.

    The rows of ``NOT_DELIVERY_REPORTS`` (spam and a person forwarding a bounce that
    the upstream corpus filed among its bounces; reasons in ``tests/corpus.py``) are a
    person's mail when they arrive with a person's envelope.
    """
    if folder == "bounces" and entry["file"] in NOT_DELIVERY_REPORTS:
        return False
    return bool(entry.get("expected_is_automatic") or entry.get("expected_is_bounce")
                or entry.get("expected_kind") not in (None, "human"))


def _entries() -> list[tuple[str, dict[str, Any]]]:
    return [(folder, entry) for folder in FOLDERS for entry in corpus_entries(folder)
            if entry["format"] == "rfc822"]


def _smtp_safe(raw: bytes) -> bool:
    """SMTP carries lines of at most 998 octets (RFC 5321 4.5.3.1.6); the spool test has
    the few corpus files with longer ones."""
    return max((len(line) for line in raw.split(b"\n")), default=0) <= 998


def _sample() -> list[tuple[str, dict[str, Any]]]:
    """One message per folder, upstream source, kind and client: every format once."""
    seen: set[tuple[str, ...]] = set()
    chosen = []
    for folder, entry in _entries():
        if not _smtp_safe(corpus_bytes(folder, entry["file"])):
            continue
        key = (folder, entry["file"].split("/")[0], str(entry.get("expected_kind")),
               str(entry.get("client")))
        if key not in seen:
            seen.add(key)
            chosen.append((folder, entry))
    return chosen


def _tickets_and_outbox(gateway: Gateway) -> tuple[int, int]:
    with gateway.db.reading() as session:
        return (int(session.scalar(select(func.count()).select_from(Ticket)) or 0),
                int(session.scalar(select(func.count()).select_from(OutboxItem)) or 0))


@pytest.mark.parametrize("envelope", list(ENVELOPES), ids=list(ENVELOPES))
def test_no_bounce_or_auto_reply_of_the_corpus_opens_a_ticket(gateway: Gateway,
                                                               envelope: str) -> None:
    mail_from = ENVELOPES[envelope]
    ticketed: list[str] = []
    humans_ignored: list[str] = []
    automatic = 0
    for folder, entry in _entries():
        stored = store_message(gateway.db, corpus_bytes(folder, entry["file"]), source="smtp",
                               mail_from=mail_from, rcpt_tos=["support@support.example"],
                               peer="127.0.0.1")
        if not stored.duplicate:
            process_spool_entry(gateway.db, gateway.services, stored.spool_id)
        with gateway.db.reading() as session:
            row = session.get(SpoolEntry, stored.spool_id)
            assert row is not None
            state, ticket, reason = row.state, row.ticket_number, row.reason
        key = f"{folder}/{entry['file']}"
        assert state != SpoolState.QUARANTINED or not reason.startswith("step "), (key, reason)
        if _automatic(folder, entry):
            automatic += 1
            if ticket is not None or state == SpoolState.PROCESSED:
                ticketed.append(f"{key}: {state} {reason}")
            else:
                assert reason.strip(), f"{key} was ignored without a reason"
        elif mail_from != "<>" and state != SpoolState.PROCESSED:
            humans_ignored.append(f"{key}: {state} {reason}")
    assert automatic > 650
    # Then no bounce, delay notice, report or auto-reply became a ticket (no allowed misses)
    assert not ticketed, "\n".join(ticketed)
    # And the people's mail among them did, when it came with a person's envelope
    assert not humans_ignored, "\n".join(humans_ignored)
    # And nothing at all was sent in answer: the only tickets are the people's.
    with gateway.db.reading() as session:
        kinds = list(session.scalars(select(OutboxItem.kind).join(
            SpoolEntry, SpoolEntry.id == OutboxItem.spool_id).where(
            SpoolEntry.ticket_number.is_(None))))
    assert kinds == []
    tickets, _ = _tickets_and_outbox(gateway)
    people = sum(1 for f, e in _entries() if not _automatic(f, e))
    assert tickets == (0 if mail_from == "<>" else people)


@pytest.mark.parametrize("envelope", list(ENVELOPES), ids=list(ENVELOPES))
def test_a_sample_over_smtp_opens_no_ticket_and_sends_nothing(
        running: Any, gateway: Gateway, settings: Settings, envelope: str) -> None:
    sample = [(f, e) for f, e in _sample() if _automatic(f, e)]
    assert len(sample) > 40
    keys = set()  # the spool keeps one row per Message-ID and sender (its dedupe key)
    for folder, entry in sample:
        # On the wire every line ends in CRLF (smtplib sends bytes as they are).
        raw = re.sub(rb"\r?\n", b"\r\n", corpus_bytes(folder, entry["file"]))
        keys.add(dedupe_key(raw, *header_identity(raw), hashlib.sha256(raw).hexdigest()))
        send(settings.smtp_listen, raw,
             mail_from="" if ENVELOPES[envelope] == "<>" else ENVELOPES[envelope])

    def done() -> bool:
        with gateway.db.reading() as session:
            rows = list(session.scalars(select(SpoolEntry.state)))
        return len(rows) == len(keys) and SpoolState.RECEIVED not in rows
    wait_for(done, timeout=120, message="the sample processed")
    with gateway.db.reading() as session:
        rows = list(session.scalars(select(SpoolEntry)))
        envelopes = {row.mail_from for row in rows}
        outcome = [(row.state, row.ticket_number, row.reason) for row in rows]
    assert envelopes == {ENVELOPES[envelope]}
    assert all(state == SpoolState.IGNORED and ticket is None and reason
               for state, ticket, reason in outcome), outcome
    assert _tickets_and_outbox(gateway) == (0, 0)
