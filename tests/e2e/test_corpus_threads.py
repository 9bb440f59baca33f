"""Threading on real mailing-list threads: a message joins the ticket of its nearest
ancestor that we stored (In-Reply-To wins over a wrong References), and the same holds
with References removed when In-Reply-To names a single parent.

Subject-only threading is not part of the truth here (corpus README)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from gateway.models import MessageRecord, SpoolEntry, SpoolState
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.spool import store_message
from tests.corpus import corpus_dir, load_index


def _ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before children: order by depth of the in-corpus ancestry, then file name."""
    by_id = {e["message_id"]: e for e in entries}

    def depth(entry: dict[str, Any], seen: frozenset[str] = frozenset()) -> int:
        parent = entry.get("expected_parent_in_corpus")
        if not parent or parent not in by_id or parent in seen:
            return 0
        return 1 + depth(by_id[parent], seen | {entry["message_id"]})

    return sorted(entries, key=lambda e: (depth(e), e["file"]))


def _without_references(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\n\n")
    head = re.sub(rb"(?im)^References:.*(?:\n[ \t].*)*\n?", b"", head + b"\n").rstrip(b"\n")
    return head + sep + body


def _thread(gateway: Gateway, strip_references: bool) -> dict[str, tuple[int | None, str]]:
    """Feed every thread set; return message_id -> (ticket number, threaded_by)."""
    index = load_index("threads")
    sets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in index["entries"]:
        sets[entry["thread_set"]].append(entry)
    placed: dict[str, tuple[int | None, str]] = {}
    base = corpus_dir() / "threads"
    for entries in sets.values():
        for entry in _ordered(entries):
            raw = (base / entry["file"]).read_bytes()
            if strip_references:
                raw = _without_references(raw)
            stored = store_message(gateway.db, raw, source="smtp",
                                   rcpt_tos=["support@support.example"])
            process_spool_entry(gateway.db, gateway.services, stored.spool_id)
            with gateway.db.reading() as session:
                row = session.get(SpoolEntry, stored.spool_id)
                record = session.scalars(select(MessageRecord).where(
                    MessageRecord.spool_id == stored.spool_id)).first()
            assert row is not None and row.state != SpoolState.RECEIVED
            if record is not None and not stored.duplicate:
                placed.setdefault(entry["message_id"].strip("<>"),
                                  (record.ticket_number, record.threaded_by))
    return placed


@pytest.mark.parametrize("strip_references", [False, True], ids=["headers", "no-references"])
def test_replies_join_the_ticket_of_their_nearest_stored_ancestor(
        gateway: Gateway, strip_references: bool) -> None:
    placed = _thread(gateway, strip_references)
    index = load_index("threads")
    counts = Counter(e["message_id"] for e in index["entries"])
    duplicates = {mid for mid, n in counts.items() if n > 1}
    checked, wrong = 0, []
    for entry in index["entries"]:
        me = entry["message_id"]
        if strip_references:
            # Only messages whose single In-Reply-To parent is in the corpus keep a parent.
            parent = entry.get("expected_parent_message_id")
            if not parent or parent != entry.get("expected_parent_in_corpus"):
                continue
        else:
            parent = entry.get("expected_parent_in_corpus")
        if not parent or me in duplicates or parent in duplicates:
            continue
        mine, theirs = placed.get(me.strip("<>")), placed.get(parent.strip("<>"))
        if mine is None or theirs is None:
            continue  # one of them was not recorded on a ticket (e.g. an ignored auto-reply)
        checked += 1
        # (In a References loop the first message of the pair opens the ticket.)
        if mine[0] != theirs[0] or mine[1] not in {"headers", "new_ticket"}:
            wrong.append((entry["file"], mine, theirs))
    assert checked > 150
    assert not wrong, f"{len(wrong)} of {checked} replies mis-threaded: {wrong[:10]}"
