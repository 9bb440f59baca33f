"""Every complete message of the shared real-world corpus goes through intake without a
crash: each ends processed, or ignored / quarantined with a reason, and automatic mail
is never answered.

Messages enter through the same spool call as SMTP and are processed by the same
function the worker runs (one process, to keep 1,000+ messages fast).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from gateway.models import OutboxItem, SpoolEntry, SpoolState
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.spool import store_message
from tests.corpus import NOT_DELIVERY_REPORTS, corpus_dir, load_index

FOLDERS = ("autoreplies", "bounces", "malformed", "replies", "multilingual", "threads")


def _entries() -> list[tuple[str, dict[str, Any]]]:
    return [(folder, entry) for folder in FOLDERS for entry in load_index(folder)["entries"]
            if entry["format"] == "rfc822"]


def test_every_corpus_message_ends_in_a_known_state_with_a_reason(gateway: Gateway) -> None:
    base = corpus_dir()
    results: dict[str, tuple[SpoolEntry, list[OutboxItem]]] = {}
    for folder, entry in _entries():
        raw = (base / folder / entry["file"]).read_bytes()
        stored = store_message(gateway.db, raw, source="smtp", mail_from="",
                               rcpt_tos=["support@support.example"], peer="127.0.0.1")
        if not stored.duplicate:
            process_spool_entry(gateway.db, gateway.services, stored.spool_id)
        with gateway.db.reading() as session:
            row = session.get(SpoolEntry, stored.spool_id)
            assert row is not None
            outbox = list(session.scalars(select(OutboxItem).where(
                OutboxItem.spool_id == stored.spool_id)))
        results[f"{folder}/{entry['file']}"] = (row, outbox)
    states = Counter(row.state for row, _ in results.values())
    crashed = {k: row.reason for k, (row, _) in results.items()
               if row.state == SpoolState.QUARANTINED and row.reason.startswith("step ")}
    assert not crashed, f"pipeline steps raised on {len(crashed)} messages: {crashed}"
    for key, (row, _) in results.items():
        assert row.state in {SpoolState.PROCESSED, SpoolState.IGNORED, SpoolState.QUARANTINED}, key
        assert row.reason.strip(), f"{key} ended {row.state} without a reason"
    index = {f"{folder}/{e['file']}": e for folder, e in _entries()}
    # Rows the corpus calls bounces that hold no delivery report (reasons in tests/corpus.py).
    for name in NOT_DELIVERY_REPORTS:
        index[f"bounces/{name}"] = {**index[f"bounces/{name}"], "expected_is_bounce": False,
                                    "expected_is_automatic": False}
    # Loop protection: nothing automatic is ever answered.
    answered_automatic = [k for k, (_row, outbox) in results.items()
                          if index[k].get("expected_is_automatic") is True and outbox]
    assert not answered_automatic, f"automatic mail was answered: {answered_automatic}"
    # Bounces open no ticket.
    ticketed_bounces = [k for k, (row, _) in results.items()
                        if index[k].get("expected_is_bounce") is True
                        and row.state == SpoolState.PROCESSED]
    assert not ticketed_bounces, f"bounces opened tickets: {ticketed_bounces[:10]}"
    assert states[SpoolState.PROCESSED] > 300, states  # the human mail did become tickets
    # Automatic mail in the autoreplies folder opens no ticket either (issue 4).
    ticketed_automatic = [k for k, (row, _) in results.items()
                          if k.startswith("autoreplies/")
                          and index[k].get("expected_is_automatic") is True
                          and row.state == SpoolState.PROCESSED]
    assert not ticketed_automatic, f"automatic mail opened tickets: {ticketed_automatic[:10]}"
